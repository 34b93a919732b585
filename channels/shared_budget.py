"""The rate budgets of one bot token, shared by every replica through Redis (replica mode, `REDIS_URL`).

Each replica keeps its own `RateLimiter`: it still orders that replica's calls (urgent lines, paced turns, what
a 429 teaches). What replicas must agree on is how many calls the platform has seen, so a call that has its local
slot also takes a place in the shared window of every budget it spends from, in one Lua script (atomic, and on
Redis's clock, so the replicas' clocks need not agree):

- a window is a sorted set of the calls in it, scored by when each leaves the window's count: a call in flight
  is scored `HOLD` ahead (it counts as happening now, and a replica that dies mid-call frees it after that), and
  its completion rescores it to its completion time, as the local window does;
- a non-urgent call leaves the budget's reserve to urgent ones and yields to an urgent call that is waiting for
  the budget on any replica (a short-lived "waiting" key that the refused urgent call sets);
- a retry_after gate is a key with the platform's retry_after as its expiry, which a 429 on any replica sets and
  every replica's calls behind that gate wait out.

If Redis fails, calls go on with the local budgets (logged): the platform's 429s, which every replica honours
locally, then bound the damage until Redis is back.
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import redis.asyncio as redis

from channels.errors import RateLimited

log = logging.getLogger(__name__)

HOLD = 60.0
"""Seconds a call in flight holds its place at most (a replica that died mid-call frees it then)."""
ERROR_LOG_INTERVAL = 60.0

_ADMIT = """
-- KEYS: n windows, n "waiting" keys, m gates. ARGV: n, m, urgent, member, hold_ms, then per window limit, reserve,
-- period_ms. Returns {0, 0} when the call is admitted (its member added to every window), else {1, ms} behind a
-- closed gate or {2, ms} until a window has room.
local n, m, urgent = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1'
local member, hold = ARGV[4], tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gate = 0
for g = 1, m do
  gate = math.max(gate, redis.call('PTTL', KEYS[2 * n + g]))
end
if gate > 0 then return {1, gate} end
local wait = 0
local full = {}
for i = 1, n do
  local key = KEYS[i]
  local limit, reserve, period = tonumber(ARGV[5 + 3 * i - 2]), tonumber(ARGV[5 + 3 * i - 1]), tonumber(ARGV[5 + 3 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - period)
  local allowed = urgent and limit or (limit - reserve)
  local here = 0
  if not urgent then here = math.max(0, redis.call('PTTL', KEYS[n + i])) end
  local used = redis.call('ZCARD', key)
  if here == 0 and used >= allowed then
    local expiring = redis.call('ZRANGE', key, used - allowed, used - allowed, 'WITHSCORES')
    local score = tonumber(expiring[2])
    if score > now then here = math.min(period, 50) else here = score + period - now end
    full[#full + 1] = i
  end
  wait = math.max(wait, here)
end
if wait > 0 then
  if urgent then
    for _, i in ipairs(full) do redis.call('SET', KEYS[n + i], '1', 'PX', math.max(1, wait) + 100) end
  end
  return {2, wait}
end
for i = 1, n do
  redis.call('ZADD', KEYS[i], now + hold, member)
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[5 + 3 * i]) + hold)
end
return {0, 0}
"""

_DONE = """
-- KEYS: the windows of a call; ARGV: its member. The call completed: it counts for a period from now.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS do redis.call('ZADD', KEYS[i], 'XX', now, ARGV[1]) end
return 0
"""

_CLOSE = """
-- KEYS: gates; ARGV: ms. Close each gate for ms, never shortening one that is closed for longer.
for i = 1, #KEYS do
  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[i], '1', 'PX', ARGV[1]) end
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Window:
    """One budget as the shared script checks it: `limit` calls in `period` seconds, `reserve` of them urgent."""

    key: Hashable
    limit: int
    reserve: int
    period: float


@dataclass(frozen=True, slots=True)
class Admitted:
    """A call's place in the shared windows, to be given back when it completes."""

    keys: tuple[str, ...]
    member: str


class SharedBudgets:
    """The shared windows and gates of one bot token (`namespace`, e.g. "telegram:<bot id>")."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._client = client
        self._prefix = f"livebot:rate:{namespace}:"
        self._admit = client.register_script(_ADMIT)
        self._done = client.register_script(_DONE)
        self._close = client.register_script(_CLOSE)
        self._ids = itertools.count()
        self._replica = uuid.uuid4().hex[:12]
        self._logged_at = -ERROR_LOG_INTERVAL

    async def admit(self, windows: Sequence[Window], gates: Sequence[Hashable], *, urgent: bool) -> Admitted | float:
        """Take a place in every window, or say how many seconds until one of them has room.

        Returns:
            The place taken, or the seconds to wait. When Redis fails the call is let through with no place (an
            `Admitted` of no windows).

        Raises:
            RateLimited: One of `gates` is closed (a 429 on some replica); `retry_after` is the time left.
        """
        keys = [self._key("w", window.key) for window in windows]
        waiting = [self._key("q", window.key) for window in windows]
        member = f"{self._replica}:{next(self._ids)}"
        args: list[str | int] = [len(windows), len(gates), int(urgent), member, int(HOLD * 1000)]
        for window in windows:
            args += [window.limit, window.reserve, int(window.period * 1000)]
        try:
            verdict, ms = await self._admit(keys=[*keys, *waiting, *(self._key("g", g) for g in gates)], args=args)
        except redis.RedisError as exc:
            self._failed(exc)
            return Admitted((), member)
        if int(verdict) == 0:
            return Admitted(tuple(keys), member)
        if int(verdict) == 1:
            raise RateLimited(int(ms) / 1000, "waiting out the platform's retry_after")
        return max(0.001, int(ms) / 1000)

    async def done(self, place: Admitted) -> None:
        """The call completed: from now on it counts for a period, like the calls before it."""
        if not place.keys:
            return
        try:
            await self._done(keys=list(place.keys), args=[place.member])
        except redis.RedisError as exc:
            self._failed(exc)

    async def close(self, gates: Sequence[Hashable], seconds: float) -> None:
        """A 429: close `gates` for every replica for `seconds` (a gate closed for longer stays so)."""
        try:
            await self._close(keys=[self._key("g", g) for g in gates], args=[max(1, int(seconds * 1000))])
        except redis.RedisError as exc:
            self._failed(exc)

    def _key(self, kind: str, key: Hashable) -> str:
        return f"{self._prefix}{kind}:{key!r}"

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._logged_at >= ERROR_LOG_INTERVAL:
            self._logged_at = now
            log.error("shared rate budgets unavailable (%s): this replica goes by its own budgets", type(exc).__name__)
