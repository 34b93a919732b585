"""One reply at a time per conversation, any number of conversations side by side.

The behaviour users see:
- A message that arrives while a reply streams waits for it. Several that arrive meanwhile are answered as ONE
  follow-up turn (their texts joined in order), replying to the last of them: the model sees everything the user
  added, and the chat gets one answer instead of a burst. Commands are never merged: each runs on its own.
- `/stop` (or a Stop button) cancels the running reply at once: the model's stream is closed, the message keeps
  the text so far with a "Stopped" mark, and follow-ups still waiting are dropped (the user asked for quiet).
- A user who starts more than `runs_per_minute` model runs in a minute gets a polite note instead of a run.
- `shutdown` takes no new messages, lets replies in flight finish for a grace period, then stops the rest, each
  finalised with its text so far and a notice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from bot.runtime import SHUTDOWN, Runtime
from channels.clock import Clock, LoopClock
from channels.commands import STOP, command_of
from channels.inbound import Incoming
from channels.surface import ReplySurface

log = logging.getLogger(__name__)

NOTHING_TO_STOP = "There is no reply in progress to stop."
TOO_FAST = "You're sending messages faster than I can answer. Please wait a minute and try again."
SurfaceFactory = Callable[[], ReplySurface]


@dataclass
class _Request:
    incoming: Incoming
    surface: SurfaceFactory

    @property
    def is_command(self) -> bool:
        """A command, known or not ("/..."): it is never merged with other messages and costs no model run."""
        return self.incoming.text.startswith("/")


@dataclass
class _Conversation:
    pending: deque[_Request] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    reply: asyncio.Task[None] | None = None


class Conversations:
    """Queues and runs the replies of every conversation.

    Args:
        runtime: Answers one message on one surface.
        runs_per_minute: Model runs one user may start per minute (commands do not count).
        clock: For the per-user window (tests control time with it).
    """

    def __init__(self, runtime: Runtime, *, runs_per_minute: int = 20, clock: Clock | None = None) -> None:
        self._runtime = runtime
        self._runs_per_minute = runs_per_minute
        self._clock = clock or LoopClock()
        self._conversations: dict[str, _Conversation] = {}
        self._runs: dict[str, deque[float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def submit(self, incoming: Incoming, surface: SurfaceFactory) -> None:
        """Queue a message; returns at once. `surface` is opened when its reply starts."""
        if self._closed:
            log.info("%s: message after shutdown began; not answered", incoming.conversation)
            return
        request = _Request(incoming, surface)
        if command_of(incoming.text) is STOP:
            if not self.stop(incoming.conversation):
                self.notify(surface, NOTHING_TO_STOP)
            return
        if not request.is_command and not self._may_run(incoming.user_id):
            self.notify(surface, TOO_FAST)
            return
        conversation = self._conversations.setdefault(incoming.conversation, _Conversation())
        conversation.pending.append(request)
        if conversation.worker is None:
            conversation.worker = self._spawn(self._work(incoming.conversation, conversation))

    def stop(self, key: str) -> bool:
        """Stop the running reply of `key` and drop its waiting follow-ups. Returns whether a reply was running."""
        conversation = self._conversations.get(key)
        if conversation is None or conversation.reply is None or conversation.reply.done():
            return False
        conversation.pending.clear()
        conversation.reply.cancel()
        return True

    def notify(self, surface: SurfaceFactory, text: str) -> None:
        """Send a short fixed text outside the conversation's queue (refusals, limits)."""
        self.aside(self._runtime.say(surface(), text))

    def aside(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` outside every queue; `drain` and `shutdown` wait for it like for a reply."""
        self._spawn(work)

    @property
    def replying(self) -> int:
        """Replies running now."""
        return sum(1 for c in self._conversations.values() if c.reply is not None and not c.reply.done())

    async def drain(self) -> None:
        """Wait until every queued message has been answered."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def shutdown(self, grace: float) -> None:
        """Take no new messages; give replies in flight `grace` seconds, then stop and finalise the rest."""
        self._closed = True
        for conversation in self._conversations.values():
            if conversation.pending:
                log.info("shutdown: %d follow-up(s) not answered", len(conversation.pending))
            conversation.pending.clear()
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=grace)
        for conversation in self._conversations.values():
            if conversation.reply is not None and not conversation.reply.done():
                conversation.reply.cancel(SHUTDOWN)
        if late:
            await asyncio.wait(late)

    async def _work(self, key: str, conversation: _Conversation) -> None:
        try:
            while conversation.pending:
                request = self._next_turn(conversation.pending)
                conversation.reply = asyncio.create_task(
                    self._runtime.answer(request.incoming, request.surface()), name=f"reply:{key}"
                )
                await asyncio.wait([conversation.reply])
                if not conversation.reply.cancelled() and (error := conversation.reply.exception()):
                    log.error("%s: reply failed", key, exc_info=error)
                conversation.reply = None
        finally:
            del self._conversations[key]

    @staticmethod
    def _next_turn(pending: deque[_Request]) -> _Request:
        """The next turn: a command alone, or every plain message waiting up to the next command, joined."""
        first = pending.popleft()
        if first.is_command:
            return first
        merged = [first]
        while pending and not pending[0].is_command:
            merged.append(pending.popleft())
        if len(merged) == 1:
            return first
        last = merged[-1]
        text = "\n\n".join(request.incoming.text for request in merged)
        incoming = Incoming(last.incoming.conversation, text, last.incoming.user_id, last.incoming.user_name)
        return _Request(incoming, last.surface)

    def _may_run(self, user: str) -> bool:
        now = self._clock.now()
        runs = self._runs.setdefault(user, deque())
        while runs and runs[0] <= now - 60:
            runs.popleft()
        if len(runs) >= self._runs_per_minute:
            return False
        runs.append(now)
        if len(self._runs) > 10_000:  # forget users quiet for a minute
            self._runs = {u: r for u, r in self._runs.items() if r and r[-1] > now - 60}
        return True

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
