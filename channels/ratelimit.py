"""One shared rate budget per scope a platform meters (a chat, a workspace's method) and per bot, with the
platform's retry_after gates inside it.

Every platform call of a channel is made inside `RateLimiter.slot` (the limiter wraps the call, not the caller).
A call names the budgets it spends from (`Scope`s, narrowest first: a Telegram chat; a Slack channel's and
workspace's chat.postMessage) and the retry_after gate it waits behind; the bot's own budget applies to every
call. Two kinds of callers:

- urgent calls (a reply's first message, every final message) wait here until every budget they spend from has
  room, so they go before anything else. They wait in a line per budget, in the order they came: one waiter
  watches a budget at a time, so a thousand waiting replies cost no more CPU than one, and none is overtaken for
  ever;
- other calls (intermediate edits, drafts, typing) never wait: when a budget is short they raise `RateLimited`
  with the time until they could go, and the StreamingHandler simply shows the latest text later. They also
  leave a reserve of each budget to urgent calls and yield while any urgent call is waiting for it, which is what
  "under pressure intermediate edits are dropped first" means. In a `paced` budget (a Slack workspace's
  chat.update, shared by every reply streaming there) they also take turns: each reply's intermediate calls are
  spaced so that all the replies in flight together fit the budget, instead of the quickest taking it all.

A 429 is bookkept here, in the call's own path: a `RateLimited` that leaves the block (the channel translated
the platform's 429 into it) closes the call's gate for retry_after, so no call behind that gate, urgent or not,
goes out before it has passed. When none of the call's budgets was full the platform's limit is tighter than
ours: where the bot's budget is the platform's own (Telegram's 30/s) every call of the bot waits. A budget that
`learns` (Slack's tiers, which Slack only publishes as "50+ a minute") and is blamed for a 429 lowers its limit to one
below what it had used (at most halving it per 429), and takes one call a period back for every period after. A call
behind a closed gate raises `RateLimited` with the time left, urgent or not: how long a final message may wait is the
StreamingHandler's decision (it waits, or at shutdown hands the text to the outbox).

Calls made inside `low_priority()` (a refusal to someone outside the allowlist) are never urgent, whatever their
caller says: they leave the reserve to replies and are dropped (`RateLimited`) when a budget is short.

`prompt` tells a channel whether its budget's line of urgent calls is short, so that under overload a reply skips
its first preview when that preview would only go out about when its final does. Budgets are sliding windows
("at most N calls in any T seconds"), slightly stricter than the platforms' own.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Hashable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from channels.clock import Clock, LoopClock
from channels.errors import RateLimited
from channels.shared_budget import Admitted, SharedBudgets, Window

log = logging.getLogger(__name__)

_LOW_PRIORITY: contextvars.ContextVar[bool] = contextvars.ContextVar("low_priority", default=False)
IN_FLIGHT_POLL = 0.05
"""How soon to look again when the budget is held by calls still in flight."""
PREVIEW_HORIZON = 5.0
"""A reply's first preview goes first (urgent) only while the urgent line it would join is shorter than this many
seconds: behind a longer line the answer is usually complete by the time the preview would go out, and the
final message alone serves the user better (a thousand previews at 25/s would delay every final by 40 s)."""
IDLE_TURNS = 4
"""A reply that has not asked for a paced budget for this many of its periods no longer counts as streaming."""
_BOT = object()
"""The key of the bot's own budget, and of the gate a 429 about the whole bot closes."""
_SHARED_BOT = "bot"
"""`_BOT` as the replicas' shared budgets name it."""


@dataclass(frozen=True, slots=True)
class Budget:
    """At most `limit` calls in any `period` seconds."""

    limit: int
    period: float

    @property
    def reserve(self) -> int:
        """Slots that only urgent calls may use: a fifth of the budget, at least one where there are two."""
        return _reserve(self.limit)

    @classmethod
    def per_minute(cls, calls: int, *, burst: int | None = None) -> Budget:
        """`calls` a minute in bursts of `burst` (default a tenth): Slack's tiers as a window Slack accepts."""
        burst = max(1, burst if burst is not None else calls // 10)
        return cls(burst, 60.0 * burst / max(1, calls))


@dataclass(frozen=True, slots=True)
class Scope:
    """One budget a call spends from.

    Attributes:
        key: Whose budget: a chat, (chat, "drafts"), (workspace, "chat.update").
        budget: Its size.
        paced: Intermediate calls of the replies sharing it take turns (see the module docstring).
        learns: The platform does not publish the exact limit: a 429 blamed on this budget lowers it.
    """

    key: Hashable
    budget: Budget
    paced: bool = False
    learns: bool = False


def _reserve(limit: int) -> int:
    return min(limit - 1, max(1, math.ceil(limit / 5))) if limit > 1 else 0


@dataclass(slots=True)
class _Window:
    budget: Budget
    paced: bool = False
    learns: bool = False
    times: deque[float] = field(default_factory=deque)
    """When recent calls completed, oldest first."""
    in_flight: int = 0
    urgent_waiting: int = 0
    line: asyncio.Lock = field(default_factory=asyncio.Lock)  # fair: first come, first served
    turns: dict[Hashable, float] = field(default_factory=dict)
    """Paced: per reply, when its next intermediate call may go."""
    learned: tuple[int, float] | None = None
    """(limit, when) after a 429 the budget did not explain."""

    def limit(self, now: float) -> int:
        if self.learned is None:
            return self.budget.limit
        limit, since = self.learned
        recovered = limit + int((now - since) / self.budget.period)  # one call back per quiet period
        if recovered >= self.budget.limit:
            self.learned = None
            return self.budget.limit
        return recovered

    def used(self, now: float) -> int:
        times, period = self.times, self.budget.period
        while times and times[0] <= now - period:
            times.popleft()
        return self.in_flight + len(times)

    def wait(self, now: float, *, urgent: bool) -> float:
        """Seconds until one more call fits (leaving the reserve free unless `urgent`).

        A call in flight holds a slot as if it were happening now; once it completes, it holds it for a period
        from its completion. Since a call reaches the platform before it completes, no period of the platform's
        clock sees more than `limit` calls, however the event loop delays them on the way.
        """
        used, limit = self.used(now), self.limit(now)
        allowed = limit if urgent else limit - _reserve(limit)
        if used < allowed:
            return 0.0
        expiring = used - allowed  # the index of the completed call whose expiry makes room
        if expiring < len(self.times):
            return self.times[expiring] + self.budget.period - now
        return min(self.budget.period, IN_FLIGHT_POLL)  # only calls in flight hold it: look again shortly

    def line_seconds(self, now: float) -> float:
        """How long the urgent calls waiting for this budget need, at its rate."""
        return self.urgent_waiting * self.budget.period / self.limit(now)

    def pace(self, now: float) -> float:
        """Seconds between two intermediate calls of one reply, so that all replies streaming here fit.

        A reply streaming alone has no one to take turns with: the budget's burst is its own.
        """
        if len(self.turns) < 2:
            return 0.0
        limit = self.limit(now)
        return len(self.turns) * self.budget.period / max(1, limit - _reserve(limit))

    def idle(self) -> bool:
        return not (self.in_flight or self.urgent_waiting or self.turns or self.line.locked())


class RateLimiter:
    """The budgets of one bot token: the bot's own, one per scope its calls name, and the retry_after gates.

    Args:
        bot: The budget all calls of this bot share (Telegram: 30 per second).
        bot_is_platform_limit: The platform limits the bot as a whole (Telegram), so a 429 no other budget
            explains holds every call. Slack has no such limit (each method is budgeted per workspace).
        clock: Injected in tests; the event loop's clock otherwise.

    In replica mode `share` adds the budgets and gates every replica of the bot token shares
    (channels/shared_budget.py): a call then needs room in them too.
    """

    def __init__(
        self,
        bot: Budget,
        *,
        bot_is_platform_limit: bool = True,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or LoopClock()
        self._shared: SharedBudgets | None = None
        self._bot = _Window(bot)
        self._bot_is_platform_limit = bot_is_platform_limit
        self._windows: dict[Hashable, _Window] = {}
        self._paced: dict[Hashable, _Window] = {}  # the paced ones among them (few: one per workspace and method)
        self._gates: dict[Hashable, float] = {}
        self._sweep_at = 1024
        self.dropped = 0
        """Calls refused for want of budget (not urgent, nothing to spare) since the start: the metrics read it."""

    @asynccontextmanager
    async def slot(
        self, scopes: Sequence[Scope], *, gate: Hashable, urgent: bool, caller: Hashable | None = None
    ) -> AsyncIterator[None]:
        """Hold room for one call while the block makes it, waiting for room first if `urgent`.

        Args:
            scopes: The budgets the call spends from besides the bot's, narrowest first.
            gate: The retry_after gate the call waits behind, and that a 429 of this call closes.
            urgent: Wait for room in the budgets instead of failing.
            caller: The reply making the call, for the turns of paced budgets.

        Raises:
            RateLimited: The gate is closed, or (not urgent) there is no room now; `retry_after` says when to try
                again. Also the block's own RateLimited (the platform's 429), after closing the gate.
        """
        urgent = urgent and not _LOW_PRIORITY.get()
        windows = [*(self._window(scope) for scope in scopes), self._bot]
        if (closed := self.blocked_for(gate)) > 0:
            raise RateLimited(closed, "waiting out the platform's retry_after")
        if urgent:
            await self._wait_in_line(windows, gate)
        else:
            wait = self._intermediate_wait(windows, caller)
            if wait > 0:
                self.dropped += 1
                raise RateLimited(wait, "local rate budget")
        if caller is not None:
            self._take_turn(windows, caller)
        for window in windows:
            window.in_flight += 1
        try:
            place = await self._take_shared(scopes, windows, gate, urgent=urgent)
        except BaseException:
            for window in windows:
                window.in_flight -= 1
            raise
        platform_429: RateLimited | None = None
        try:
            yield
        except RateLimited as exc:
            platform_429 = exc
            raise
        finally:
            done = self._clock.now()
            for window in windows:
                window.in_flight -= 1
                window.times.append(done)
            shut = self._told_to_wait(windows, gate, platform_429.retry_after) if platform_429 else ()
            if self._shared is not None:
                await self._give_back(place, shut, platform_429.retry_after if platform_429 else 0.0)

    def share(self, shared: SharedBudgets) -> None:
        """Replica mode, once the bot knows who it is: from now on every call also needs room in `shared`."""
        self._shared = shared

    @staticmethod
    @contextmanager
    def low_priority() -> Iterator[None]:
        """Make every call in the block (in this task) a non-urgent one: it goes only with budget to spare."""
        token = _LOW_PRIORITY.set(True)
        try:
            yield
        finally:
            _LOW_PRIORITY.reset(token)

    def blocked_for(self, gate: Hashable) -> float:
        """Seconds until a call behind `gate` may pass the retry_after gates, its own and the bot's (0 when open)."""
        return max(0.0, max(self._gates.get(gate, 0.0), self._gates.get(_BOT, 0.0)) - self._clock.now())

    def backlog(self, scope: Scope | None = None) -> float:
        """Seconds the urgent calls waiting for `scope`'s budget (the bot's by default) need."""
        window = self._bot if scope is None else self._window(scope)
        return window.line_seconds(self._clock.now())

    def prompt(self, scope: Scope | None = None) -> bool:
        """Whether a first preview in `scope` (the bot's budget by default) would go out soon enough to be urgent."""
        return self.backlog(scope) < PREVIEW_HORIZON

    def release(self, caller: Hashable) -> None:
        """The reply `caller` is over: it no longer takes turns in any paced budget."""
        for window in self._paced.values():
            window.turns.pop(caller, None)

    async def _wait_in_line(self, windows: list[_Window], gate: Hashable) -> None:
        """Join each budget's line in turn (narrowest first, the bot's last, so no two calls wait for each other)
        and wait until all of them have room; the call holds its slots before it leaves the lines.

        A call counts as waiting for a budget (so that intermediate calls spending from it yield) from when it
        joins that budget's line: a final waiting for its own chat, or for a workspace's chat.stopStream, does
        not hold up intermediate calls that spend only from other budgets and the bot's.
        """
        joined: list[_Window] = []
        try:
            async with AsyncExitStack() as lines:
                for window in windows:
                    window.urgent_waiting += 1
                    joined.append(window)
                    await lines.enter_async_context(window.line)
                    while (wait := max(w.wait(self._clock.now(), urgent=True) for w in joined)) > 0:
                        await self._clock.sleep(wait)
                if (closed := self.blocked_for(gate)) > 0:  # a 429 closed the gate while this call waited
                    raise RateLimited(closed, "waiting out the platform's retry_after")
        finally:
            for window in joined:
                window.urgent_waiting -= 1

    def _intermediate_wait(self, windows: list[_Window], caller: Hashable | None) -> float:
        now = self._clock.now()
        wait = 0.0
        for window in windows:
            if window.urgent_waiting:  # come back when the line of urgent calls has likely gone
                wait = max(wait, window.line_seconds(now))
                continue
            wait = max(wait, window.wait(now, urgent=False))
            if window.paced and caller is not None:
                turn = window.turns.setdefault(caller, now)  # a reply asking counts as streaming from now on
                wait = max(wait, turn - now)
        return wait

    def _take_turn(self, windows: list[_Window], caller: Hashable) -> None:
        now = self._clock.now()
        for window in windows:
            if window.paced:
                window.turns.setdefault(caller, now)  # counted in the pace below
                window.turns[caller] = now + window.pace(now)
                idle = now - IDLE_TURNS * max(window.budget.period, window.pace(now))
                for other in [c for c, turn in window.turns.items() if turn < idle]:
                    del window.turns[other]  # a reply that stopped asking (a long tool, or never closed)

    async def _take_shared(
        self, scopes: Sequence[Scope], windows: list[_Window], gate: Hashable, *, urgent: bool
    ) -> Admitted | None:
        """A place in the budgets shared with the other replicas, if any: an urgent call waits for it (keeping its
        place in this replica's lines), another fails as it would locally."""
        if self._shared is None:
            return None
        now = self._clock.now()
        keys = [*(scope.key for scope in scopes), _SHARED_BOT]
        shared = [
            Window(key, w.limit(now), _reserve(w.limit(now)), w.budget.period)
            for key, w in zip(keys, windows, strict=True)
        ]
        while True:
            verdict = await self._shared.admit(shared, [gate, _SHARED_BOT], urgent=urgent)
            if isinstance(verdict, Admitted):
                return verdict
            if not urgent:
                raise RateLimited(verdict, "shared rate budget")
            await self._clock.sleep(verdict)

    async def _give_back(self, place: Admitted | None, closed: Sequence[Hashable], retry_after: float) -> None:
        assert self._shared is not None
        if place is not None:
            await self._shared.done(place)
        if closed:
            await self._shared.close([_SHARED_BOT if key is _BOT else key for key in closed], retry_after)

    def _told_to_wait(self, windows: list[_Window], gate: Hashable, retry_after: float) -> tuple[Hashable, ...]:
        """The platform answered 429 to a call that spent from `windows`: close its gate, and find the budget at
        fault: the narrowest that was full, else the widest the platform itself meters. Returns the gates closed."""
        now = self._clock.now()
        until = now + retry_after
        metered = windows if self._bot_is_platform_limit else windows[:-1]
        full = [window for window in metered if window.wait(now, urgent=True) > 0]
        at_fault = full[0] if full else (metered[-1] if metered else None)
        closed = (gate, _BOT) if at_fault is self._bot else (gate,)
        for key in closed:
            self._gates[key] = max(self._gates.get(key, 0.0), until)
        if at_fault is not None and at_fault.learns:
            limit = at_fault.limit(now)
            lower = max(1, min(limit, max(at_fault.used(now) - 1, limit // 2)))  # at most halved by one 429
            at_fault.learned = (lower, now)
            log.warning("429: the platform allows fewer calls; %d per %g s for now", lower, at_fault.budget.period)
        return closed

    def _window(self, scope: Scope) -> _Window:
        window = self._windows.get(scope.key)
        if window is None:
            window = self._windows[scope.key] = _Window(scope.budget, scope.paced, scope.learns)
            if scope.paced:
                self._paced[scope.key] = window
            if len(self._windows) > self._sweep_at:
                self._sweep()
        elif window.budget != scope.budget:
            window.budget = scope.budget  # e.g. a group that became a supergroup; the calls made still count
        return window

    def _sweep(self) -> None:
        """Forget budgets that have been quiet for a whole period, so memory follows the chats in flight."""
        now = self._clock.now()
        self._windows = {
            key: w
            for key, w in self._windows.items()
            if not w.idle() or w.learned is not None or (w.times and w.times[-1] > now - w.budget.period)
        }
        self._paced = {key: w for key, w in self._paced.items() if key in self._windows}
        self._gates = {key: until for key, until in self._gates.items() if until > now}
        self._sweep_at = max(1024, 2 * len(self._windows))
