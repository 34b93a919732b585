"""The reply surface: the narrow interface between the StreamingHandler and one platform chat.

A channel builds one surface per reply. The handler calls only what the surface's `profile` declares: `send`,
`edit`, `measure`, `close` and `address` always; `draft` when `profile.draft`; the `stream_*` methods when
`profile.native_stream`; `typing` when `profile.typing`; `status` when `profile.status`; `task` when
`profile.tasks`; `ask_feedback` when `profile.feedback`. Methods raise the errors of `channels.errors`, never a
library's own exceptions, so the handler's error rules hold on every platform.

Every text given to a surface is Markdown as the model wrote it (possibly cut mid-way while streaming); the
surface renders it for its platform and must render a partial text safely (an unclosed fence or emphasis may not
make the call fail). `plain=True` asks for no formatting at all, after the platform rejected the rendering.
`final=True` marks the call that leaves the message as the user will keep it: a surface removes a Stop button
there, and a rate limiter lets it go before intermediate updates.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from channels.capabilities import Profile

MessageRef = Any
"""Whatever a surface needs to edit a message it sent (a Telegram message id, a Slack ts, a console line)."""


@runtime_checkable
class ReplySurface(Protocol):
    """Where one reply is shown. See the module docstring for which methods are called when."""

    profile: Profile

    def measure(self, text: str) -> int:
        """Length of `text` once rendered, as the platform counts it against `profile.max_chars`."""
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


class DraftSurface(ReplySurface, Protocol):
    """A surface with ephemeral previews that must be followed by a real message (`profile.draft`)."""

    async def draft(self, draft_id: int, text: str, *, plain: bool = False) -> None:
        """Show (or animate, for the same `draft_id`) a preview of the message being written."""
        ...


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


class TypingSurface(ReplySurface, Protocol):
    """A surface with a short-lived "typing…" indicator (`profile.typing`)."""

    async def typing(self) -> None:
        """Show "typing…" for a few seconds; the handler refreshes it while the user waits."""
        ...


class StatusSurface(ReplySurface, Protocol):
    """A surface that can show a short status line while a tool runs (`profile.status`)."""

    async def status(self, text: str | None) -> None:
        """Show `text` as the reply's status line, or clear it with None."""
        ...


class TaskSurface(ReplySurface, Protocol):
    """A surface that shows each tool call as a task with a state (`profile.tasks`)."""

    async def task(self, call_id: str, title: str, state: str) -> None:
        """Show or update the task `call_id`; `state` is "in_progress", "complete" or "error"."""
        ...


class FeedbackSurface(ReplySurface, Protocol):
    """A surface whose answers end with the platform's feedback buttons (`profile.feedback`)."""

    def ask_feedback(self) -> None:
        """The next final call finishes the answer: that message carries the feedback buttons."""
        ...
