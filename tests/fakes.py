"""Test doubles for unit tests of the StreamingHandler: a clock tests move by hand and a surface that records.

Integration tests use the HTTP doubles in tests/doubles instead; these are for rules that need exact time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

from channels.capabilities import Profile
from channels.errors import ChannelError, StreamingRefused


async def settle(rounds: int = 50) -> None:
    """Let every task that is ready run until it waits on something (the clock, an event) again."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class FakeClock:
    """A clock that moves only when a test calls `advance`, waking sleepers in deadline order."""

    def __init__(self) -> None:
        self.t = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + seconds, next(self._seq), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, running everything that becomes due on the way."""
        target = self.t + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self.t = max(self.t, deadline)
            if not future.done():
                future.set_result(None)
            await settle()
        self.t = target
        await settle()


@dataclass
class Call:
    """One platform call as the surface saw it."""

    t: float
    op: str
    text: str
    ref: Any = None
    final: bool = False
    plain: bool = False


@dataclass
class RecordingSurface:
    """A reply surface that records every call and keeps what a user would see.

    `failures[op]` is a list of exceptions raised by the next calls of `op`, one per call, before the call would
    take effect ("send", "edit", "draft", "stream_start", "stream_append", "stream_stop", "typing", "status",
    "image").
    """

    profile: Profile
    clock: FakeClock
    calls: list[Call] = field(default_factory=list)
    messages: dict[int, str] = field(default_factory=dict)
    """Real messages by id, with the text the user sees now."""
    streaming: set[int] = field(default_factory=set)
    failures: dict[str, list[ChannelError]] = field(default_factory=dict)
    status_line: str | None = None
    closed: int = 0
    """How many times the handler said the reply is over."""
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def measure(self, text: str) -> int:
        return len(text)

    def ceiling(self, text: str) -> int:
        return len(text)

    def _record(self, op: str, text: str, **kw: Any) -> None:
        self.calls.append(Call(self.clock.now(), op, text, **kw))
        pending = self.failures.get(op)
        if pending:
            raise pending.pop(0)

    def ops(self, *names: str) -> list[Call]:
        """The calls of the given kinds, in order (all platform calls when no name is given)."""
        return [c for c in self.calls if not names or c.op in names]

    @property
    def visible(self) -> list[str]:
        """The real messages in the order they were sent: what stays on screen."""
        return [self.messages[k] for k in sorted(self.messages)]

    async def send(self, text: str, *, final: bool, plain: bool = False) -> int:
        self._record("send", text, final=final, plain=plain)
        ref = next(self._ids)
        self.messages[ref] = text
        return ref

    async def edit(self, ref: int, text: str, *, final: bool, plain: bool = False) -> None:
        self._record("edit", text, ref=ref, final=final, plain=plain)
        assert self.messages[ref] != text or (final and self.profile.buttons), "identical edit"
        self.messages[ref] = text

    async def draft(self, draft_id: int, text: str, *, plain: bool = False) -> None:
        self._record("draft", text, ref=draft_id, plain=plain)

    async def stream_start(self, text: str) -> int:
        self._record("stream_start", text)
        ref = next(self._ids)
        self.messages[ref] = text
        self.streaming.add(ref)
        return ref

    async def stream_append(self, ref: int, delta: str) -> None:
        self._record("stream_append", delta, ref=ref)
        if ref not in self.streaming:
            raise StreamingRefused("message_not_in_streaming_state")
        self.messages[ref] += delta

    async def stream_stop(self, ref: int, delta: str) -> None:
        self._record("stream_stop", delta, ref=ref, final=True)
        if ref not in self.streaming:
            raise StreamingRefused("message_not_in_streaming_state")
        self.messages[ref] += delta
        self.streaming.discard(ref)

    async def image(self, data: bytes, *, caption: str) -> None:
        self._record("image", caption)
        self.messages[next(self._ids)] = f"[picture: {caption}]"

    async def close(self) -> None:
        self.closed += 1

    def address(self) -> None:
        return None

    async def typing(self) -> None:
        self._record("typing", "")

    async def task(self, call_id: str, title: str, state: str) -> None:
        self._record("task", f"{call_id}:{title}:{state}")

    async def status(self, text: str | None) -> None:
        self._record("status", text or "")
        self.status_line = text

    async def drop_buttons(self, message: Any) -> None:
        self._record("drop_buttons", str(message))

    def adopt(self, ref: Any) -> None:
        """No platform call: the final edit of any message here shows no button."""

    def ask_feedback(self) -> None:
        self.calls.append(Call(self.clock.now(), "ask_feedback", ""))
