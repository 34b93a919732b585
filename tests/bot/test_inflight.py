"""In-flight records: written off the streaming path, about once a second, and read back after a crash.

The store is the real one (SQLite in a temporary directory; Postgres too when LIVEBOT_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.inflight import SCHEMA, WRITE_EVERY, InFlight, Screen, open_inflight
from bot.store import Schema, Store, StoreUnavailable, Transaction, open_store
from bot.streaming import StreamingHandler
from channels.capabilities import LiveMode, Profile
from tests.fakes import FakeClock, RecordingSurface, settle

DRAFT = Profile(key="test.draft", edit=True, draft=True, interval=1.0, draft_interval=0.3, mode=LiveMode.DRAFT)
EDIT = Profile(key="test.edit", edit=True, buttons=True, interval=0.5, mode=LiveMode.EDIT)
POSTGRES = os.environ.get("LIVEBOT_TEST_DATABASE_URL")


class CountingStore:
    """The real store, with the time (on the test's clock) of every record write noted per record id."""

    def __init__(self, store: Store, clock: FakeClock) -> None:
        self.backend = store.backend
        self._store = store
        self._clock = clock
        self.writes: dict[str, list[float]] = {}

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        begun = self._clock.now()  # (the database thread answers in real time, while the test moves its clock)
        async with self._store.transaction() as tx:
            yield _Counting(tx, self, begun)

    async def migrate(self, schema: Schema) -> None:
        await self._store.migrate(schema)


class _Counting:
    def __init__(self, tx: Transaction, store: CountingStore, begun: float) -> None:
        self._tx, self._store, self._begun = tx, store, begun

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._tx.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if sql.startswith(("INSERT INTO inflight_replies", "UPDATE inflight_replies")):
            for row in rows:  # (the record's id: an insert's first parameter, an update's next to last)
                record = row[0] if sql.startswith("INSERT") else row[-2]
                self._store.writes.setdefault(record, []).append(self._begun)
        await self._tx.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._tx.fetchall(sql, params)


async def written(book: InFlight, store: Store, platform: str = "telegram") -> list[Any]:
    """What a later run would find: the records as stored, read by another owner."""
    return await InFlight(store).leftovers(platform)


async def eventually(condition: Any, timeout: float = 10.0) -> None:
    """Wait until `condition()` is true (the database answers on its own thread, in real time)."""
    async with asyncio.timeout(timeout):
        while True:
            if await condition():
                return
            await asyncio.sleep(0.01)


async def test_a_streaming_reply_is_written_about_once_a_second_not_per_update(tmp_path: Path) -> None:
    clock = FakeClock()
    async with open_store(tmp_path) as real:
        store = CountingStore(real, clock)
        async with open_inflight(store, clock=clock) as book:
            record = book.begin("telegram:1", "telegram", {"chat_id": 1, "kind": "private"}, "telegram:1")
            surface = RecordingSurface(DRAFT, clock)
            handler = StreamingHandler(surface, clock=clock, on_screen=record.show)
            await handler.start()
            for n in range(200):  # 10 s of tokens, one every 50 ms: about 33 drafts
                handler.emit(f"word{n} ")
                await clock.advance(0.05)
                await asyncio.sleep(0.001)  # the database thread answers in real time
            drafts = len(surface.ops("draft"))
            await eventually(lambda: _true(len(store.writes.get(record.id, [])) >= 5))
            await clock.advance(2)
            times = store.writes[record.id]
            assert drafts >= 30
            assert len(times) <= 12  # the start, then at most one a second
            assert all(b - a >= WRITE_EVERY - 1e-9 for a, b in itertools.pairwise(times[1:])), times

            async def shows_latest() -> bool:
                found = await written(book, real)
                return bool(found) and found[0].screen.text == surface.ops("draft")[-1].text

            await clock.advance(2)
            await eventually(shows_latest)
            await handler.stop()
            record.end()
        assert await written(book, real) == []  # ended: the record is gone


async def _true(value: bool) -> bool:
    return value


async def test_a_new_message_is_written_at_once(tmp_path: Path) -> None:
    clock = FakeClock()
    async with open_store(tmp_path) as real:
        store = CountingStore(real, clock)
        async with open_inflight(store, clock=clock) as book:
            record = book.begin("telegram:-5", "telegram", {"chat_id": -5, "kind": "group"}, "telegram:-5")
            await eventually(lambda: _true(len(store.writes.get(record.id, [])) == 1))
            record.show(Screen("edit", 7, "First words", buttons=True))

            async def on_disk() -> bool:
                found = await written(book, real)
                return bool(found) and found[0].screen == Screen("edit", 7, "First words", True)

            await eventually(on_disk)  # no clock advance: a new message does not wait for the second
            [left] = await written(book, real)
            assert (left.conversation, left.thread_id, left.address) == (
                "telegram:-5",
                "telegram:-5",
                {"chat_id": -5, "kind": "group"},
            )
            record.end()


async def test_a_reply_that_ends_before_its_first_write_leaves_nothing(tmp_path: Path) -> None:
    clock = FakeClock()
    async with open_store(tmp_path) as real:
        store = CountingStore(real, clock)
        async with open_inflight(store, clock=clock) as book:
            record = book.begin("slack:C1:1.0", "slack", {"channel": "C1"}, "slack:C1:1.0")
            record.end()
            await settle()
        assert store.writes == {}
        assert await written(book, real, "slack") == []


async def test_records_survive_the_process_and_a_leftover_is_dropped_once_finished(tmp_path: Path) -> None:
    async with open_store(tmp_path) as store, open_inflight(store) as book:
        record = book.begin("slack:C1:1.0", "slack", {"channel": "C1", "thread_ts": "1.0"}, "slack:C1:1.0")
        record.show(Screen("native", "2.0", "Half of it", buttons=False))
    # the block ended without `end`: as after a crash, the record stays
    async with open_store(tmp_path) as store, open_inflight(store) as book:
        [left] = await book.leftovers("slack")
        assert left.screen == Screen("native", "2.0", "Half of it", False)
        assert await book.leftovers("telegram") == []
        await book.drop(left.id)
        assert await book.leftovers("slack") == []


async def test_a_dead_processs_records_are_found_by_owner_and_claimed_by_one_taker(tmp_path: Path) -> None:
    async with open_store(tmp_path) as store:
        async with open_inflight(store) as dead, open_inflight(store) as alive:
            dead.begin("telegram:1", "telegram", {"chat_id": 1}, "telegram:1", "alice").show(Screen("edit", 5, "Hi"))
            alive.begin("telegram:2", "telegram", {"chat_id": 2}, "telegram:2", "bob").show(Screen("edit", 6, "Yo"))
        first, second = InFlight(store), InFlight(store)  # two replicas that both saw `dead` go
        [left] = await first.leftovers("telegram", owner=dead.owner)
        assert (left.conversation, left.asker, left.screen.text) == ("telegram:1", "alice", "Hi")
        [same] = await second.leftovers("telegram", owner=dead.owner)
        assert await first.claim(left) and not await second.claim(same)  # one takes it over, the other leaves it
        assert await first.leftovers("telegram", owner=dead.owner) == []
        assert [r.conversation for r in await second.leftovers("telegram", owner=first.owner)] == ["telegram:1"]


async def test_a_record_another_process_claimed_is_never_written_again_by_the_one_that_lost_it(
    tmp_path: Path,
) -> None:
    async with open_store(tmp_path) as store:
        taker = InFlight(store)  # the replica that takes the conversations over (the other lost their leases)
        for late in ("claimed", "dropped"):
            async with open_inflight(store) as lost:  # (the block's end waits for the last write)
                record = lost.begin("telegram:1", "telegram", {"chat_id": 1}, "telegram:1", "alice")
                record.show(Screen("edit", 5, "Half"))
                await eventually(lambda record=record: _true(record.stored))
                [left] = await taker.leftovers("telegram", owner=lost.owner)
                assert await taker.claim(left)
                if late == "dropped":
                    await taker.drop(left.id)  # finished and settled by the taker
                record.show(Screen("edit", 6, f"Half, and a write after it was {late}"))
            leftovers = await InFlight(store).leftovers("telegram")
            if late == "claimed":
                assert [r.screen.text for r in leftovers] == ["Half"]  # as the taker claimed it
                await taker.drop(left.id)
            else:
                assert leftovers == []  # a finished record does not come back


class FlakyStore(CountingStore):
    """The real store, but the database is away for the first `outages` writes."""

    def __init__(self, store: Store, clock: FakeClock, outages: int) -> None:
        super().__init__(store, clock)
        self.outages = outages

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self.outages:
            self.outages -= 1
            raise OSError("connection refused")
        async with super().transaction() as tx:
            yield tx


async def test_a_database_that_is_away_loses_nothing_and_stops_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "bot.inflight")
    clock = FakeClock()
    async with open_store(tmp_path) as real:
        await real.migrate(SCHEMA)
        store = FlakyStore(real, clock, outages=2)
        async with open_inflight(store, clock=clock) as book:
            record = book.begin("telegram:-5", "telegram", {"chat_id": -5, "kind": "group"}, "telegram:-5")
            record.show(Screen("edit", 7, "First", buttons=True))
            await settle()
            record.show(Screen("edit", 7, "First words", buttons=True))  # the latest state is what gets written
            await clock.advance(5)
            await clock.advance(5)

            async def on_disk() -> bool:
                found = await written(book, real)
                return bool(found) and found[0].screen.text == "First words"

            await eventually(on_disk)
            record.end()
    assert store.outages == 0
    assert caplog.text.count("cannot be written") == 1  # one line for the outage, not one per try
    assert "written again" in caplog.text


async def test_an_unusable_data_directory_stops_start_up_with_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(StoreUnavailable, match="state") as caught:
        async with open_store(blocker):
            pass
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(not POSTGRES, reason="LIVEBOT_TEST_DATABASE_URL is not set")
async def test_records_in_postgres_round_trip(tmp_path: Path) -> None:
    assert POSTGRES is not None
    platform = f"test-{uuid.uuid4().hex[:8]}"
    async with open_store(tmp_path, POSTGRES) as store:
        async with open_inflight(store) as book:
            record = book.begin("k", platform, {"chat_id": 1}, "k")
            record.show(Screen("edit", 3, "text", buttons=True))
            record.show(Screen("edit", 3, "text and more", buttons=True))
            assert await record.hand_over()  # written as it stands when it returns
            [left] = await InFlight(store).leftovers(platform)
            assert left.handed_over and left.screen == Screen("edit", 3, "text and more", True)
        assert abs(left.started - time.time()) < 10  # to the second, not to the minute (what the take-over compares)
        await book.drop(left.id)
        assert await InFlight(store).leftovers(platform) == []
