"""Final messages that could not be delivered yet, kept on disk until they are.

When a reply's final text cannot land within FINAL_PATIENCE (the platform is down, it asked for a long
retry_after, or the bot is shutting down), the runtime puts it here instead of holding the conversation: SQLite in
BOT_DATA_DIR, or Postgres when DATABASE_URL is set, where every replica's courier delivers from one table and
each entry is delivered by exactly one of them. A courier per channel delivers the entries oldest first: at
start-up (so a restart loses nothing), whenever a new entry arrives, and every `RETRY_EVERY` seconds while any are
left (with Postgres, always: another replica may have left some).

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
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent.memory import postgres_unavailable, setup_lock
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


class Store(Protocol):
    """Where entries are kept: SQLite in BOT_DATA_DIR (one process), or Postgres (DATABASE_URL; any replica)."""

    shared: bool
    """Other processes deliver from the same store (so an empty claim does not mean nothing is left)."""

    async def put(self, channel: str, address: dict[str, Any], text: str) -> None: ...

    def claim(self, channel: str) -> AbstractAsyncContextManager[Entry | None]:
        """The oldest entry of `channel` no one else is delivering (None when there is none), for the block: it
        is marked sent when the block ends, and left for a later claim when the block raises."""
        ...

    async def figures(self, channel: str) -> tuple[int, float]:
        """How many entries of `channel` wait, and the age in seconds of the oldest."""
        ...

    async def problem(self) -> str | None:
        """For /readyz: None when the store answers, else why not."""
        ...


class Outbox:
    """Keeps final messages and delivers them. Open with `open_outbox`."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._arrived = asyncio.Event()
        self._stopping = asyncio.Event()

    async def put(self, channel: str, address: dict[str, Any], text: str) -> None:
        """Keep `text` for `address` on `channel` until a courier delivers it."""
        await self._store.put(channel, address, text)
        self._arrived.set()
        log.warning("%s: a final message went to the outbox for later delivery", channel)

    async def figures(self, channel: str) -> tuple[int, float]:
        """How many entries of `channel` wait, and the age in seconds of the oldest (for the metrics)."""
        return await self._store.figures(channel)

    async def problem(self) -> str | None:
        """For /readyz: None when the store answers, else why not."""
        return await self._store.problem()

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
                async with self._store.claim(channel) as entry:
                    if entry is None:
                        return RETRY_EVERY if self._store.shared else float("inf")
                    try:
                        await deliver(entry.address, entry.text)
                    except PermanentError as exc:  # marked: it would fail the same way for ever
                        log.error("%s: outbox entry %d cannot be delivered (%s); dropped", channel, entry.id, exc)
            except RateLimited as exc:
                return max(exc.retry_after, 0.05)
            except ChannelError as exc:
                log.info("%s: outbox delivery failed (%s); will retry", channel, exc)
                return RETRY_EVERY
            except STORE_ERRORS as exc:
                log.warning("%s: the outbox cannot be read (%s); will retry", channel, type(exc).__name__)
                return RETRY_EVERY
        return 0.0

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


class _Sqlite:
    """The outbox of one process: `BOT_DATA_DIR/outbox.sqlite`."""

    shared = False

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def put(self, channel: str, address: dict[str, Any], text: str) -> None:
        await self._db.execute(
            "INSERT INTO outbox (channel, address, text, created) VALUES (?, ?, ?, ?)",
            (channel, json.dumps(address), text, time.time()),
        )
        await self._db.commit()

    @contextlib.asynccontextmanager
    async def claim(self, channel: str) -> AsyncIterator[Entry | None]:
        async with self._db.execute(
            "SELECT id, address, text FROM outbox WHERE channel = ? AND sent IS NULL ORDER BY id LIMIT 1", (channel,)
        ) as rows:
            row = await rows.fetchone()
        entry = None if row is None else Entry(row[0], json.loads(row[1]), row[2])
        yield entry
        if entry is not None:
            await self._db.execute("UPDATE outbox SET sent = ? WHERE id = ?", (time.time(), entry.id))
            await self._db.commit()

    async def figures(self, channel: str) -> tuple[int, float]:
        async with self._db.execute(
            "SELECT count(*), min(created) FROM outbox WHERE channel = ? AND sent IS NULL", (channel,)
        ) as rows:
            count, oldest = await rows.fetchone() or (0, None)
        return count, 0.0 if oldest is None else max(0.0, time.time() - oldest)

    async def problem(self) -> str | None:
        return None  # a file of this process: it answers while the process does


class _Postgres:
    """The outbox every replica shares: the table `livebot_outbox` in DATABASE_URL.

    A courier claims an entry with `SELECT ... FOR UPDATE SKIP LOCKED` in a transaction that lasts while it is
    sent: another replica's courier skips it (and takes the next), and if the replica dies mid-send the
    transaction ends, the row lock with it, and the entry is claimed again.
    """

    shared = True

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def put(self, channel: str, address: dict[str, Any], text: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO livebot_outbox (channel, address, text, created) VALUES (%s, %s, %s, %s)",
                (channel, json.dumps(address), text, time.time()),
            )

    @contextlib.asynccontextmanager
    async def claim(self, channel: str) -> AsyncIterator[Entry | None]:
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT id, address, text FROM livebot_outbox WHERE channel = %s AND sent IS NULL ORDER BY id"
                " LIMIT 1 FOR UPDATE SKIP LOCKED",
                (channel,),
            )
            row = await cursor.fetchone()
            entry = None if row is None else Entry(row[0], json.loads(row[1]), row[2])
            yield entry
            if entry is not None:
                await conn.execute("UPDATE livebot_outbox SET sent = %s WHERE id = %s", (time.time(), entry.id))

    async def figures(self, channel: str) -> tuple[int, float]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*), min(created) FROM livebot_outbox WHERE channel = %s AND sent IS NULL", (channel,)
            )
            count, oldest = await cursor.fetchone() or (0, None)
        return count, 0.0 if oldest is None else max(0.0, time.time() - oldest)

    async def problem(self) -> str | None:
        try:
            async with self._pool.connection(timeout=2.0) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, PoolTimeout) as exc:
            return type(exc).__name__
        return None


STORE_ERRORS = (aiosqlite.Error, sqlite3.Error, psycopg.Error, PoolTimeout)


@contextlib.asynccontextmanager
async def open_outbox(data_dir: Path, database_url: str | None = None) -> AsyncIterator[Outbox]:
    """Open the outbox: in Postgres when `database_url` is given (tables created once, under the set-up lock),
    else `data_dir / "outbox.sqlite"` (created).

    Raises:
        MemoryUnavailable: The Postgres database cannot be reached or set up (one line, no password).
    """
    if database_url is not None:
        async with _open_postgres(database_url) as store:
            yield Outbox(store)
        return
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once at start-up, before any reply
    async with aiosqlite.connect(data_dir / "outbox.sqlite") as db:
        await db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, address TEXT NOT NULL,"
            " text TEXT NOT NULL, created REAL NOT NULL, sent REAL)"
        )
        await db.commit()
        yield Outbox(_Sqlite(db))


_POSTGRES_TABLE = (
    "CREATE TABLE IF NOT EXISTS livebot_outbox (id BIGSERIAL PRIMARY KEY, channel TEXT NOT NULL,"
    " address TEXT NOT NULL, text TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, sent DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS livebot_outbox_waiting ON livebot_outbox (channel, id) WHERE sent IS NULL",
)


@contextlib.asynccontextmanager
async def _open_postgres(url: str) -> AsyncIterator[_Postgres]:
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=10)
        async with conn, setup_lock(conn):
            for statement in _POSTGRES_TABLE:
                await conn.execute(statement)
    except psycopg.Error as exc:
        raise postgres_unavailable(url, "cannot set up the outbox", exc) from None
    async with AsyncConnectionPool(
        url,
        kwargs={"autocommit": True},
        min_size=1,
        max_size=4,
        open=False,
        check=AsyncConnectionPool.check_connection,
        name="livebot-outbox",
    ) as pool:
        yield _Postgres(pool)
