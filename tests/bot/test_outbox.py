"""The outbox at shutdown: a delivery the platform took is recorded, so the next start does not send it again."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

from bot.outbox import open_outbox
from bot.store import Store, Transaction, open_store


async def test_stopping_the_courier_mid_delivery_records_the_send(tmp_path: Path) -> None:
    sent: list[str] = []
    in_flight = asyncio.Event()
    release = asyncio.Event()

    async def deliver(address: dict[str, Any], text: str) -> None:
        in_flight.set()
        await release.wait()  # the platform is slow to answer while the bot shuts down
        sent.append(text)

    async with open_store(tmp_path) as store:
        outbox = await open_outbox(store, tmp_path)
        await outbox.put("telegram", {"chat_id": 1}, "Worth the wait.")
        courier = asyncio.create_task(outbox.courier("telegram", deliver))
        await asyncio.wait_for(in_flight.wait(), 10)
        stopping = asyncio.create_task(outbox.stop(courier))
        await asyncio.sleep(0)  # the stop request is made while the send is in flight
        release.set()
        await asyncio.wait_for(stopping, 10)
        assert sent == ["Worth the wait."]
        assert (await outbox.figures("telegram"))[0] == 0  # recorded: a restart sends nothing again
        async with store.transaction() as tx:  # and gone: delivered entries do not pile up for ever
            assert await tx.fetchall("SELECT count(*) FROM livebot_outbox") == [(0,)]


async def test_entries_an_earlier_version_left_in_outbox_sqlite_are_delivered_once(tmp_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "outbox.sqlite")) as old:  # as versions before the store left it
        old.execute(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, address TEXT NOT NULL,"
            " text TEXT NOT NULL, created REAL NOT NULL, sent REAL)"
        )
        old.execute("INSERT INTO outbox VALUES (1, 'telegram', '{\"chat_id\": 1}', 'Sent before.', 1.0, 2.0)")
        old.execute("INSERT INTO outbox VALUES (2, 'telegram', '{\"chat_id\": 1}', 'Still waiting.', 3.0, NULL)")
        old.commit()
    sent: list[str] = []
    delivered = asyncio.Event()

    async def deliver(address: dict[str, Any], text: str) -> None:
        sent.append(text)
        delivered.set()

    async with open_store(tmp_path) as store:
        outbox = await open_outbox(store, tmp_path)
        courier = asyncio.create_task(outbox.courier("telegram", deliver))
        await asyncio.wait_for(delivered.wait(), 10)
        await outbox.stop(courier)
    assert sent == ["Still waiting."]
    assert not (tmp_path / "outbox.sqlite").exists() and (tmp_path / "outbox.sqlite.imported").exists()
    async with open_store(tmp_path) as store:  # the next start finds nothing waiting: nothing is delivered again
        assert (await (await open_outbox(store, tmp_path)).figures("telegram"))[0] == 0


class _RefusesOneDelete:
    """The real store, but the first deletion of an outbox entry fails, as when the database is away a moment."""

    def __init__(self, store: Store) -> None:
        self.backend = store.backend
        self._store = store
        self.refused = asyncio.Event()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._store.transaction() as tx:
            yield _Refusing(tx, self)

    async def migrate(self, schema: Any) -> None:
        await self._store.migrate(schema)


class _Refusing:
    def __init__(self, tx: Transaction, store: _RefusesOneDelete) -> None:
        self._tx, self._store = tx, store

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if sql.startswith("DELETE FROM livebot_outbox") and not self._store.refused.is_set():
            self._store.refused.set()
            raise sqlite3.OperationalError("database is locked")
        await self._tx.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._tx.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._tx.fetchall(sql, params)


async def test_a_delivery_the_store_could_not_record_is_not_sent_again(tmp_path: Path) -> None:
    sent: list[str] = []
    two = asyncio.Event()

    async def deliver(address: dict[str, Any], text: str) -> None:
        sent.append(text)
        if len(sent) >= 2:
            two.set()

    async with open_store(tmp_path) as real:
        store = _RefusesOneDelete(real)
        outbox = await open_outbox(store, tmp_path)  # type: ignore[arg-type]
        await outbox.put("telegram", {"chat_id": 1}, "Sent, but not recorded at once.")
        courier = asyncio.create_task(outbox.courier("telegram", deliver))
        await asyncio.wait_for(store.refused.wait(), 10)  # delivered; the record of it failed
        await outbox.put("telegram", {"chat_id": 1}, "The next one.")  # the courier's next round
        await asyncio.wait_for(two.wait(), 10)
        await outbox.stop(courier)
        assert sent == ["Sent, but not recorded at once.", "The next one."]  # the first was not sent again
        async with real.transaction() as tx:
            assert await tx.fetchall("SELECT count(*) FROM livebot_outbox") == [(0,)]
