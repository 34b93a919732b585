"""The bot's own durable state (beside the conversation memory): SQLite in BOT_DATA_DIR, or Postgres.

One way for both backends: `open_store(data_dir, database_url)` opens `data_dir / "state.sqlite"`, or, when
DATABASE_URL is set, a connection pool to that Postgres database, the one the conversation memory uses. A feature
that keeps records declares its tables as a `Schema` (a name and its migration steps, oldest first) and calls
`Store.migrate` once at start-up; it then reads and writes through `Store.transaction()`. Features share the
set-up (the connection, the table of applied steps, the lock) and own their tables: no feature touches
another's.

Set-up is safe when several processes start at once on one database (replicas): every migration runs in one
transaction under the set-up lock every table set-up of livebot takes (`agent.memory.setup_lock`, the one the
conversation memory's set-up takes too; SQLite: `BEGIN IMMEDIATE`, the database's write lock), so the steps of a
schema run once, in order, whoever comes first, and a second process finds them applied.

SQL is written once for both: `?` placeholders (turned into psycopg's `%s` for Postgres, so a literal `%` must
not appear), and statements both dialects take (`INSERT ... ON CONFLICT ... DO UPDATE`, `TEXT`, `DOUBLE PRECISION`;
`REAL` is a 4-byte float in Postgres, too coarse for a time). A migration step that cannot be written once (an
auto-numbered key) is given per dialect (`Dialects`).

Tables that earlier versions kept in SQLite files of their own (`outbox.sqlite`, `approvals.sqlite`) are copied in
once at start-up (`import_file`), so an upgrade loses none of their rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent.memory import CONNECT_TIMEOUT, MemoryUnavailable, describe_database, one_line, setup_lock

log = logging.getLogger(__name__)

SQLITE_FILE = "state.sqlite"
Row = tuple[Any, ...]


class StoreUnavailable(ConnectionError):
    """The bot's state store cannot be opened or set up, so the bot cannot start (one line, never the password)."""


@dataclass(frozen=True, slots=True)
class Dialects:
    """A migration step written for each backend, where one statement cannot serve both."""

    sqlite: str
    postgres: str


@dataclass(frozen=True, slots=True)
class Schema:
    """A feature's tables: `steps` are SQL statements applied in order, each once per database.

    A step, once released, never changes: a change to the tables is a new step at the end.
    """

    name: str
    steps: Sequence[str | Dialects]


class Transaction(Protocol):
    """Statements inside one transaction (committed when the `Store.transaction()` block ends without error)."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class Store(Protocol):
    """One database, SQLite or Postgres. Open with `open_store`."""

    backend: str
    """"sqlite" or "postgres" (for log lines; SQL is the same for both)."""

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """A transaction: committed at the end of the block, rolled back if it raises."""
        ...

    async def migrate(self, schema: Schema) -> None:
        """Apply the steps of `schema` this database has not had yet, under the set-up lock.

        Raises:
            StoreUnavailable: A step failed (the database is left as it was before the call).
        """
        ...

    async def problem(self) -> str | None:
        """For /readyz: None when the database answers, else why not."""
        ...


_SCHEMAS = "CREATE TABLE IF NOT EXISTS store_schemas (name TEXT PRIMARY KEY, version INTEGER NOT NULL)"


async def _apply(tx: Transaction, schema: Schema, backend: str) -> int:
    """The steps of `schema` not applied yet, applied; returns how many (the caller holds the set-up lock)."""
    await tx.execute(_SCHEMAS)
    rows = await tx.fetchall("SELECT version FROM store_schemas WHERE name = ?", (schema.name,))
    done = rows[0][0] if rows else 0
    for step in schema.steps[done:]:
        await tx.execute(step if isinstance(step, str) else getattr(step, backend))
    if len(schema.steps) > done:
        await tx.execute(
            "INSERT INTO store_schemas (name, version) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET version = excluded.version",
            (schema.name, len(schema.steps)),
        )
    return len(schema.steps) - done


# -- SQLite ----------------------------------------------------------------------------------------------


class _SqliteTransaction:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._db.execute(sql, tuple(params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._db.executemany(sql, [tuple(row) for row in rows])

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self._db.execute(sql, tuple(params)) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]


class _SqliteStore:
    """One connection (aiosqlite runs it on its own thread); transactions take turns on it."""

    backend = "sqlite"

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._path = path
        self._turn = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._turn:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTransaction(self._db)
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()

    async def migrate(self, schema: Schema) -> None:
        try:
            async with self.transaction() as tx:
                applied = await _apply(tx, schema, self.backend)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot set up the {schema.name} tables in {self._path}: {one_line(exc)}") from None
        if applied:
            log.info("store: %s tables set up in %s (%d step(s))", schema.name, self._path, applied)

    async def problem(self) -> str | None:
        return None  # a file of this process: it answers while the process does


@contextlib.asynccontextmanager
async def _open_sqlite(path: Path) -> AsyncIterator[Store]:
    try:
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)  # transactions are explicit (BEGIN IMMEDIATE)
    except (OSError, sqlite3.Error) as exc:
        raise StoreUnavailable(f"cannot open the bot's state at {path}: {one_line(exc)}") from None
    try:
        await db.execute("PRAGMA journal_mode=WAL")  # readers (and a second process looking) never block a write
        # A commit survives the process dying (kill -9) without an fsync each time; only a power cut may lose the
        # last ones, and these are records of a second ago.
        await db.execute("PRAGMA synchronous=NORMAL")
        yield _SqliteStore(db, path)
    finally:
        await db.close()


# -- Postgres --------------------------------------------------------------------------------------------


def _postgres(sql: str) -> str:
    return sql.replace("?", "%s")


class _PostgresTransaction:
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._conn.execute(_postgres(sql), tuple(params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self._conn.cursor() as cursor:
            await cursor.executemany(_postgres(sql), [tuple(row) for row in rows])

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = await self._conn.execute(_postgres(sql), tuple(params))
        return [tuple(row) for row in await cursor.fetchall()]


class _PostgresStore:
    """A small pool: a broken connection (a database restart) is noticed when taken and replaced."""

    backend = "postgres"

    def __init__(self, pool: AsyncConnectionPool[Any], where: str, hide: list[str]) -> None:
        self._pool = pool
        self._where = where
        self._hide = hide

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._pool.connection() as conn, conn.transaction():
            yield _PostgresTransaction(conn)

    async def migrate(self, schema: Schema) -> None:
        try:
            async with self._pool.connection() as conn:
                await conn.set_autocommit(True)  # the lock is the session's, taken outside the transaction
                try:
                    async with setup_lock(conn), conn.transaction():
                        applied = await _apply(_PostgresTransaction(conn), schema, self.backend)
                finally:
                    await conn.set_autocommit(False)
        except psycopg.Error as exc:
            reason = one_line(exc, self._hide)
            raise StoreUnavailable(
                f"cannot set up the {schema.name} tables in the Postgres database at {self._where}: {reason}"
            ) from None
        if applied:
            log.info("store: %s tables set up in %s (%d step(s))", schema.name, self._where, applied)

    async def problem(self) -> str | None:
        try:
            async with self._pool.connection(timeout=2.0) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, PoolTimeout) as exc:
            return type(exc).__name__
        return None


@contextlib.asynccontextmanager
async def _open_postgres(url: str) -> AsyncIterator[Store]:
    """Check the database with one connection (for a clear error), then serve from a small pool."""
    try:
        where, hide = describe_database(url)
    except MemoryUnavailable as exc:
        raise StoreUnavailable(str(exc)) from None
    kwargs: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT}
    try:
        await (await psycopg.AsyncConnection.connect(url, **kwargs)).close()
    except psycopg.Error as exc:
        reason = one_line(exc, hide)
        raise StoreUnavailable(f"cannot connect to the Postgres database at {where}: {reason}") from None
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, kwargs=kwargs, min_size=1, max_size=4, open=False, check=AsyncConnectionPool.check_connection,
        name="livebot-state",
    )  # fmt: skip
    async with pool:
        yield _PostgresStore(pool, where, hide)


@contextlib.asynccontextmanager
async def open_store(data_dir: Path, database_url: str | None = None) -> AsyncIterator[Store]:
    """Open the bot's state store for the lifetime of the bot: Postgres at `database_url` if given, else
    `data_dir / "state.sqlite"`.

    Raises:
        StoreUnavailable: The database cannot be opened (one line naming it, without the password).
    """
    opener = _open_postgres(database_url) if database_url else _open_sqlite(data_dir / SQLITE_FILE)
    async with opener as store:
        yield store


STORE_ERRORS = (sqlite3.Error, psycopg.Error, PoolTimeout)
"""What a transaction raises when the database is away (a caller that retries later catches these)."""


async def import_file(store: Store, path: Path, select: str, insert: str) -> int:
    """Copy the rows an earlier version kept in an SQLite file of its own into `store`, once: `select` reads them
    from `path`, `insert` (which must skip a row it has, `ON CONFLICT DO NOTHING`, so a start that dies before the
    rename imports again harmlessly) writes them in one transaction; then the file is renamed `<name>.imported`.
    Returns how many rows were read. A file that cannot be read is logged and left in place, never deleted.
    """
    if not await asyncio.to_thread(path.exists):
        return 0
    try:
        async with aiosqlite.connect(path) as old:
            rows = list(await old.execute_fetchall(select))
    except sqlite3.Error as exc:
        if "no such table" not in str(exc):
            log.error("store: %s cannot be read (%s); left in place, not imported", path, one_line(exc))
            return 0
        rows = []
    async with store.transaction() as tx:
        await tx.executemany(insert, rows)
    await asyncio.to_thread(path.rename, path.with_name(f"{path.name}.imported"))
    log.info("store: %d row(s) of %s imported (the file is now %s.imported)", len(rows), path, path.name)
    return len(rows)
