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
            return (self._file(chat, message.photo[-1], "photo.jpg", FileKind.IMAGE, "image/jpeg"),)
        if (document := message.document) is not None:
            name = document.file_name or "document"
            return (self._file(chat, document, name, FileKind.DOCUMENT, document.mime_type or ""),)
        if (voice := message.voice) is not None:
            mime = voice.mime_type or "audio/ogg"
            return (self._file(chat, voice, "voice.ogg", FileKind.VOICE, mime, _seconds(voice.duration)),)
        if (audio := message.audio) is not None:
            name, mime = audio.file_name or "audio.mp3", audio.mime_type or ""
            return (self._file(chat, audio, name, FileKind.VOICE, mime, _seconds(audio.duration)),)
        for video in (message.video, message.animation, message.video_note):
            if video is not None:
                return (self._file(chat, video, "video.mp4", FileKind.DOCUMENT, "video/mp4"),)
        return ()

    def _file(
        self, chat: int, media: Any, name: str, kind: FileKind, mime: str, duration: float | None = None
    ) -> Attachment:
        """One file of a message: `media` is python-telegram-bot's object for it (a PhotoSize, a Document, ...)."""
        source = {"chat": chat, "file_id": media.file_id}
        return Attachment(name, kind, mime, media.file_size, self._fetch(chat, media.file_id), duration, source)

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


def _seconds(duration: object) -> float | None:
    """A duration as seconds (python-telegram-bot gives a timedelta with PTB_TIMEDELTA=1, else an int)."""
    total = getattr(duration, "total_seconds", None)
    if callable(total):
        return float(total())
    return float(duration) if isinstance(duration, int | float) else None
