"""One reply at a time per conversation, any number of conversations side by side.

The behaviour users see:
- A message that arrives while a reply streams waits for it. Several that arrive meanwhile are answered as ONE
  follow-up turn (their texts joined in order, their files together), replying to the last of them: the model
  sees everything the user added, and the chat gets one answer instead of a burst. Commands are never merged:
  each runs on its own.
- `/stop` (or a Stop button) cancels the running reply at once: the model's stream is closed, the message keeps
  the text so far with a "Stopped" mark, and follow-ups still waiting are dropped (the user asked for quiet).
- A request to approve a tool call waiting in the conversation (bot.approvals) is denied by a new message (the
  run goes on without the tool, then the new message is answered) and cancelled by `/stop` or `/reset`; a decision
  (a press, the timeout) is a turn of its own in the queue, so it never overlaps a reply.
- A user who starts more than `runs_per_minute` model runs in a minute gets a polite note instead of a run.
- `shutdown` takes no new messages, lets replies in flight finish for a grace period, then stops the rest, each
  finalised with its text so far and a notice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from typing import Any

from bot.approvals import CANCELLED, SUPERSEDED, Approval, Approvals, Decision, approved, denied
from bot.runtime import SHUTDOWN, Runtime
from channels.clock import Clock, LoopClock
from channels.commands import RESET, STOP, command_of
from channels.inbound import Incoming
from channels.surface import ReplySurface

log = logging.getLogger(__name__)

MAX_PENDING = 20
"""Messages one conversation keeps waiting behind its running reply; more are dropped (with one TOO_FAST note)."""
NOTE_EVERY = 60.0
"""A conversation hears TOO_FAST at most once in this many seconds, however many messages were turned away."""
NOTHING_TO_STOP = "There is no reply in progress to stop."
TOO_FAST = "You're sending messages faster than I can answer. Please wait a minute and try again."
SurfaceFactory = Callable[[], ReplySurface]


@dataclass
class _Request:
    incoming: Incoming
    surface: SurfaceFactory
    decided: tuple[Approval, Decision] | None = None
    """Not a message: a decided approval, whose run goes on (`Runtime.resume`)."""
    carried: bool = False
    """Not a message: the rest of a run a crash cut short (`Runtime.carry_on`)."""

    @property
    def is_command(self) -> bool:
        """A command, known or not ("/..."), a decision or a run carried on: never merged with other messages."""
        return self.decided is not None or self.carried or self.incoming.text.startswith("/")


@dataclass
class _Conversation:
    pending: deque[_Request] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    reply: asyncio.Task[None] | None = None
    asker: str | None = None
    """Who asked for the running reply (the last sender of a merged turn): who may stop it."""


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
        self._noted = Once(NOTE_EVERY, clock=self._clock)  # conversations that heard TOO_FAST lately

    def submit(self, incoming: Incoming, surface: SurfaceFactory) -> None:
        """Queue a message; returns at once. `surface` is opened when its reply starts."""
        if self._closed:
            log.info("%s: message after shutdown began; not answered", incoming.conversation)
            return
        request = _Request(incoming, surface)
        command, key = command_of(incoming.text), incoming.conversation
        if command is STOP:
            if not self.stop(key) and not self._settle_waiting(key, CANCELLED, surface):
                self.notify(surface, NOTHING_TO_STOP)
            return
        if command is RESET:  # a waiting approval goes with the conversation (a new message: see `_work`)
            self._settle_waiting(key, CANCELLED, surface)
        conversation = self._conversations.get(incoming.conversation)
        full = conversation is not None and len(conversation.pending) >= MAX_PENDING
        if full or (not request.is_command and not self._may_run(incoming.user_id)):
            log.info("%s: message from %s turned away (%s)", incoming.conversation, incoming.user_id,
                     "queue full" if full else "runs per minute")  # fmt: skip
            if self._noted.first(incoming.conversation):
                self.notify(surface, TOO_FAST)
            return
        conversation = self._conversations.setdefault(incoming.conversation, _Conversation())
        conversation.pending.append(request)
        if conversation.worker is None:
            conversation.worker = self._spawn(self._work(incoming.conversation, conversation))

    @property
    def approvals(self) -> Approvals | None:
        """The approvals waiting in these conversations (the runtime's)."""
        return self._runtime.approvals

    def decide(
        self, approval_id: str, decision: Decision, surface: SurfaceFactory, *, pressed: Any = None
    ) -> Approval | None:
        """Decide the waiting approval `approval_id`: its run goes on (or not) as the next turn of its conversation,
        answered on `surface`. Returns it, or None when it no longer waits (decided already, expired).

        `pressed` is the message whose button decided it (see `Approvals.take`)."""
        approvals = self.approvals
        approval = approvals.take(approval_id, pressed=pressed) if approvals is not None else None
        if approval is None or self._closed:
            return None
        conversation = self._conversations.setdefault(approval.conversation, _Conversation())
        incoming = Incoming(approval.conversation, "", approval.asker)
        # First in line: it goes on with the turn before every message that came after it.
        conversation.pending.appendleft(_Request(incoming, surface, decided=(approval, decision)))
        if conversation.worker is None:
            conversation.worker = self._spawn(self._work(approval.conversation, conversation))
        return approval

    def carry_on(self, key: str, asker: str, surface: SurfaceFactory) -> None:
        """Queue the rest of the run a crash cut short in conversation `key` (asked for by `asker`, who may stop
        it) as its next turn, before the messages that came after it."""
        if self._closed:
            return
        conversation = self._conversations.setdefault(key, _Conversation())
        conversation.pending.appendleft(_Request(Incoming(key, "", asker), surface, carried=True))
        if conversation.worker is None:
            conversation.worker = self._spawn(self._work(key, conversation))

    def answer_approval(self, key: str, approve: bool, by: str, surface: SurfaceFactory) -> bool:
        """Decide the approval waiting in conversation `key` (the console's y/n); False when none waits."""
        return self._settle_waiting(key, approved(by) if approve else denied(by), surface)

    def _settle_waiting(self, key: str, decision: Decision, surface: SurfaceFactory) -> bool:
        """Decide the approval waiting in conversation `key`, if any; returns whether there was one."""
        approvals = self.approvals
        waiting = approvals.waiting_in(key) if approvals is not None else None
        return waiting is not None and self.decide(waiting.id, decision, surface) is not None

    def stop(self, key: str) -> bool:
        """Stop the running reply of `key` and drop its waiting follow-ups. Returns whether a reply was running."""
        conversation = self._conversations.get(key)
        if conversation is None or conversation.reply is None or conversation.reply.done():
            return False
        conversation.pending.clear()
        conversation.reply.cancel()
        return True

    def asker(self, key: str) -> str | None:
        """The user id of who asked for the reply running in `key`, or None when none is running."""
        conversation = self._conversations.get(key)
        if conversation is None or conversation.reply is None or conversation.reply.done():
            return None
        return conversation.asker

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
                upcoming = conversation.pending[0]
                if not upcoming.is_command and self._settle_waiting(key, SUPERSEDED, upcoming.surface):
                    log.info("%s: a new message denies the tool call waiting for approval", key)
                request = self._next_turn(conversation.pending)
                conversation.asker = request.incoming.user_id
                if request.decided is not None:
                    turn = self._runtime.resume(*request.decided, request.surface())
                elif request.carried:
                    turn = self._runtime.carry_on(request.incoming, request.surface())
                else:
                    turn = self._runtime.answer(request.incoming, request.surface())
                conversation.reply = asyncio.create_task(turn, name=f"reply:{key}")
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
        text = "\n\n".join(request.incoming.text for request in merged if request.incoming.text)
        files = tuple(file for request in merged for file in request.incoming.attachments)
        incoming = Incoming(last.incoming.conversation, text, last.incoming.user_id, last.incoming.user_name, files)
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


class Once:
    """Says yes to a key at most once per `every` seconds: for notes and refusals that must not become a flood.

    Args:
        every: Seconds between two yeses for one key.
        clock: Tests control time with it.
    """

    def __init__(self, every: float, *, clock: Clock | None = None) -> None:
        self._every = every
        self._clock = clock or LoopClock()
        self._last: dict[Hashable, float] = {}

    def first(self, key: Hashable) -> bool:
        """Whether `key` gets its turn now (and if so, the next one is `every` seconds away)."""
        now = self._clock.now()
        last = self._last.get(key)
        if last is not None and now - last < self._every:
            return False
        self._last[key] = now
        if len(self._last) > 10_000:  # forget keys whose time is up, so memory follows recent senders
            self._last = {k: t for k, t in self._last.items() if now - t < self._every}
        return True
