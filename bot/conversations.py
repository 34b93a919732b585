"""One reply at a time per conversation, any number of conversations side by side.

The behaviour users see:
- A message that arrives while a reply streams waits for it. Several that arrive meanwhile are answered as ONE
  follow-up turn (their texts joined in order, their files together), replying to the last of them: the model
  sees everything the user added, and the chat gets one answer instead of a burst. Commands are never merged:
  each runs on its own.
- `/stop` (or a Stop button) cancels the running reply at once: the model's stream is closed, the message keeps
  the text so far with a "Stopped" mark, and follow-ups still waiting are dropped (the user asked for quiet).
- A request to approve a tool call waiting in the conversation (bot.approvals) is denied by a new message (the
  run goes on without the tool, then the new message is answered) and cancelled by `/stop` (when no reply runs)
  or `/reset`; a decision (a press, the timeout) is a turn of its own, first in the queue, so it never overlaps a
  reply. Which approval waits is read from the store, so it is the same answer on every replica.
- A user who starts more than `runs_per_minute` model runs in a minute gets a polite note instead of a run.
- `shutdown` takes no new messages, lets replies in flight finish for a grace period, then stops the rest, each
  finalised with its text so far and a notice.

In replica mode (`share`, REDIS_URL) the queue of each conversation is in Redis (`bot.shared_queues`), so the
messages of one conversation are answered one at a time and in order whichever replica they land on: the replica
that holds the conversation's lease drains its queue with the same rules (follow-ups merged, commands alone,
MAX_PENDING); a Stop that lands elsewhere is sent to it; when a replica dies, another takes its conversations over
(their replies cut short are finished first, `on_takeover`); a decision on an approval is claimed and queued at the
head of the conversation's queue in one step (`SharedQueues.decide`), so exactly one decision goes on with the run,
on the replica that holds the conversation, whichever replica it was made on; at shutdown, a replica lets go of the
conversations it is not answering at once, and of the others after their replies ended, so another replica answers
what waits; a reply still running when the grace ends is handed over (`HAND_OVER`): it stops writing, its in-flight
record is written, and its conversation is let go, due at once, so another replica finishes it (`on_takeover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from bot.approvals import CANCELLED, SUPERSEDED, Approval, Approvals, Decision, Ruling, approved, denied
from bot.metrics import LEASES_TAKEN_OVER
from bot.runtime import HAND_OVER, LEASE_LOST, SHUTDOWN, Runtime
from bot.shared_queues import SWEEP_EVERY, Entry, SharedQueues
from bot.store import STORE_ERRORS
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
KEEP_LOCAL = 10_000
"""Replica mode: the messages queued here kept with their files, until this replica answers them (or forgets)."""


@dataclass
class _Request:
    incoming: Incoming
    surface: SurfaceFactory
    decided: Ruling | None = None
    """Not a message: a decision on an approval, whose run goes on (`Runtime.resume`)."""
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
    lease: str | None = None
    """Replica mode: this replica's lease on the conversation (the fencing check's value) while it holds it."""
    quiet: bool = False
    """Replica mode: a Stop came; the follow-ups waiting in Redis are dropped after the reply."""
    handed_over: bool = False
    """Replica mode: its reply was handed over at shutdown; the conversation is let go as due at once."""


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
        self._shared: SharedQueues | None = None
        self._surface_of: Callable[[dict[str, Any]], ReplySurface] | None = None
        self._fetcher: Callable[[dict[str, Any]], Callable[[int], Awaitable[bytes]]] | None = None
        self._on_takeover: Callable[[str], Awaitable[None]] | None = None
        self._local: OrderedDict[str, _Request] = OrderedDict()  # entry id -> the request queued here
        self._order: dict[str, tuple[asyncio.Lock, int]] = {}  # conversation -> its enqueueing here, and who waits
        self._background: list[asyncio.Task[None]] = []
        self._claimed: set[str] = set()  # one process: the approvals decided here whose turn has not run yet

    def share(
        self,
        queues: SharedQueues,
        surface_of: Callable[[dict[str, Any]], ReplySurface],
        on_takeover: Callable[[str], Awaitable[None]],
        fetcher: Callable[[dict[str, Any]], Callable[[int], Awaitable[bytes]]],
    ) -> None:
        """Replica mode: queue every conversation's messages in Redis (`queues`) from now on.

        Args:
            queues: The shared queues and leases.
            surface_of: The reply surface for a queued entry's address (entries from other replicas).
            on_takeover: Called with a conversation taken over from a replica that stopped renewing its lease,
                before its queue is drained: it finishes the replies that replica left in flight there.
            fetcher: The download of a queued entry's file (`Attachment.source`).
        """
        self._shared, self._surface_of, self._on_takeover, self._fetcher = queues, surface_of, on_takeover, fetcher
        self._background = [
            asyncio.create_task(self._heartbeat(queues), name="leases-heartbeat"),
            asyncio.create_task(self._sweep(queues), name="leases-sweep"),
            asyncio.create_task(self._listen_stops(queues), name="stop-listener"),
        ]

    def submit(self, incoming: Incoming, surface: SurfaceFactory, address: dict[str, Any] | None = None) -> None:
        """Queue a message; returns at once. `surface` is opened when its reply starts; `address` is where the
        reply goes, as data (replica mode queues it in Redis, where any replica can answer it)."""
        if self._closed:
            log.info("%s: message after shutdown began; not answered", incoming.conversation)
            return
        request = _Request(incoming, surface)
        command, key = command_of(incoming.text), incoming.conversation
        if command is STOP:
            if not self.stop(key):
                self._spawn(self._stop_elsewhere(key, surface))
            return
        if self._shared is not None and address is not None:  # (the queue and the run count are in Redis)
            self._spawn(self._enqueue(self._shared, request, address))
            return
        self._queue_here(request)

    def _turn_away(self, request: _Request, why: str) -> None:
        """A message not answered (its conversation's queue is full, its sender ran too much): logged, and the
        conversation hears TOO_FAST at most once a minute."""
        incoming = request.incoming
        log.info("%s: message from %s turned away (%s)", incoming.conversation, incoming.user_id, why)
        if self._noted.first(incoming.conversation):
            self.notify(request.surface, TOO_FAST)

    def _queue_here(self, request: _Request) -> None:
        """One process (or Redis away): the conversation's queue is in memory, the run counts too."""
        incoming = request.incoming
        conversation = self._conversations.get(incoming.conversation)
        full = conversation is not None and len(conversation.pending) >= MAX_PENDING
        if full or (not request.is_command and not self._may_run(incoming.user_id)):
            self._turn_away(request, "queue full" if full else "runs per minute")
            return
        conversation = self._conversations.setdefault(incoming.conversation, _Conversation())
        conversation.pending.append(request)
        if conversation.worker is None:
            conversation.worker = self._spawn(self._work(incoming.conversation, conversation))

    @property
    def approvals(self) -> Approvals | None:
        """The approvals waiting in these conversations (the runtime's)."""
        return self._runtime.approvals

    async def decide(
        self, approval: Approval, decision: Decision, surface: SurfaceFactory, *, pressed: Any = None
    ) -> bool:
        """Decide the waiting `approval`: its run goes on (or not) as the next turn of its conversation, before the
        messages that wait there, answered on `surface`. Returns False when a decision on it was made already
        (here or, with replicas, anywhere): only the first counts.

        `pressed` is the message whose button decided it (see `Ruling`).

        Raises:
            RedisError: Replica mode, Redis is away: nothing was decided.
        """
        if self._closed:
            return False
        key = approval.conversation
        request = _Request(Incoming(key, "", approval.asker), surface, decided=Ruling(approval.id, decision, pressed))
        if self._shared is not None:
            return await self._decide_shared(self._shared, request, approval)
        if approval.id in self._claimed:
            return False
        self._claimed.add(approval.id)
        self._first(key, request)
        return True

    def carry_on(self, key: str, asker: str, surface: SurfaceFactory) -> None:
        """Queue the rest of the run a crash (or a hand-over) cut short in conversation `key` (asked for by
        `asker`, who may stop it) as its next turn, before the messages that came after it."""
        if not self._closed:
            self._first(key, _Request(Incoming(key, "", asker), surface, carried=True))

    def _first(self, key: str, request: _Request) -> None:
        """Queue `request` (not a message) here, as the next turn of `key`, before every message waiting."""
        conversation = self._conversations.setdefault(key, _Conversation())
        conversation.pending.appendleft(request)
        if conversation.worker is None:
            conversation.worker = self._spawn(
                self._work(key, conversation) if self._shared is None else self._hold(self._shared, key, conversation)
            )

    async def answer_approval(self, key: str, approve: bool, by: str, surface: SurfaceFactory) -> bool:
        """Decide the approval waiting in conversation `key` (the console's y/n); False when none waits."""
        return await self._settle_waiting(key, approved(by) if approve else denied(by), surface)

    async def _settle_waiting(self, key: str, decision: Decision, surface: SurfaceFactory) -> bool:
        """Decide the approval waiting in conversation `key`, if any (the store says); returns whether this
        decision is the one that counts. A store (or Redis) that is away counts as none waiting: the conversation
        goes on (its run answers a call left waiting as cancelled)."""
        approvals = self.approvals
        if approvals is None:
            return False
        try:
            waiting = await approvals.waiting_in(key)
            return waiting is not None and await self.decide(waiting, decision, surface)
        except (*STORE_ERRORS, RedisError) as exc:
            log.warning("%s: cannot decide the approval that may wait (%s)", key, type(exc).__name__)
            return False

    def stop(self, key: str) -> bool:
        """Stop the running reply of `key` and drop its waiting follow-ups. Returns whether a reply was running."""
        conversation = self._conversations.get(key)
        if conversation is None or conversation.reply is None or conversation.reply.done():
            return False
        conversation.pending.clear()
        conversation.quiet = True
        conversation.reply.cancel()
        return True

    async def stop_anywhere(self, key: str) -> bool:
        """`stop`, also for a reply another replica is writing (replica mode): it hears it within a second."""
        if self.stop(key):
            return True
        if self._shared is None:
            return False
        running = await self._shared.holder(key)
        if running is None:
            return False
        await self._shared.send_stop(running[0], key)
        return True

    async def asker_anywhere(self, key: str) -> str | None:
        """`asker`, also for a reply another replica is writing (replica mode)."""
        asker = self.asker(key)
        if asker is not None or self._shared is None:
            return asker
        running = await self._shared.holder(key)
        return running[1] if running is not None else None

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
        """Take no new messages; give replies in flight `grace` seconds, then stop and finalise the rest. In
        replica mode, what waits in Redis stays there: each conversation is let go as soon as no reply of it runs
        here, and another replica answers it; a reply still running after `grace` is handed over, not finalised
        (another replica finishes it), since its conversation is held in Redis."""
        self._closed = True
        for conversation in self._conversations.values():
            if conversation.pending and self._shared is None:
                log.info("shutdown: %d follow-up(s) not answered", len(conversation.pending))
                conversation.pending.clear()
        try:
            if not self._tasks:
                return
            _, late = await asyncio.wait(set(self._tasks), timeout=grace)
            for key, conversation in self._conversations.items():
                if conversation.reply is not None and not conversation.reply.done():
                    conversation.handed_over = conversation.lease is not None
                    conversation.reply.cancel(HAND_OVER if conversation.handed_over else SHUTDOWN)
                    how = "handed over" if conversation.handed_over else "cut short"
                    log.info("%s: a reply still running after the grace is %s", key, how)
            if late:
                await asyncio.wait(late)
        finally:
            background, self._background = self._background, []  # their loops end when they see it (`_running`)
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _work(self, key: str, conversation: _Conversation) -> None:
        try:
            while conversation.pending:
                request = self._next_turn(conversation.pending)  # formed now: what comes from here on follows it
                await self._settle_for(key, request)
                pending = conversation.pending
                if pending and (pending[0].decided is not None or pending[0].carried):  # (its own, or a press's)
                    pending.insert(1, request)  # a decision came first meanwhile: it goes on with the run first
                    continue
                await self._run(key, conversation, request)
        finally:
            del self._conversations[key]

    async def _settle_for(self, key: str, upcoming: _Request) -> bool:
        """What the turn about to start does to an approval waiting in `key`: a message denies it (the run goes on
        without the tool first), /reset cancels it (it goes with the conversation). Returns whether it decided one:
        that decision is then the next turn."""
        if command_of(upcoming.incoming.text) is RESET:
            decision, what = CANCELLED, "/reset cancels"
        elif not upcoming.is_command:
            decision, what = SUPERSEDED, "a new message denies"
        else:
            return False
        if not await self._settle_waiting(key, decision, upcoming.surface):
            return False
        log.info("%s: %s the tool call waiting for approval", key, what)
        return True

    async def _run(self, key: str, conversation: _Conversation, request: _Request) -> None:
        """Run one turn as the conversation's reply, and wait for it."""
        conversation.asker = request.incoming.user_id
        if request.decided is not None:
            turn = self._runtime.resume(request.decided, request.surface())
        elif request.carried:
            turn = self._runtime.carry_on(request.incoming, request.surface())
        else:
            turn = self._runtime.answer(request.incoming, request.surface())
        conversation.reply = asyncio.create_task(turn, name=f"reply:{key}")
        await asyncio.wait([conversation.reply])
        if not conversation.reply.cancelled() and (error := conversation.reply.exception()):
            log.error("%s: reply failed", key, exc_info=error)
        conversation.reply = None
        if request.decided is not None:  # written by now (or it failed: the approval may be decided again)
            self._claimed.discard(request.decided.approval)

    # -- replica mode --------------------------------------------------------------------------------------

    async def _enqueue(self, shared: SharedQueues, request: _Request, address: dict[str, Any]) -> None:
        """Append a message to its conversation's queue in Redis; take the conversation if nobody holds it."""
        incoming, key = request.incoming, request.incoming.conversation
        lock, waiting = self._order.get(key) or (asyncio.Lock(), 0)  # messages landing here keep their order
        self._order[key] = (lock, waiting + 1)
        try:
            async with lock:
                entry = Entry.of(incoming, address, shared.new_id())
                try:
                    if not request.is_command and not await shared.may_run(incoming.user_id, self._runs_per_minute):
                        self._turn_away(request, "runs per minute")
                        return
                    self._remember(entry, request)
                    status = await shared.enqueue(entry, MAX_PENDING)
                    await self._take_if_free(shared, key, status)
                except RedisError as exc:  # Redis is away: this replica answers, as one process would
                    log.warning("%s: cannot queue in Redis (%s); answered here", key, type(exc).__name__)
                    self._local.pop(entry.id, None)
                    self._queue_here(request)
                    return
                if status == "full":
                    self._local.pop(entry.id, None)
                    self._turn_away(request, "queue full")
        finally:
            lock, waiting = self._order[key]
            if waiting == 1:
                del self._order[key]
            else:
                self._order[key] = (lock, waiting - 1)

    def _remember(self, entry: Entry, request: _Request) -> None:
        """Keep the request of an entry queued here, so this replica answers it from memory if it holds `key`."""
        self._local[entry.id] = request
        while len(self._local) > KEEP_LOCAL:
            self._local.popitem(last=False)

    async def _take_if_free(self, shared: SharedQueues, key: str, status: str) -> None:
        """After queueing in `key`: take it if nobody holds it ("free"), or over if its holder died ("orphaned")."""
        lease = await shared.acquire(key) if status in ("free", "orphaned") else None
        if lease is not None:
            self._take(shared, key, lease, taken_over=status == "orphaned")

    async def _decide_shared(self, shared: SharedQueues, request: _Request, approval: Approval) -> bool:
        """`decide` with replicas: claim the decision and queue it at the head of the conversation's queue in Redis
        (one script), where it outlives this replica; the holder runs it (this replica takes the conversation if
        nobody holds it; if it cannot, the sweep gives it to a replica that can)."""
        assert request.decided is not None
        key = approval.conversation
        entry = Entry(
            key, "", approval.asker, None, approval.address, shared.new_id(), decided=request.decided.encode()
        )
        self._remember(entry, request)
        status = "taken"
        try:
            status = await shared.decide(entry, approval.id)
        finally:
            if status == "taken":  # (or Redis failed, which the caller hears: nothing was queued)
                self._local.pop(entry.id, None)
        if status == "taken":
            return False
        try:
            await self._take_if_free(shared, key, status)
        except RedisError as exc:
            log.warning("%s: a decision is queued but the conversation not taken (%s)", key, type(exc).__name__)
        return True

    def _take(self, shared: SharedQueues, key: str, lease: str, *, taken_over: bool = False) -> None:
        """This replica holds `key` now: drain its queue (`taken_over`: after what the last holder left there)."""
        if taken_over:
            LEASES_TAKEN_OVER.labels("conversation").inc()
            log.info("%s: took the conversation over from a replica that died or shut down", key)
        conversation = self._conversations.setdefault(key, _Conversation())
        conversation.lease = lease
        if conversation.worker is None:
            conversation.worker = self._spawn(self._hold(shared, key, conversation, taken_over=taken_over))

    async def _hold(
        self, shared: SharedQueues, key: str, conversation: _Conversation, *, taken_over: bool = False
    ) -> None:
        """Answer `key`'s queue while holding its lease, then let the lease go (at shutdown: hand it over)."""
        try:
            while conversation.lease is None:  # a run carried on in a conversation this replica does not hold
                if self._closed or (lease := await shared.acquire(key)) is not None:
                    conversation.lease = lease if not self._closed else None
                    break
                await asyncio.sleep(SWEEP_EVERY)
            if conversation.lease is None:
                return
            if taken_over and self._on_takeover is not None:
                await self._on_takeover(key)
            while (lease := conversation.lease) is not None:
                if conversation.quiet:
                    conversation.quiet = False
                    await shared.pop(key, lease, None)
                request: _Request | None
                if conversation.pending and not self._closed:  # a run carried on: before every message
                    request = conversation.pending.popleft()
                else:
                    request = None if self._closed else await self._next_shared_turn(shared, key, lease)
                    if request is None:
                        released = await shared.release(
                            key, lease, hand_over=self._closed, unfinished=conversation.handed_over
                        )
                        if released is False or conversation.lease != lease:
                            continue  # a message came meanwhile (and this replica may have taken it again)
                        break
                await shared.running(key, request.incoming.user_id)
                await self._run(key, conversation, request)
                if conversation.lease is not None:
                    await shared.running(key, None)
        except RedisError as exc:
            log.warning("%s: Redis failed while answering the queue (%s); another replica takes over", key, exc)
        finally:
            del self._conversations[key]

    async def _next_shared_turn(self, shared: SharedQueues, key: str, lease: str) -> _Request | None:
        """The next turn from Redis (the same rules as `_work`), taken off the queue; None when it is empty or the
        lease was lost (the heartbeat then stops this conversation)."""
        while True:
            entries = await shared.peek(key, MAX_PENDING)
            if not entries:
                return None
            requests = deque(self._local.get(entry.id) or self._request_of(entry) for entry in entries)
            if await self._settle_for(key, requests[0]):
                continue  # its decision is first in the queue now
            before = len(requests)
            request = self._next_turn(requests)
            taken = entries[: before - len(requests)]
            popped = await shared.pop(key, lease, taken)
            if popped is None:
                return None
            if popped:
                for entry in taken:
                    self._local.pop(entry.id, None)
                return request
            # else something came before them meanwhile (a decision, a message sent earlier): look again

    def _request_of(self, entry: Entry) -> _Request:
        """An entry another replica queued: a message, or a decision on an approval."""
        assert self._surface_of is not None and self._fetcher is not None and entry.address is not None
        address, surface_of, fetcher = entry.address, self._surface_of, self._fetcher
        decided = Ruling.decode(entry.decided) if entry.decided is not None else None
        return _Request(entry.incoming(fetcher), lambda: surface_of(address), decided=decided)

    async def _stop_elsewhere(self, key: str, surface: SurfaceFactory) -> None:
        """/stop for a reply that does not run here: the replica writing it stops it; when no reply runs anywhere,
        the approval waiting in the conversation is cancelled; else there is nothing to stop."""
        try:
            if await self.stop_anywhere(key):
                return
        except RedisError as exc:
            log.warning("%s: /stop could not reach the other replicas (%s)", key, type(exc).__name__)
        if not await self._settle_waiting(key, CANCELLED, surface):
            self.notify(surface, NOTHING_TO_STOP)

    def _lose(self, key: str) -> None:
        """The lease of `key` is gone (expired, another replica holds it): stop writing at once."""
        conversation = self._conversations.get(key)
        if conversation is None or conversation.lease is None:
            return
        log.warning("%s: the conversation's lease was lost; another replica finishes it", key)
        conversation.lease = None
        conversation.pending.clear()
        if conversation.reply is not None and not conversation.reply.done():
            conversation.reply.cancel(LEASE_LOST)

    async def _heartbeat(self, shared: SharedQueues) -> None:
        """Renew the leases held here every third of their TTL; stop the conversations whose lease is lost, and
        all of them when renewals failed for two thirds of the TTL (the leases may have expired)."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while self._running():
            await asyncio.sleep(shared.ttl / 3)
            held = {key: c.lease for key, c in self._conversations.items() if c.lease is not None}
            try:
                lost = await asyncio.wait_for(shared.renew(held), shared.ttl / 3)
                renewed = loop.time()
            except (RedisError, TimeoutError) as exc:
                if loop.time() - renewed <= shared.ttl * 2 / 3:
                    continue
                log.warning("leases not renewed in time (%s); letting %d conversation(s) go", exc, len(held))
                lost = list(held)
            for key in lost:
                self._lose(key)

    async def _sweep(self, shared: SharedQueues) -> None:
        """Take over the conversations whose holder stopped renewing (it died), handed them over, or that wait for
        one."""
        while self._running():
            await asyncio.sleep(SWEEP_EVERY)
            if self._closed:
                continue
            try:
                for key in await shared.expired():
                    if key in self._conversations or (lease := await shared.acquire(key)) is None:
                        continue
                    self._take(shared, key, lease, taken_over=True)
            except RedisError as exc:
                log.warning("cannot look for conversations to take over (%s)", type(exc).__name__)

    async def _listen_stops(self, shared: SharedQueues) -> None:
        """Stop the replies other replicas were asked to stop."""
        async for key in shared.stops(self._running):
            if not self.stop(key):
                log.info("%s: a stop from another replica came after the reply ended", key)

    def _running(self) -> bool:
        """Whether the background task calling it (heartbeat, sweep, Stop listener) is still to run: `shutdown`
        cancels them, and a cancellation can be lost on its way (Python 3.11's `asyncio.wait_for`, which redis-py
        sends every command through, returns the result instead of raising when the cancellation comes as that
        result does; see `StreamingHandler._end_flusher`); a loop that lost it ends here, so `shutdown` ends."""
        return asyncio.current_task() in self._background

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
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s failed", task.get_coro().__qualname__, exc_info=error)  # type: ignore[union-attr]


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
