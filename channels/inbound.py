"""What a channel's parser hands the channel core, whatever the platform: a verdict on each update.

A platform's parser (`read_update`, `read_event`) is a pure function from the platform's update to one of
`Answer`, `Refuse` or `Ignore`, and from a Stop button press to a `StopPress`. Each names a `Target`: the
platform's own idea of where a reply goes, which also knows its conversation and turns itself into an outbox
address and back. The refusals every channel shares (allowlist, no text, too long) are decided here, once.
See docs/architecture.md, "How to add a platform".
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar

NOT_ALLOWED = "Sorry, this bot is private: it only answers the people it was set up for."
ONLY_TEXT = "I read text: send me your question as a message."
TOO_LONG = "That message is too long for me ({length:,} characters; I read up to {limit:,}). Could you shorten it?"
EMPTY_MESSAGE = "/help"
"""What a message that is empty once the bot's mention is removed means: the user asks what the bot does."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One user message the bot should answer.

    Attributes:
        conversation: The memory key: `telegram:<chat>`, `slack:<channel>:<thread_ts>`, `console:<name>`.
            Replies in one conversation run one at a time; it is also the agent's `thread_id`.
        text: What the user wrote, commands included.
        user_id: The platform's id of the sender (for allowlists and per-user limits).
        user_name: A readable name where the platform gives one.
    """

    conversation: str
    text: str
    user_id: str
    user_name: str | None = None


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
    """Reply `text` to `target`, with no model call."""

    target: T
    text: str


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
    """

    target: T
    message: Any

    @property
    def conversation(self) -> str:
        """The conversation whose reply the press asks to stop."""
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


def screen(target: T, text: str | None, me: Identity, *, allowed: bool, only_text: str = ONLY_TEXT) -> Refuse[T] | str:
    """The refusals every channel makes before a model call, in order; else the text to answer.

    Args:
        target: Where a refusal goes.
        text: What the user wrote (the bot's mention removed); None for a message without text (a file alone).
        me: For the length limit.
        allowed: Whether the sender is on the allowlist.
        only_text: The platform's hint for a message without text.

    Returns:
        The refusal, or the text (`EMPTY_MESSAGE` for an empty one).
    """
    if not allowed:
        return Refuse(target, NOT_ALLOWED)
    if text is None:
        return Refuse(target, only_text)
    text = text or EMPTY_MESSAGE
    if len(text) > me.max_input_chars:
        return Refuse(target, TOO_LONG.format(length=len(text), limit=me.max_input_chars))
    return text
