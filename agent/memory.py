"""Where conversations are remembered between runs and restarts: SQLite in the data directory, or Postgres.

The backend is chosen in one place, `open_checkpointer`: Postgres (langgraph-checkpoint-postgres) when a
database URL is given, else SQLite in `data_dir`. Either way the store is ready when it is yielded (tables
created, migrations run), so a store that cannot be used stops start-up with `MemoryUnavailable` — one line
that names the store and the reason, never the password — instead of failing the first reply.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import psycopg
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool

DictPool = AsyncConnectionPool[psycopg.AsyncConnection[dict[str, Any]]]

SQLITE_FILE = "memory.sqlite"
logger = logging.getLogger(__name__)
CONNECT_TIMEOUT = 10
"""Seconds to wait for the Postgres server, unless the URL sets `connect_timeout` itself (libpq waits forever)."""
_MAX_REASON_CHARS = 300
SETUP_LOCK = 0x6C697665626F74  # "livebot": the advisory lock key of table set-up (`setup_lock`)
SETUP_LOCK_POLL = 0.1
"""Seconds between two tries of the set-up lock while another process sets up."""


class MemoryUnavailable(ConnectionError):
    """The conversation store cannot be opened, so the bot cannot start.

    Raised for a malformed database URL, an unreachable server, a refused login, a missing database, tables
    that cannot be created, or an unwritable data directory. The message is one line, safe to print: it names
    the store (`host:port/database` or the SQLite file) and the reason, and never contains the password.
    """


@asynccontextmanager
async def open_checkpointer(data_dir: Path, database_url: str | None = None) -> AsyncIterator[BaseCheckpointSaver]:
    """Open the conversation store for the lifetime of the bot.

    Args:
        data_dir: BOT_DATA_DIR; created if missing. Without a database URL the store is
            `data_dir / "memory.sqlite"`.
        database_url: DATABASE_URL, a libpq URL (`postgresql://user:password@host:5432/database`) or key=value
            string. When set, conversations are kept in that database and `data_dir` is not used.

    Yields:
        A checkpointer for `create_agent`; its connections are closed on exit.

    Raises:
        MemoryUnavailable: When the store cannot be opened or set up.
    """
    opener = _open_postgres(database_url) if database_url else _open_sqlite(data_dir / SQLITE_FILE)
    async with opener as saver:
        yield saver


class _WatchedSqliteSaver(AsyncSqliteSaver):
    """An SQLite store that notices when its file is deleted or replaced while the bot runs.

    SQLite keeps writing to the open file after it is unlinked, so everything remembered from then on is lost at
    the next start, silently. Each write checks that the file on disk is still the one opened (one `stat`, a few
    microseconds) and logs an error the first time it is not.
    """

    _path: Path | None = None
    _identity: tuple[int, int] | None = None
    _reported = False

    def watch(self, path: Path) -> None:
        self._path = path
        self._identity = _identity(path)

    async def aput(self, *args: Any, **kwargs: Any) -> Any:
        self._check_file()
        return await super().aput(*args, **kwargs)

    def _check_file(self) -> None:
        if self._path is None or self._reported:
            return
        if _identity(self._path) != self._identity:
            self._reported = True
            logger.error(
                "the conversation memory %s was deleted or replaced while the bot runs; what is remembered from now "
                "on is lost when the bot stops. Restart the bot to start a new memory file",
                self._path,
            )


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


@asynccontextmanager
async def _open_sqlite(path: Path) -> AsyncIterator[BaseCheckpointSaver]:
    async with AsyncExitStack() as stack:
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            saver = await stack.enter_async_context(_WatchedSqliteSaver.from_conn_string(str(path)))
            assert isinstance(saver, _WatchedSqliteSaver)  # from_conn_string builds the class it is called on
            await saver.setup()
            saver.watch(path)
        except (OSError, sqlite3.Error) as exc:
            raise MemoryUnavailable(f"cannot open the conversation memory at {path}: {one_line(exc)}") from None
        yield saver


@asynccontextmanager
async def _open_postgres(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """Check the database with one connection (for a clear error) and set it up, then serve from a pool.

    The pool is what keeps a long-running bot working across a database restart: a broken connection is
    noticed when it is taken from the pool (`check`) and replaced. AsyncPostgresSaver serialises its queries
    with a lock, so one connection is all it uses at a time.
    """
    params = _conninfo(url)
    where, hide = describe_database(url)
    # What AsyncPostgresSaver needs of every connection (as in its from_conn_string).
    kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    if "connect_timeout" not in params:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT
    cannot_connect = f"cannot connect to the Postgres database at {where}"
    try:
        conn = await psycopg.AsyncConnection.connect(url, **kwargs)
    except psycopg.Error as exc:
        raise MemoryUnavailable(f"{cannot_connect}: {one_line(exc, hide)}") from None
    try:
        async with conn, setup_lock(conn):
            await AsyncPostgresSaver(conn).setup()
    except psycopg.Error as exc:
        reason = one_line(exc, hide)
        raise MemoryUnavailable(
            f"cannot create the memory tables in the Postgres database at {where}: {reason}"
        ) from None

    async with AsyncConnectionPool(
        url, kwargs=kwargs, min_size=1, open=False, check=AsyncConnectionPool.check_connection, name="livebot-memory"
    ) as pool:
        try:
            await pool.wait(timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:  # the server went away since the check above
            raise MemoryUnavailable(f"{cannot_connect}: {one_line(exc, hide)}") from None
        yield AsyncPostgresSaver(cast(DictPool, pool))  # rows are dicts (row_factory above), not typed tuples


def describe_database(url: str) -> tuple[str, list[str]]:
    """`host:port/database` of a database URL, and every spelling of its password (to keep out of error lines).

    Raises:
        MemoryUnavailable: The URL is malformed (the message says what is expected, without the URL).
    """
    params = _conninfo(url)
    return _where(params), _secrets(url, params)


@asynccontextmanager
async def setup_lock(conn: psycopg.AsyncConnection[Any]) -> AsyncIterator[None]:
    """Hold the database-wide set-up lock (a Postgres advisory lock) for the block.

    Replicas start at the same moment, and creating the same tables at once fails in all but one of them
    (`CREATE TABLE IF NOT EXISTS` races on Postgres's catalogue; the checkpointer's migrations race on their own
    table): every table set-up of livebot runs under this lock, one process at a time. The lock is the session's
    (`conn` must be in autocommit mode), released at the end of the block or when the connection goes.

    The lock is tried, not waited for inside Postgres: the checkpointer's migrations create an index
    CONCURRENTLY, which waits for every open transaction, including a `pg_advisory_lock` call waiting for the
    lock that the migrating process holds (a deadlock Postgres breaks by failing one of them).
    """
    async with conn.cursor(row_factory=tuple_row) as cursor:
        while True:
            await cursor.execute("SELECT pg_try_advisory_lock(%s)", (SETUP_LOCK,))
            if (await cursor.fetchone() or (False,))[0]:
                break
            await asyncio.sleep(SETUP_LOCK_POLL)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))


def _conninfo(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except psycopg.Error:
        # libpq's message quotes the whole string, password included: say what is expected instead.
        raise MemoryUnavailable(
            "the database URL is not a valid PostgreSQL URL (expected postgresql://user:password@host:5432/database)"
        ) from None


def _where(params: dict[str, Any]) -> str:
    """`host:port/database`, as libpq would resolve the defaults."""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    database = params.get("dbname") or params.get("user") or "postgres"
    return f"{host}:{port}/{database}"


def _secrets(url: str, params: dict[str, Any]) -> list[str]:
    """Every form in which the password could appear in an error: decoded, as written in the URL, the URL."""
    found = [url, str(params.get("password") or "")]
    with suppress(ValueError):  # a key=value string, or a URL urllib cannot split
        found.append(urlsplit(url).password or "")
    return [secret for secret in found if secret]


def one_line(exc: BaseException, hide: Iterable[str] = ()) -> str:
    """`exc` as one line of at most 300 characters, with every string in `hide` (a password) replaced by ***."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    for secret in sorted(hide, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text if len(text) <= _MAX_REASON_CHARS else text[: _MAX_REASON_CHARS - 1] + "…"
