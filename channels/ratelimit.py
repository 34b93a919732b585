"""One shared rate budget per chat and per bot, with the platform's retry_after gate inside it.

Every platform call of a channel is made inside `RateLimiter.slot` (the limiter wraps the call, not the caller).
Two kinds of callers:

- urgent calls (a reply's first message, every final message) wait here until the chat's and the bot's budgets
  have room (a matter of seconds), so they go before anything else. They wait for the bot's budget in a line, in
  the order they came: one waiter watches the budget at a time, so a thousand waiting replies cost no more CPU
  than one, and none is overtaken for ever;
- other calls (intermediate edits, drafts, typing) never wait: when the budget is short they raise `RateLimited`
  with the time until they could go, and the StreamingHandler simply shows the latest text later. They also
  leave a reserve of each budget to urgent calls and yield while any urgent call is waiting, which is what
  "under pressure intermediate edits are dropped first" means.

Calls made inside `low_priority()` (a refusal to someone outside the allowlist) are never urgent, whatever their
caller says: they leave the reserve to replies and are dropped (`RateLimited`) when the budget is short.

After a 429 the channel calls `penalize`: no call to that chat, urgent or not, goes out before retry_after. A call
to a chat behind such a gate raises `RateLimited` with the time left, urgent or not: how long a final message may
wait is the StreamingHandler's decision (it waits, or at shutdown hands the text to the outbox).
Budgets are sliding windows ("at most N calls in any T seconds"), slightly stricter than the platforms' own.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
from collections import deque
from collections.abc import AsyncIterator, Hashable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from channels.clock import Clock, LoopClock
from channels.errors import RateLimited

_LOW_PRIORITY: contextvars.ContextVar[bool] = contextvars.ContextVar("low_priority", default=False)
IN_FLIGHT_POLL = 0.05
"""How soon to look again when the budget is held by calls still in flight."""
_BOT = object()
"""The gate key for a retry_after that holds every chat."""


@dataclass(frozen=True, slots=True)
class Budget:
    """At most `limit` calls in any `period` seconds."""

    limit: int
    period: float

    @property
    def reserve(self) -> int:
        """Slots that only urgent calls may use: a fifth of the budget, at least one where there are two."""
        return min(self.limit - 1, max(1, math.ceil(self.limit / 5))) if self.limit > 1 else 0


@dataclass(slots=True)
class _Window:
    budget: Budget
    times: deque[float] = field(default_factory=deque)
    """When recent calls completed, oldest first."""
    in_flight: int = 0

    def wait(self, now: float, *, reserve: int) -> float:
        """Seconds until one more call fits, leaving `reserve` slots free.

        A call in flight holds a slot as if it were happening now; once it completes, it holds it for a period
        from its completion. Since a call reaches the platform before it completes, no period of the platform's
        clock sees more than `limit` calls, however the event loop delays them on the way.
        """
        times, period = self.times, self.budget.period
        while times and times[0] <= now - period:
            times.popleft()
        allowed = self.budget.limit - reserve
        used = self.in_flight + len(times)
        if used < allowed:
            return 0.0
        expiring = used - allowed  # the index of the completed call whose expiry makes room
        if expiring < len(times):
            return times[expiring] + period - now
        return min(period, IN_FLIGHT_POLL)  # only calls in flight hold the budget: look again shortly


class RateLimiter:
    """The budgets of one bot token: one window for the bot, one per (chat, lane), one retry_after gate per chat.

    Args:
        bot: The budget all calls of this bot share (Telegram: 30 per second).
        clock: Injected in tests; the event loop's clock otherwise.
    """

    def __init__(self, bot: Budget, *, clock: Clock | None = None) -> None:
        self._clock = clock or LoopClock()
        self._bot = _Window(bot)
        self._windows: dict[tuple[Hashable, str], _Window] = {}
        self._gates: dict[Hashable, float] = {}
        self._urgent_waiting = 0
        self._line = asyncio.Lock()  # fair (first come, first served): the urgent calls' line for the bot budget
        self._sweep_at = 1024

    @asynccontextmanager
    async def slot(
        self, chat: Hashable, budget: Budget | None, *, lane: str = "messages", urgent: bool
    ) -> AsyncIterator[None]:
        """Hold room for one call to `chat` while the block makes it, waiting for room first if `urgent`.

        Args:
            chat: The chat the call goes to; its retry_after gate applies to every lane.
            budget: The chat's budget for this lane, or None when only the bot's budget applies (typing).
            lane: Calls that the platform budgets separately within a chat (messages, drafts).
            urgent: Wait for room in the budgets instead of failing.

        Raises:
            RateLimited: The chat is behind a retry_after gate, or (not urgent) there is no room now;
                `retry_after` says when to try again.
        """
        urgent = urgent and not _LOW_PRIORITY.get()
        window = self._window(chat, lane, budget)
        if (gate := self.blocked_for(chat)) > 0:
            raise RateLimited(gate, "waiting out the platform's retry_after")
        if urgent:
            self._urgent_waiting += 1
            try:
                while window is not None and (wait := window.wait(self._clock.now(), reserve=0)) > 0:
                    await self._clock.sleep(wait)  # the chat's own budget first: only its own calls contend here
                async with self._line:
                    while (wait := self._wait(chat, window, urgent=True)) > 0:
                        await self._clock.sleep(wait)
            finally:
                self._urgent_waiting -= 1
            if (gate := self.blocked_for(chat)) > 0:  # a 429 closed the gate while this call waited
                raise RateLimited(gate, "waiting out the platform's retry_after")
        else:
            wait = self._wait(chat, window, urgent=False)
            if wait > 0:
                raise RateLimited(wait, "local rate budget")
        held = [self._bot] if window is None else [self._bot, window]
        for w in held:
            w.in_flight += 1
        try:
            yield
        finally:
            done = self._clock.now()
            for w in held:
                w.in_flight -= 1
                w.times.append(done)

    @staticmethod
    @contextmanager
    def low_priority() -> Iterator[None]:
        """Make every call in the block (in this task) a non-urgent one: it goes only with budget to spare."""
        token = _LOW_PRIORITY.set(True)
        try:
            yield
        finally:
            _LOW_PRIORITY.reset(token)

    def penalize(self, chat: Hashable, retry_after: float, *, lane: str = "messages") -> None:
        """The platform answered 429 for a call to `chat` in `lane`: close the gate for `retry_after` seconds.

        A 429 does not say whether the chat or the whole bot went too fast. When the chat's own budget still had
        room, the complaint cannot be about this chat's pace: it is the bot's, so every chat waits.
        """
        until = self._clock.now() + retry_after
        window = self._windows.get((chat, lane))
        chat_had_room = window is None or window.wait(self._clock.now(), reserve=0) == 0
        for key in (chat, _BOT) if chat_had_room else (chat,):
            self._gates[key] = max(self._gates.get(key, 0.0), until)

    def blocked_for(self, chat: Hashable) -> float:
        """Seconds until a call to `chat` may pass the retry_after gates, its own and the bot's (0 when open)."""
        return max(0.0, max(self._gates.get(chat, 0.0), self._gates.get(_BOT, 0.0)) - self._clock.now())

    def _wait(self, chat: Hashable, window: _Window | None, *, urgent: bool) -> float:
        now = self._clock.now()
        if not urgent and self._urgent_waiting:  # come back when the line of urgent calls has likely gone
            return self._urgent_waiting * self._bot.budget.period / self._bot.budget.limit
        bot = self._bot.wait(now, reserve=0 if urgent else self._bot.budget.reserve)
        own = 0.0 if window is None else window.wait(now, reserve=0 if urgent else window.budget.reserve)
        return max(bot, own)

    def _window(self, chat: Hashable, lane: str, budget: Budget | None) -> _Window | None:
        if budget is None:
            return None
        window = self._windows.get((chat, lane))
        if window is None or window.budget != budget:
            window = self._windows[(chat, lane)] = _Window(budget)
            if len(self._windows) > self._sweep_at:
                self._sweep()
        return window

    def _sweep(self) -> None:
        """Forget chats that have been quiet for a whole period, so memory follows the chats in flight."""
        now = self._clock.now()
        self._windows = {
            k: w for k, w in self._windows.items() if w.in_flight or (w.times and w.times[-1] > now - w.budget.period)
        }
        self._gates = {key: until for key, until in self._gates.items() if until > now}
        self._sweep_at = max(1024, 2 * len(self._windows))
