"""What a channel hands the bot runtime for each user message, whatever the platform."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum


class FileKind(StrEnum):
    """What the platform says a file is; the bytes decide the rest (bot.attachments)."""

    IMAGE = "image"
    """A photo or an image file: goes to the model as an image."""
    VOICE = "voice"
    """A voice note or an audio file: transcribed."""
    DOCUMENT = "document"
    """Anything else: its text is extracted, if it has any the bot can read."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with a message, not yet downloaded.

    Attributes:
        name: The file name as the user sees it ("photo.jpg" for a Telegram photo, which has none).
        kind: See `FileKind`.
        mime: The type the platform reports; "" when it gives none.
        size: Bytes, as the platform reports them (so a file over the limit is refused unread); None if unknown.
        fetch: Downloads the file; its argument is the most bytes to accept. It raises `media.errors.TooLarge`
            past that and `media.errors.DownloadFailed` when the platform does not deliver.
        duration: Seconds of a recording, where the platform says.
    """

    name: str
    kind: FileKind
    mime: str
    size: int | None
    fetch: Callable[[int], Awaitable[bytes]]
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    """One user message the bot should answer.

    Attributes:
        conversation: The memory key: `telegram:<chat>`, `slack:<channel>:<thread_ts>`, `console:<name>`.
            Replies in one conversation run one at a time; it is also the agent's `thread_id`.
        text: What the user wrote, commands included (a caption counts; "" for a file alone).
        user_id: The platform's id of the sender (for allowlists and per-user limits).
        user_name: A readable name where the platform gives one.
        attachments: Files sent with the message (an album's photos included), in order.
    """

    conversation: str
    text: str
    user_id: str
    user_name: str | None = None
    attachments: tuple[Attachment, ...] = ()
