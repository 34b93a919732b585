"""Telegram's long polling in replica mode: exactly one replica polls, the others stand by.

Telegram allows one getUpdates at a time per bot (a second ends the first with 409), so the replicas elect a
poller with a lease in Redis: redis-py's `Lock` (SET NX PX to take it; a Lua script that checks the holder's token
to renew or release it, so a replica whose lease expired cannot renew another's). The poller renews every third
of `LEASE_TTL`; the others try to take it every `STANDBY_EVERY` seconds, so one takes over within
LEASE_TTL + STANDBY_EVERY of the poller's death. A poller stops polling before its lease can have expired: as soon
as a renewal finds the lease gone, or when renewals have failed (Redis unreachable) for two thirds of the TTL.
On shutdown it stops polling first and releases the lease after, so a standby never polls beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as redis
from redis.exceptions import LockError, RedisError

from bot.metrics import LEASES_TAKEN_OVER

log = logging.getLogger(__name__)

LEASE_TTL = 6.0
"""Seconds a poller's lease lasts without renewal."""
STANDBY_EVERY = 1.0
"""Seconds between a standby replica's tries to take the lease."""


class Lease:
    """One named lease in Redis, held by at most one replica at a time.

    Args:
        client: The Redis the replicas share.
        name: The key (one per bot).
        ttl: Seconds the lease lasts unless renewed.
    """

    def __init__(self, client: redis.Redis, name: str, ttl: float = LEASE_TTL) -> None:
        self._lock = client.lock(name, timeout=ttl, thread_local=False)
        self._ttl = ttl

    async def acquire(self) -> bool:
        """Wait until this replica holds the lease. Returns whether another replica held it meanwhile."""
        waited = False
        while True:
            try:
                if await self._lock.acquire(blocking=False):
                    return waited
            except RedisError as exc:
                log.warning("lease %s: Redis unreachable (%s); standing by", self._lock.name, type(exc).__name__)
            waited = True
            await asyncio.sleep(STANDBY_EVERY)

    async def hold(self) -> None:
        """Renew the lease until it is lost; returns when this replica must stop acting on it."""
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                await asyncio.wait_for(self._lock.reacquire(), self._ttl / 3)
                renewed = loop.time()
            except LockError:
                log.warning("lease %s: lost (it expired and another replica took it)", self._lock.name)
                return
            except (RedisError, TimeoutError) as exc:
                if loop.time() - renewed > self._ttl * 2 / 3:
                    log.warning("lease %s: not renewed in time (%s); letting it go", self._lock.name, exc)
                    return

    async def release(self) -> None:
        """Give the lease up (if still held), so a standby takes over at once."""
        with contextlib.suppress(LockError, RedisError):
            await self._lock.release()


async def poll_while_leased(
    lease: Lease, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]
) -> None:
    """Stand by until this replica holds `lease`, then `start` polling until the lease is lost; again and again
    until cancelled, when polling is stopped before the lease is released."""
    try:
        while True:
            if await lease.acquire():
                LEASES_TAKEN_OVER.labels("poller").inc()
                log.info("telegram: took over polling from another replica")
            await start()
            await lease.hold()
            await stop()
    finally:
        await stop()
        await lease.release()
