"""Final messages that could not be delivered yet, kept on disk until they are.

When a reply's final text cannot land within FINAL_PATIENCE (the platform is down, it asked for a long
retry_after, or the bot is shutting down), the runtime puts it here (SQLite in BOT_DATA_DIR) instead of holding
the conversation. A courier per channel delivers the entries in order: at start-up (so a restart loses nothing),
whenever a new entry arrives, and every `RETRY_EVERY` seconds while any are left.

Delivery is marked in the same breath as the send succeeds, so an entry is sent once; only a crash in the instant
between the platform's answer and the commit could repeat it. A shutdown does not cancel a delivery half-way: the
courier is asked to stop (`stop`) and finishes the entry it is sending first, so a send the platform took is
always recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from channels.errors import ChannelError, PermanentError, RateLimited

log = logging.getLogger(__name__)

RETRY_EVERY = 15.0
STOP_PATIENCE = 10.0
"""At shutdown, how long the courier may take to finish the delivery it is in before it is cancelled."""
Deliver = Callable[[dict[str, Any], str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    address: dict[str, Any]
    text: str


class Outbox:
    """The store. Open with `open_outbox`."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._arrived = asyncio.Event()
        self._stopping = asyncio.Event()

    async def put(self, channel: str, address: dict[str, Any], text: str) -> None:
        """Keep `text` for `address` on `channel` until a courier delivers it."""
        await self._db.execute(
            "INSERT INTO outbox (channel, address, text, created) VALUES (?, ?, ?, ?)",
            (channel, json.dumps(address), text, time.time()),
        )
        await self._db.commit()
        self._arrived.set()
        log.warning("%s: a final message went to the outbox for later delivery", channel)

    async def pending(self, channel: str) -> list[Entry]:
        """Entries of `channel` not delivered yet, oldest first."""
        async with self._db.execute(
            "SELECT id, address, text FROM outbox WHERE channel = ? AND sent IS NULL ORDER BY id", (channel,)
        ) as rows:
            return [Entry(row[0], json.loads(row[1]), row[2]) async for row in rows]

    async def figures(self, channel: str) -> tuple[int, float]:
        """How many entries of `channel` wait, and the age in seconds of the oldest (for the metrics)."""
        async with self._db.execute(
            "SELECT count(*), min(created) FROM outbox WHERE channel = ? AND sent IS NULL", (channel,)
        ) as rows:
            count, oldest = await rows.fetchone() or (0, None)
        return count, 0.0 if oldest is None else max(0.0, time.time() - oldest)

    async def mark_sent(self, entry: Entry) -> None:
        await self._db.execute("UPDATE outbox SET sent = ? WHERE id = ?", (time.time(), entry.id))
        await self._db.commit()

    async def courier(self, channel: str, deliver: Deliver) -> None:
        """Deliver `channel`'s entries until `stop`; a failure waits for the next round (or the retry_after)."""
        while not self._stopping.is_set():
            self._arrived.clear()
            wait = RETRY_EVERY
            for entry in await self.pending(channel):
                if self._stopping.is_set():
                    return
                try:
                    await deliver(entry.address, entry.text)
                except RateLimited as exc:
                    wait = max(exc.retry_after, 0.05)
                    break
                except PermanentError as exc:
                    log.error("%s: outbox entry %d cannot be delivered (%s); dropped", channel, entry.id, exc)
                except ChannelError as exc:
                    log.info("%s: outbox delivery failed (%s); will retry", channel, exc)
                    break
                await self.mark_sent(entry)
            else:
                if not await self.pending(channel):
                    wait = float("inf")
            await _first_of(self._arrived, self._stopping, timeout=None if wait == float("inf") else wait)

    async def stop(self, courier: asyncio.Task[None]) -> None:
        """End `courier` after the delivery it is in (at most STOP_PATIENCE), so no send goes unrecorded."""
        self._stopping.set()
        try:
            await asyncio.wait_for(courier, STOP_PATIENCE)
        except TimeoutError:
            log.warning("outbox: a delivery was still running at shutdown; it is retried at the next start")


async def _first_of(*events: asyncio.Event, timeout: float | None) -> None:
    """Wait until one of `events` is set, or `timeout` seconds."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


@contextlib.asynccontextmanager
async def open_outbox(data_dir: Path) -> AsyncIterator[Outbox]:
    """Open (and create) `data_dir / "outbox.sqlite"`."""
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once at start-up, before any reply
    async with aiosqlite.connect(data_dir / "outbox.sqlite") as db:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, address TEXT NOT NULL,"
            " text TEXT NOT NULL, created REAL NOT NULL, sent REAL)"
        )
        await db.commit()
        yield Outbox(db)
