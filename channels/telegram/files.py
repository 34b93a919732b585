"""The files of a Telegram message as attachments: photos, documents, voice notes, audio (and videos, to refuse).

A photo comes in several sizes; the largest is taken (bot.attachments downscales it anyway). A file is downloaded
only when its turn is prepared: `getFile` names its path, then the file URL serves it. Telegram's bots may
download at most 20 MB: the size in the message already says whether a file is over the limit, and `getFile`
answers "file is too big" past 20 MB. `getFile` passes the bot's rate budget like any call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Bot, Message
from telegram.error import BadRequest, TelegramError

from channels.inbound import Attachment, FileKind
from channels.ratelimit import RateLimiter
from media.errors import DownloadFailed, TooLarge


class Downloader:
    """Makes the attachments of messages, downloading through `bot` and its shared `limiter`."""

    def __init__(self, bot: Bot, limiter: RateLimiter) -> None:
        self._bot = bot
        self._limiter = limiter

    def attachments(self, message: Message) -> tuple[Attachment, ...]:
        """The files of `message` (none for text, stickers, locations, ...)."""
        chat = message.chat_id
        if message.photo:
            largest = message.photo[-1]
            return (
                Attachment(
                    "photo.jpg",
                    FileKind.IMAGE,
                    "image/jpeg",
                    largest.file_size,
                    self._fetch(chat, largest.file_id),
                    source=_source(chat, largest.file_id),
                ),
            )
        if (document := message.document) is not None:
            name = document.file_name or "document"
            kind = FileKind.DOCUMENT
            return (
                Attachment(
                    name,
                    kind,
                    document.mime_type or "",
                    document.file_size,
                    self._fetch(chat, document.file_id),
                    source=_source(chat, document.file_id),
                ),
            )
        if (voice := message.voice) is not None:
            fetch = self._fetch(chat, voice.file_id)
            return (
                Attachment(
                    "voice.ogg",
                    FileKind.VOICE,
                    voice.mime_type or "audio/ogg",
                    voice.file_size,
                    fetch,
                    _seconds(voice.duration),
                    _source(chat, voice.file_id),
                ),
            )
        if (audio := message.audio) is not None:
            fetch = self._fetch(chat, audio.file_id)
            name = audio.file_name or "audio.mp3"
            return (
                Attachment(
                    name,
                    FileKind.VOICE,
                    audio.mime_type or "",
                    audio.file_size,
                    fetch,
                    _seconds(audio.duration),
                    _source(chat, audio.file_id),
                ),
            )
        for video in (message.video, message.animation, message.video_note):
            if video is not None:
                return (
                    Attachment(
                        "video.mp4",
                        FileKind.DOCUMENT,
                        "video/mp4",
                        video.file_size,
                        self._fetch(chat, video.file_id),
                        source=_source(chat, video.file_id),
                    ),
                )
        return ()

    def fetcher(self, source: dict[str, Any]) -> Callable[[int], Awaitable[bytes]]:
        """The download of a file another replica was sent (`Attachment.source`)."""
        return self._fetch(int(source["chat"]), str(source["file_id"]))

    def _fetch(self, chat: int, file_id: str) -> Callable[[int], Awaitable[bytes]]:
        async def fetch(limit: int) -> bytes:
            try:
                async with self._limiter.slot((), gate=chat, urgent=True):  # the bot's budget only
                    file = await self._bot.get_file(file_id)
                if file.file_size is not None and file.file_size > limit:
                    raise TooLarge(file_id)
                return bytes(await file.download_as_bytearray())
            except BadRequest as exc:
                if "too big" in exc.message.lower():
                    raise TooLarge(file_id) from None
                raise DownloadFailed(exc.message) from None
            except TelegramError as exc:
                raise DownloadFailed(exc.message) from None

        return fetch


def _source(chat: int, file_id: str) -> dict[str, Any]:
    return {"chat": chat, "file_id": file_id}


def _seconds(duration: object) -> float | None:
    """A duration as seconds (python-telegram-bot gives a timedelta with PTB_TIMEDELTA=1, else an int)."""
    total = getattr(duration, "total_seconds", None)
    if callable(total):
        return float(total())
    return float(duration) if isinstance(duration, int | float) else None
