"""The files of a message made into the user's turn: images as content parts, documents as text, voice as words.

One path for every channel: a channel only says what a file is and how to download it (`channels.inbound.
Attachment`); here each file is downloaded under MAX_FILE_MB, then
- an image is downscaled and re-encoded (media.images), stored once in the conversation's file store, and sent
  as an `image_url` part that refers to it (agent.pictures turns the reference into data for the request);
- a document's text is extracted (media.documents), all documents of a turn sharing MAX_DOCUMENT_CHARS;
- a recording is transcribed (media.transcribe); the reply then opens with what was heard, quoted.
A line naming each file ("[Photo 1: cat.jpg, 1280×960]") goes into the text, so the model (and the offline demo
model) knows what it got. A file that cannot be used stops the turn with `media.errors.FileProblem`, whose message
is the reply; nothing is sent to the model then. Decoding and extraction run in worker threads, two at a time,
never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from agent.events import UserContent
from bot.settings import Settings
from channels.inbound import Attachment, FileKind, Incoming
from media.documents import extract
from media.errors import DownloadFailed, FileProblem, TooLarge, Unsupported
from media.images import prepare_image
from media.store import FileStore
from media.transcribe import NOT_CONFIGURED, NotTranscribed, Transcriber

log = logging.getLogger(__name__)

MB = 1024 * 1024
MAX_FILES = 10
"""Files in one turn (a Telegram album holds up to 10)."""
DOWNLOAD_TIMEOUT = 120.0
CPU_SLOTS = 2
"""Decodes and extractions at once, over all conversations (the machine's cores, not the number of chats)."""
QUOTE_CHARS = 280
"""Longest transcript quoted at the start of a reply (the model gets all of it)."""
DESCRIBE_IMAGE = "Describe this image."
DESCRIBE_IMAGES = "Describe these images."
SUMMARISE = "Summarise this document."
TOO_MANY = "That is {count} files; I read up to {limit} at a time. Please send fewer."
TOO_LARGE = "{name} is too large ({size:.1f} MB); I read files up to {limit:g} MB."
TOO_LARGE_UNKNOWN = "{name} is too large; I read files up to {limit:g} MB."
NOT_DOWNLOADED = "I could not download {name}. Please send it again."
UNSUPPORTED_AUDIO = "I can't read {name}."


@dataclass
class Turn:
    """The user's turn as the model gets it, and what the reply shows before the answer.

    Attributes:
        content: A string, or OpenAI content parts (one text part, then the image parts).
        heard: Markdown the reply opens with (quoted transcripts, notes about recordings); "" for none.
    """

    content: UserContent
    heard: str = ""


@dataclass
class _Parts:
    lines: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    documents: int = 0
    voices: int = 0
    chars_left: int = 0


class Attachments:
    """Prepares turns with files (see the module docstring).

    Args:
        files: The conversations' file store (the agent's).
        max_bytes: MAX_FILE_MB in bytes.
        max_chars: MAX_DOCUMENT_CHARS, shared by the documents of one turn.
        transcriber: Speech to text; None when no server is configured (recordings then get a note).
    """

    def __init__(
        self, files: FileStore, *, max_bytes: int, max_chars: int, transcriber: Transcriber | None = None
    ) -> None:
        self.files = files
        self.max_bytes = max_bytes
        self.max_chars = max_chars
        self.transcriber = transcriber
        self._cpu = asyncio.Semaphore(CPU_SLOTS)

    async def prepare(self, incoming: Incoming) -> Turn:
        """The turn for `incoming` (text only when it has no files).

        Raises:
            FileProblem: A file is too large, of a type not read, damaged, or could not be downloaded; the
                message names it and is meant for the user.
        """
        if not incoming.attachments:
            return Turn(incoming.text)
        if len(incoming.attachments) > MAX_FILES:
            raise FileProblem(TOO_MANY.format(count=len(incoming.attachments), limit=MAX_FILES))
        parts = _Parts(chars_left=self.max_chars)
        for attachment in incoming.attachments:
            await self._add(attachment, incoming.conversation, parts)
        question = incoming.text.strip() or _default_question(parts)
        text = "\n\n".join([*parts.lines, question] if question else parts.lines)
        heard = "\n\n".join(parts.heard) + "\n\n" if parts.heard else ""
        if not parts.images:
            return Turn(text, heard)
        images = [{"type": "image_url", "image_url": {"url": ref}} for ref in parts.images]
        return Turn([{"type": "text", "text": text}, *images], heard)

    async def _add(self, attachment: Attachment, conversation: str, parts: _Parts) -> None:
        name = attachment.name
        kind = _kind(attachment)
        data = await self._download(attachment)
        if kind is FileKind.IMAGE:
            async with self._cpu:
                image = await asyncio.to_thread(prepare_image, data, name)
            ref = await asyncio.to_thread(self.files.put, conversation, image.data, image.suffix)
            parts.images.append(ref)
            width, height = image.original
            parts.lines.append(f"[Photo {len(parts.images)}: {name}, {width}×{height}]")
        elif kind is FileKind.VOICE:
            parts.voices += 1
            await self._transcribe(attachment, data, parts)
        else:
            async with self._cpu:
                found = await asyncio.to_thread(
                    extract, data, name, attachment.mime, max_chars=max(parts.chars_left, 1)
                )
            parts.documents += 1
            parts.chars_left -= len(found.text)
            note = f"; {found.note} shown" if found.note else ""
            parts.lines.append(f"[Document {name}: {found.kind}{note}]\n{found.text}\n[End of {name}]")

    async def _download(self, attachment: Attachment) -> bytes:
        limit_mb = self.max_bytes / MB
        if attachment.size is not None and attachment.size > self.max_bytes:
            raise TooLarge(TOO_LARGE.format(name=attachment.name, size=attachment.size / MB, limit=limit_mb))
        try:
            async with asyncio.timeout(DOWNLOAD_TIMEOUT):
                data = await attachment.fetch(self.max_bytes)
        except TooLarge:
            raise TooLarge(TOO_LARGE_UNKNOWN.format(name=attachment.name, limit=limit_mb)) from None
        except FileProblem:
            raise
        except Exception as exc:  # a channel's fetch should raise DownloadFailed; a bug there must not crash
            log.warning("download of %s failed: %s", attachment.name, type(exc).__name__)
            raise DownloadFailed(NOT_DOWNLOADED.format(name=attachment.name)) from None
        if len(data) > self.max_bytes:
            raise TooLarge(TOO_LARGE.format(name=attachment.name, size=len(data) / MB, limit=limit_mb))
        return data

    async def _transcribe(self, attachment: Attachment, data: bytes, parts: _Parts) -> None:
        length = f", {attachment.duration:.0f} s" if attachment.duration else ""
        if self.transcriber is None:
            reason = NOT_CONFIGURED
        else:
            try:
                words = await self.transcriber.transcribe(data, attachment.name)
            except NotTranscribed as exc:
                reason = str(exc)
            else:
                parts.lines.append(f"[Voice note{length}, transcribed:]\n{words}")
                quote = words if len(words) <= QUOTE_CHARS else words[: QUOTE_CHARS - 1].rstrip() + "…"
                parts.heard.append(f"> 🎤 _{_escape(quote) or '(silence)'}_")
                return
        parts.lines.append(f"[Voice note{length}: not transcribed: {reason}]")
        parts.heard.append(f"_🎤 I could not listen to the voice note: {reason}._")


def _kind(attachment: Attachment) -> FileKind:
    """The platform's kind, corrected by the type: an image sent as a file is still an image."""
    mime = attachment.mime.lower()
    if attachment.kind is FileKind.DOCUMENT and mime.startswith("image/") and mime != "image/svg+xml":
        return FileKind.IMAGE
    if attachment.kind is FileKind.DOCUMENT and mime.startswith("audio/"):
        return FileKind.VOICE
    if attachment.kind is FileKind.DOCUMENT and mime.startswith("video/"):
        raise Unsupported(f"I can't watch videos ({attachment.name}); I read photos, voice notes and documents.")
    return attachment.kind


def _default_question(parts: _Parts) -> str:
    """What a file sent without words asks for; a voice note is its own question."""
    if parts.voices and not parts.images and not parts.documents:
        return ""
    if parts.images and not parts.documents:
        return DESCRIBE_IMAGE if len(parts.images) == 1 else DESCRIBE_IMAGES
    return SUMMARISE if parts.documents == 1 and not parts.images else "Tell me about these files."


def _escape(text: str) -> str:
    """A transcript inside `_…_`: the speaker's words must not end the emphasis or start a list."""
    return " ".join(text.replace("_", "\\_").replace("*", "\\*").split())


@contextlib.asynccontextmanager
async def open_attachments(settings: Settings, files: FileStore) -> AsyncIterator[Attachments]:
    """The bot's `Attachments`, with a transcriber when a server is configured; closed on exit."""
    transcriber = None
    base_url = settings.transcribe_base_url or settings.openai_base_url
    key = settings.transcribe_api_key or settings.openai_api_key
    if base_url or key:  # no server at all means the offline demo: nothing to transcribe with
        transcriber = Transcriber(
            base_url=base_url, api_key=key.get_secret_value() if key else None, model=settings.transcribe_model
        )
    try:
        yield Attachments(
            files,
            max_bytes=int(settings.max_file_mb * MB),
            max_chars=settings.max_document_chars,
            transcriber=transcriber,
        )
    finally:
        if transcriber is not None:
            await transcriber.close()
