"""One reply at a time per conversation, any number of conversations side by side.

Messages of one conversation are answered in the order they arrived: a message that arrives while a reply streams
waits for it (asyncio.Lock wakes waiters first come, first served). Different conversations never wait for
each other. Locks of idle conversations are dropped, so memory follows the conversations in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class Conversations:
    """Runs jobs serially per conversation key and concurrently across keys."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: str, job: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        """Run `job` after the jobs already submitted for `key`; returns at once."""
        self._waiting[key] = self._waiting.get(key, 0) + 1
        lock = self._locks.setdefault(key, asyncio.Lock())
        task = asyncio.create_task(self._run(key, lock, job), name=f"reply:{key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    @property
    def in_flight(self) -> int:
        """Jobs submitted and not finished."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for every job submitted so far."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def _run(self, key: str, lock: asyncio.Lock, job: Callable[[], Awaitable[None]]) -> None:
        try:
            async with lock:
                await job()
        except Exception:
            log.exception("%s: reply failed", key)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                del self._locks[key]
