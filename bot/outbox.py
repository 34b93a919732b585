"""Final messages that could not be delivered yet, kept on disk until they are.

When a reply's final text cannot land within FINAL_PATIENCE (the platform is down, it asked for a long
retry_after, or the bot is shutting down), the runtime puts it here instead of holding the conversation: the table
`livebot_outbox` of the bot's state store (`bot.store`: SQLite in BOT_DATA_DIR, or Postgres when DATABASE_URL is
set, where every replica's courier delivers from one table and each entry is delivered by exactly one of them).
A courier per channel delivers the entries oldest first: at start-up (so a restart loses nothing), whenever a new
entry arrives, and every `RETRY_EVERY` seconds while any are left (with Postgres, always: another replica may have
left some).

A delivered entry is deleted in the same breath as the send succeeds, so an entry is sent once; only a crash in
the instant between the platform's answer and the commit could repeat it. A shutdown does not cancel a delivery
half-way: the courier is asked to stop (`stop`) and finishes the entry it is sending first, so a send the platform
took is always recorded.

On Postgres a courier claims an entry with `SELECT ... FOR UPDATE SKIP LOCKED` in a transaction that lasts while
it is sent: another replica's courier skips it (and takes the next), and if the replica dies mid-send the
transaction ends, the row lock with it, and the entry is claimed again. On SQLite one process delivers (one
courier per channel), so the entry is read, sent, then deleted, without holding the database meanwhile.

Entries an earlier version kept in `BOT_DATA_DIR/outbox.sqlite` are imported into the store at the first start
(`bot.store.import_file`; with DATABASE_URL that file was never used, so it is left alone).
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

from bot.store import STORE_ERRORS, Dialects, Schema, Store, Transaction, import_file
from channels.errors import ChannelError, PermanentError, RateLimited

log = logging.getLogger(__name__)

RETRY_EVERY = 15.0
STOP_PATIENCE = 10.0
"""At shutdown, how long the courier may take to finish the delivery it is in before it is cancelled."""
LEGACY_FILE = "outbox.sqlite"
Deliver = Callable[[dict[str, Any], str], Awaitable[None]]
SCHEMA = Schema(
    "outbox",
    [
        Dialects(  # IF NOT EXISTS: a Postgres database keeps the table (and entries) of versions before the store
            sqlite="CREATE TABLE IF NOT EXISTS livebot_outbox (id INTEGER PRIMARY KEY, channel TEXT NOT NULL,"
            " address TEXT NOT NULL, text TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, sent DOUBLE PRECISION)",
            postgres="CREATE TABLE IF NOT EXISTS livebot_outbox (id BIGSERIAL PRIMARY KEY, channel TEXT NOT NULL,"
            " address TEXT NOT NULL, text TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, sent DOUBLE PRECISION)",
        ),
        "CREATE INDEX IF NOT EXISTS livebot_outbox_waiting ON livebot_outbox (channel, id) WHERE sent IS NULL",
        "DELETE FROM livebot_outbox WHERE sent IS NOT NULL",
    ],
)
_OLDEST = "SELECT id, address, text FROM livebot_outbox WHERE channel = ? AND sent IS NULL ORDER BY id LIMIT 1"
_DELIVERED = "DELETE FROM livebot_outbox WHERE id = ?"
"""A delivered entry goes: nothing reads it again, and the table stays as small as what waits (earlier versions
marked it in `sent` and kept it for ever; the schema's last step deletes those)."""


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    address: dict[str, Any]
    text: str


class Outbox:
    """Keeps final messages and delivers them. Open with `open_outbox`.

    Args:
        store: The bot's state store, its `outbox` schema set up.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._shared = store.backend == "postgres"  # other replicas deliver from the same table
        self._arrived = asyncio.Event()
        self._stopping = asyncio.Event()
        self._sent: set[int] = set()  # delivered, but the store did not take the record of it yet

    async def put(self, channel: str, address: dict[str, Any], text: str) -> None:
        """Keep `text` for `address` on `channel` until a courier delivers it."""
        async with self._store.transaction() as tx:
            await tx.execute(
                "INSERT INTO livebot_outbox (channel, address, text, created) VALUES (?, ?, ?, ?)",
                (channel, json.dumps(address), text, time.time()),
            )
        self._arrived.set()
        log.warning("%s: a final message went to the outbox for later delivery", channel)

    async def figures(self, channel: str) -> tuple[int, float]:
        """How many entries of `channel` wait, and the age in seconds of the oldest (for the metrics)."""
        async with self._store.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT count(*), min(created) FROM livebot_outbox WHERE channel = ? AND sent IS NULL", (channel,)
            )
        count, oldest = rows[0] if rows else (0, None)
        return count, 0.0 if oldest is None else max(0.0, time.time() - oldest)

    async def courier(self, channel: str, deliver: Deliver) -> None:
        """Deliver `channel`'s entries until `stop`; a failure waits for the next round (or the retry_after).

        With a shared store, each entry is claimed by one courier at a time (whichever replica's), and every
        courier looks again every RETRY_EVERY seconds for entries a replica that died left behind.
        """
        while not self._stopping.is_set():
            self._arrived.clear()
            wait = await self._deliver_all(channel, deliver)
            await _first_of(self._arrived, self._stopping, timeout=None if wait == float("inf") else wait)

    async def _deliver_all(self, channel: str, deliver: Deliver) -> float:
        """Deliver until none is left or a delivery fails; returns how long to wait before the next round."""
        while not self._stopping.is_set():
            try:
                await self._record_sent()  # before anything is claimed again: what was sent is never sent twice
                async with self._claim(channel) as entry:
                    if entry is None:
                        return RETRY_EVERY if self._shared else float("inf")
                    try:
                        await deliver(entry.address, entry.text)
                    except PermanentError as exc:  # deleted: it would fail the same way for ever
                        log.error("%s: outbox entry %d cannot be delivered (%s); dropped", channel, entry.id, exc)
                    self._sent.add(entry.id)
            except RateLimited as exc:
                return max(exc.retry_after, 0.05)
            except ChannelError as exc:
                log.info("%s: outbox delivery failed (%s); will retry", channel, exc)
                return RETRY_EVERY
            except STORE_ERRORS as exc:
                log.warning("%s: the outbox cannot be read (%s); will retry", channel, type(exc).__name__)
                return RETRY_EVERY
        return 0.0

    @contextlib.asynccontextmanager
    async def _claim(self, channel: str) -> AsyncIterator[Entry | None]:
        """The oldest entry of `channel` no one else is delivering (None when there is none), for the block: it
        is deleted when the block ends, and left for a later claim when the block raises."""
        if self._shared:  # the row stays locked while it is sent: other couriers skip it
            async with self._store.transaction() as tx:
                entry = await _oldest(tx, channel, " FOR UPDATE SKIP LOCKED")
                yield entry
                if entry is not None:
                    await tx.execute(_DELIVERED, (entry.id,))
        else:
            async with self._store.transaction() as tx:  # one courier: nothing to lock, the database stays free
                entry = await _oldest(tx, channel, "")
            yield entry
            if entry is not None:
                async with self._store.transaction() as tx:
                    await tx.execute(_DELIVERED, (entry.id,))
        if entry is not None:
            self._sent.discard(entry.id)

    async def _record_sent(self) -> None:
        """Delete the entries this courier delivered whose deletion the store refused (it was away a moment), so a
        round never sends them again; raises the store's error while it is still away."""
        for sent in list(self._sent):
            async with self._store.transaction() as tx:
                await tx.execute(_DELIVERED, (sent,))
            self._sent.discard(sent)

    async def stop(self, courier: asyncio.Task[None]) -> None:
        """End `courier` after the delivery it is in (at most STOP_PATIENCE), so no send goes unrecorded."""
        self._stopping.set()
        try:
            await asyncio.wait_for(courier, STOP_PATIENCE)
        except TimeoutError:
            log.warning("outbox: a delivery was still running at shutdown; it is retried at the next start")


async def _oldest(tx: Transaction, channel: str, lock: str) -> Entry | None:
    rows = await tx.fetchall(_OLDEST + lock, (channel,))
    return Entry(rows[0][0], json.loads(rows[0][1]), rows[0][2]) if rows else None


async def _first_of(*events: asyncio.Event, timeout: float | None) -> None:
    """Wait until one of `events` is set, or `timeout` seconds."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def open_outbox(store: Store, data_dir: Path) -> Outbox:
    """Set up the outbox's table in `store` (and, on SQLite, import the entries an earlier version left in
    `data_dir / "outbox.sqlite"`).

    Raises:
        StoreUnavailable: The table cannot be set up (one line, no password).
    """
    await store.migrate(SCHEMA)
    if store.backend == "sqlite":  # ids kept: an import repeated after a crash skips what it has
        await import_file(
            store,
            data_dir / LEGACY_FILE,
            "SELECT id, channel, address, text, created FROM outbox WHERE sent IS NULL",
            "INSERT INTO livebot_outbox (id, channel, address, text, created) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
        )
    return Outbox(store)
