"""What a channel's parser hands the channel core, whatever the platform: a verdict on each update.

A platform's parser (`read_update`, `read_event`) is a pure function from the platform's update to one of
`Answer`, `Refuse` or `Ignore`, and from a Stop button press to a `StopPress`. Each names a `Target`: the
platform's own idea of where a reply goes, which also knows its conversation and turns itself into an outbox
address and back. The refusals every channel shares (allowlist, no text, too long) are decided here, once.
See docs/architecture.md, "How to add a platform".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Protocol, Self, TypeVar

NOT_ALLOWED = "Sorry, this bot is private: it only answers the people it was set up for."
ONLY_TEXT = "I can't read that kind of message: send me text, a photo, a voice note or a document."
TOO_LONG = "That message is too long for me ({length:,} characters; I read up to {limit:,}). Could you shorten it?"
EMPTY_MESSAGE = "/help"
"""What a message that is empty once the bot's mention is removed means: the user asks what the bot does."""


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
        source: Where the platform keeps the file, as data (a Telegram file id, a Slack URL): what another
            replica needs to fetch it (`ChannelBot.fetcher`); None where no other process could.
    """

    name: str
    kind: FileKind
    mime: str
    size: int | None
    fetch: Callable[[int], Awaitable[bytes]]
    duration: float | None = None
    source: dict[str, Any] | None = None


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
        sent: Where the platform puts the message in its conversation's order (Telegram's message id, Slack's
            ts): replicas that take in two messages of one conversation at once queue them in this order.
    """

    conversation: str
    text: str
    user_id: str
    user_name: str | None = None
    attachments: tuple[Attachment, ...] = ()
    sent: float = 0.0


class Target(Protocol):
    """Where a reply goes, as one platform knows it (`TelegramTarget`, `SlackTarget`).

    An outbox entry stores `address()` and the courier rebuilds the target with `from_address`, so the two must
    round-trip; the address format is on disk and must stay readable by the next version.
    """

    @property
    def kind(self) -> str:
        """The chat kind: the capability registry's row for this platform."""
        ...

    @property
    def chat(self) -> Hashable:
        """The chat or channel: where a refused live mode (drafts, native streams) is not tried again."""
        ...

    @property
    def conversation(self) -> str:
        """The memory key of the conversation the reply belongs to (`Incoming.conversation`)."""
        ...

    def address(self) -> dict[str, Any]:
        """This target as JSON-able data, for an outbox entry."""
        ...

    @classmethod
    def from_address(cls, address: dict[str, Any]) -> Self:
        """The target `address()` gave."""
        ...


T = TypeVar("T", bound=Target)


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """Run the agent on `incoming` and stream the reply to `target`."""

    incoming: Incoming
    target: T


@dataclass(frozen=True, slots=True)
class Refuse(Generic[T]):
    """Reply `text` to `target`, with no model call.

    Attributes:
        outsider: The sender is not on the allowlist: the chat hears this at most once an hour, and only when the
            chat's message budget has room to spare (it never delays the answers of those who are allowed).
    """

    target: T
    text: str
    outsider: bool = False


@dataclass(frozen=True, slots=True)
class Ignore:
    """Do nothing; `reason` is for the debug log."""

    reason: str


Verdict = Answer[T] | Refuse[T] | Ignore


@dataclass(frozen=True, slots=True)
class StopPress(Generic[T]):
    """A press of the Stop button on the bot's message `message`, which went to `target`.

    Attributes:
        target: Where the pressed message is; its conversation is the one whose reply the press stops.
        message: What the platform's surface needs to take the button off that message (`drop_buttons`).
        user: The platform's id of who pressed it: only the person who asked (or a chat admin) may stop a reply.
    """

    target: T
    message: Any
    user: str

    @property
    def conversation(self) -> str:
        """The conversation whose reply the press asks to stop."""
        return self.target.conversation


APPROVAL_PREFIX = "approval:"


def approval_data(approval_id: str, approve: bool) -> str:
    """What an Approve (or Deny) button carries: its Telegram callback_data, its Slack value (at most 64 bytes)."""
    return f"{APPROVAL_PREFIX}{'yes' if approve else 'no'}:{approval_id}"


def read_approval_data(data: str | None) -> tuple[str, bool] | None:
    """The approval id and the decision an Approve or Deny button carries, or None for any other data."""
    if not data or not data.startswith(APPROVAL_PREFIX):
        return None
    answer, _, approval_id = data.removeprefix(APPROVAL_PREFIX).partition(":")
    if answer not in ("yes", "no") or not approval_id:
        return None
    return approval_id, answer == "yes"


@dataclass(frozen=True, slots=True)
class ApprovalPress(Generic[T]):
    """A press of Approve or Deny under the bot's request `message` to approve a tool call, which went to `target`.

    Attributes:
        target: Where the request is; its conversation must be the one the approval belongs to.
        message: The pressed message, as the platform names it (for the log).
        user: The platform's id of who pressed: only the person who asked (or a chat admin) decides.
        user_name: How to name them in the settled message ("Approved by Alice").
        approval_id: The approval the button belongs to (`approval_data`).
        approve: Approve (True) or Deny.
    """

    target: T
    message: Any
    user: str
    user_name: str
    approval_id: str
    approve: bool

    @property
    def conversation(self) -> str:
        return self.target.conversation


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Whom a bot serves, as every parser checks it (a platform adds who the bot is).

    Attributes:
        allowed: User ids and names (normalised the platform's way) allowed to talk to the bot; empty for everyone.
        max_input_chars: Longest message the bot reads.
    """

    allowed: frozenset[str] = frozenset()
    max_input_chars: int = 4000

    def allows(self, *names: str) -> bool:
        """Whether a user known by any of `names` may talk to the bot."""
        return not self.allowed or any(name in self.allowed for name in names)


def screen(
    target: T,
    text: str | None,
    me: Identity,
    *,
    allowed: bool,
    only_text: str = ONLY_TEXT,
    files: bool = False,
) -> Refuse[T] | str:
    """The refusals every channel makes before a model call, in order; else the text to answer.

    Args:
        target: Where a refusal goes.
        text: What the user wrote (the bot's mention removed); None for a message without text (a sticker, or a
            file alone).
        me: For the length limit.
        allowed: Whether the sender is on the allowlist.
        only_text: The platform's hint for a message with nothing the bot reads.
        files: The message has files the bot reads (then no text is fine: the files are the question).

    Returns:
        The refusal, or the text (`EMPTY_MESSAGE` for an empty one without files).
    """
    if not allowed:
        return Refuse(target, NOT_ALLOWED, outsider=True)
    if text is None and not files:
        return Refuse(target, only_text)
    text = text or ("" if files else EMPTY_MESSAGE)
    if len(text) > me.max_input_chars:
        return Refuse(target, TOO_LONG.format(length=len(text), limit=me.max_input_chars))
    return text
