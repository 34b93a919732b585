"""The reply surface: the narrow interface between the StreamingHandler and one platform chat.

A channel builds one surface per reply. Every surface has `send`, `edit`, `measure`, `ceiling`, `close` and
`address`; what else it has its `profile` declares, and `capabilities` checks the claim once, when a
StreamingHandler is built:
`draft` (`DraftSurface`) for `profile.draft`, the `stream_*` methods (`NativeStreamSurface`) for
`profile.native_stream`, `typing` for `profile.typing`, `status` for `profile.status`, `task` for `profile.tasks`,
`drop_buttons` and `adopt` for `profile.buttons`, `image` (`ImageSurface`) for `profile.images_out`, `ask_feedback` for
`profile.feedback`, `ask_approval` / `settle_approval` (`ApprovalSurface`) for `profile.approvals`. A profile
that claims what its surface lacks fails there with `CapabilityMismatch`, never mid-reply. Methods raise the
errors of `channels.errors`, never a library's own exceptions, so the handler's error rules hold on every platform.

Every text given to a surface is Markdown as the model wrote it (possibly cut mid-way while streaming); the
surface renders it for its platform and must render a partial text safely (an unclosed fence or emphasis may not
make the call fail). `plain=True` asks for no formatting at all, after the platform rejected the rendering.
`final=True` marks the call that leaves the message as the user will keep it: a surface removes a Stop button
there, and a rate limiter lets it go before intermediate updates.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from channels.capabilities import Profile
from channels.inbound import Target
from channels.ratelimit import RateLimiter

MessageRef = Any
"""Whatever a surface needs to edit a message it sent (a Telegram message id, a Slack ts, a console line)."""

_draft_ids = itertools.count(1)


def new_draft_id() -> int:
    """A draft id no other draft of this process has had, whatever chat it is in.

    A platform animates one preview into the next when they share an id (Telegram: per chat), so every draft, a
    reply's text or its status line, takes a fresh one from this one sequence: no two can ever collide, and an id
    names exactly one draft when the platform reports something about it (a stop pressed on it).
    """
    return next(_draft_ids)


@runtime_checkable
class ReplySurface(Protocol):
    """Where one reply is shown. See the module docstring for which methods are called when."""

    profile: Profile

    def measure(self, text: str) -> int:
        """Length of `text` once rendered, as the platform counts it against `profile.max_chars`."""
        ...

    def ceiling(self, text: str) -> int:
        """A length `measure(text)` never exceeds, cheap to compute (the measure itself where that is cheap): a cut
        searches on it and measures only a couple of candidates (`channels.splitting.split_to_fit`)."""
        ...

    async def send(self, text: str, *, final: bool, plain: bool = False) -> MessageRef:
        """Post a new message and return a reference to edit it."""
        ...

    async def edit(self, ref: MessageRef, text: str, *, final: bool, plain: bool = False) -> None:
        """Replace the whole text of a message this surface sent."""
        ...

    async def close(self) -> None:
        """The reply is over: release what was only shown while it streamed (a status message, an open line)."""
        ...

    def address(self) -> dict[str, Any] | None:
        """Where this reply goes, as JSON-able data, so an outbox can deliver a late final message there after a
        restart; None where late delivery makes no sense (the console)."""
        ...


@runtime_checkable
class DraftSurface(ReplySurface, Protocol):
    """A surface with ephemeral previews that must be followed by a real message (`profile.draft`)."""

    async def draft(self, draft_id: int, text: str, *, plain: bool = False) -> None:
        """Show (or animate, for the same `draft_id`) a preview of the message being written.

        `draft_id` comes from `new_draft_id`, one per message being written.
        """
        ...


@runtime_checkable
class NativeStreamSurface(ReplySurface, Protocol):
    """A surface with the platform's own streaming message (`profile.native_stream`)."""

    async def stream_start(self, text: str) -> MessageRef:
        """Open a streaming message showing `text`."""
        ...

    async def stream_append(self, ref: MessageRef, delta: str) -> None:
        """Append `delta` to the streaming message."""
        ...

    async def stream_stop(self, ref: MessageRef, delta: str) -> None:
        """Append the last `delta` (may be empty) and close the stream; the message is then final."""
        ...


@runtime_checkable
class TypingSurface(ReplySurface, Protocol):
    """A surface with a short-lived "typing…" indicator (`profile.typing`)."""

    async def typing(self) -> None:
        """Show "typing…" for a few seconds; the handler refreshes it while the user waits."""
        ...


@runtime_checkable
class StatusSurface(ReplySurface, Protocol):
    """A surface that can show a short status line while a tool runs (`profile.status`)."""

    async def status(self, text: str | None) -> None:
        """Show `text` as the reply's status line, or clear it with None."""
        ...


@runtime_checkable
class TaskSurface(ReplySurface, Protocol):
    """A surface that shows each tool call as a task with a state (`profile.tasks`)."""

    async def task(self, call_id: str, title: str, state: str) -> None:
        """Show or update the task `call_id`; `state` is "in_progress", "complete" or "error"."""
        ...


@runtime_checkable
class ButtonSurface(ReplySurface, Protocol):
    """A surface whose messages carry a Stop button while they stream (`profile.buttons`)."""

    async def drop_buttons(self, message: Any) -> None:
        """Take the Stop button off `message` (a `StopPress.message`): one a reply cut short by a crash left behind."""
        ...

    def adopt(self, ref: MessageRef) -> None:
        """Message `ref`, which an earlier run of the bot sent with the Stop button, is this surface's now: its next
        final `edit` takes the button off (a reply cut short by a crash, finished at the next start)."""
        ...


@runtime_checkable
class ImageSurface(ReplySurface, Protocol):
    """A surface that can send a picture into the conversation (`profile.images_out`)."""

    async def image(self, data: bytes, *, caption: str) -> None:
        """Send the PNG `data` as a picture with a short `caption`, after the messages sent so far.

        It passes the same rate budget as a message; it raises the errors of `channels.errors`.
        """
        ...


@runtime_checkable
class FeedbackSurface(ReplySurface, Protocol):
    """A surface whose answers end with the platform's feedback buttons (`profile.feedback`)."""

    def ask_feedback(self) -> None:
        """The next final call finishes the answer: that message carries the feedback buttons."""
        ...


@runtime_checkable
class ApprovalSurface(ReplySurface, Protocol):
    """A surface that asks a person to approve a tool call before it runs (`profile.approvals`)."""

    async def ask_approval(self, text: str, approval_id: str) -> MessageRef:
        """Send `text` (Markdown: the calls waiting) with Approve and Deny buttons whose presses carry
        `channels.inbound.approval_data(approval_id, ...)`, after the messages sent so far; return the message,
        as JSON-able data (it is stored, to settle the request after a restart)."""
        ...

    async def settle_approval(self, ref: MessageRef, text: str) -> None:
        """Replace the request `ref` with `text` (what was decided, and by whom), without its buttons."""
        ...


class CapabilityMismatch(TypeError):
    """A profile claims a capability its surface does not implement: a programming error in a channel."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """The optional parts of one surface its profile claims, typed (None where the profile does not claim it)."""

    draft: DraftSurface | None = None
    stream: NativeStreamSurface | None = None
    typing: TypingSurface | None = None
    status: StatusSurface | None = None
    tasks: TaskSurface | None = None
    buttons: ButtonSurface | None = None
    images: ImageSurface | None = None
    feedback: FeedbackSurface | None = None
    approvals: ApprovalSurface | None = None


def capabilities(surface: ReplySurface) -> Capabilities:
    """What `surface.profile` claims, checked against what `surface` implements.

    Raises:
        CapabilityMismatch: Naming the profile, the capability and the missing method.
    """
    profile = surface.profile
    found = Capabilities(
        draft=surface if profile.draft and isinstance(surface, DraftSurface) else None,
        stream=surface if profile.native_stream and isinstance(surface, NativeStreamSurface) else None,
        typing=surface if profile.typing and isinstance(surface, TypingSurface) else None,
        status=surface if profile.status and isinstance(surface, StatusSurface) else None,
        tasks=surface if profile.tasks and isinstance(surface, TaskSurface) else None,
        buttons=surface if profile.buttons and isinstance(surface, ButtonSurface) else None,
        images=surface if profile.images_out and isinstance(surface, ImageSurface) else None,
        feedback=surface if profile.feedback and isinstance(surface, FeedbackSurface) else None,
        approvals=surface if profile.approvals and isinstance(surface, ApprovalSurface) else None,
    )
    for claimed, part, flag, method in (
        (profile.draft, found.draft, "draft", "draft"),
        (profile.native_stream, found.stream, "native_stream", "stream_start/stream_append/stream_stop"),
        (profile.typing, found.typing, "typing", "typing"),
        (profile.status, found.status, "status", "status"),
        (profile.tasks, found.tasks, "tasks", "task"),
        (profile.buttons, found.buttons, "buttons", "drop_buttons/adopt"),
        (profile.images_out, found.images, "images_out", "image"),
        (profile.feedback, found.feedback, "feedback", "ask_feedback"),
        (profile.approvals, found.approvals, "approvals", "ask_approval/settle_approval"),
    ):
        if claimed and part is None:
            raise CapabilityMismatch(
                f"profile {profile.key} claims {flag}, but {type(surface).__name__} has no {method}()"
            )
    return found


C = TypeVar("C")
T = TypeVar("T", bound=Target)


class PlatformSurface(Generic[C, T]):
    """What every platform's surface holds for one reply; a platform's surface subclasses it.

    Args:
        client: The platform library's client (python-telegram-bot's `Bot`, slack_sdk's `AsyncWebClient`).
        limiter: The bot's shared rate limiter: every call passes it.
        target: Where the reply goes.
        profile: The registry's profile for the target's kind, with the settings applied.
        on_live_refused: Called when the chat refuses the profile's live mode (drafts, a native stream), so the
            channel core uses edits in that chat from then on.
    """

    def __init__(
        self,
        client: C,
        limiter: RateLimiter,
        target: T,
        profile: Profile,
        *,
        on_live_refused: Callable[[], None] = lambda: None,
    ) -> None:
        self.profile = profile
        self._client = client
        self._limiter = limiter
        self._target = target
        self._on_live_refused = on_live_refused
        self._begin()

    def _begin(self) -> None:
        """Set up the subclass's own state for this reply (called at the end of `__init__`)."""

    def address(self) -> dict[str, Any]:
        return self._target.address()
