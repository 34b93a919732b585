"""Replies in flight, recorded durably, so that a reply cut short by a crash is finished at the next start.

When a reply starts, the runtime opens its record (`InFlight.begin`): the conversation, the platform, where the
reply goes (the target's address, as the outbox keeps it) and the LangGraph thread it runs on. After each
platform call the StreamingHandler says what is on screen (`Record.show` with a `Screen`: the live message, the
text it shows, whether it carries a Stop button); when the reply ends, the record is closed (`Record.end`).
Neither does any I/O: they note the latest state, and one writer task writes what changed, batched in one
transaction, off the streaming path. A reply's record is written at most once per `WRITE_EVERY` seconds while its
text grows, and at once when it starts, opens or finishes a message, or ends; never once per token.

At the next start, before the bot takes messages, `bot.channel` takes over every record an earlier run left
(`leftovers`, then `ChannelBot.take_over` each): the record is claimed (`claim`), the message is marked and loses
its Stop button, the record is dropped (`drop`, also when the platform refuses: a failure is logged, never
retried into a crash loop), and the run goes on from its LangGraph checkpoint as a new reply with a record of its
own.

A record names the conversation, the thread to resume from, who asked and the process that ran it (`owner`), so a
replica that takes over a dead replica's conversations (issue 16) can ask for that replica's records
(`leftovers(platform, owner=...)`) and hand each to the same `take_over`. A replica that shuts down hands its
unfinished replies over the same way (`Record.hand_over`): the record is written, marked as handed over, before
the conversation is let go, so the taker reads what the reply showed last.

Records live in the bot's state store (`bot.store`: SQLite in BOT_DATA_DIR, or Postgres with DATABASE_URL), in
the table `inflight_replies`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bot.store import Dialects, Schema, Store
from channels.clock import Clock, LoopClock

log = logging.getLogger(__name__)

WRITE_EVERY = 1.0
"""Seconds between two writes of one reply's record while only its text grows."""
CLOSE_PATIENCE = 15.0
"""At shutdown, how long the last write (the records of the replies that ended) may take."""
RETRY_AFTER = 5.0
"""After a failed write (the database is away), the next try waits this long; nothing is lost meanwhile."""
SCHEMA = Schema(
    "inflight",
    [
        "CREATE TABLE inflight_replies (id TEXT PRIMARY KEY, conversation TEXT NOT NULL, platform TEXT NOT NULL,"
        " address TEXT NOT NULL, thread_id TEXT NOT NULL, screen TEXT NOT NULL, owner TEXT NOT NULL,"
        " started REAL NOT NULL, updated REAL NOT NULL)",
        "CREATE INDEX inflight_replies_platform ON inflight_replies (platform, owner)",
        "ALTER TABLE inflight_replies ADD COLUMN asker TEXT NOT NULL DEFAULT ''",
        Dialects(  # Postgres's REAL is a 4-byte float: whole minutes off for a time; SQLite's is 8 bytes already
            sqlite="SELECT 1",
            postgres="ALTER TABLE inflight_replies ALTER COLUMN started TYPE DOUBLE PRECISION,"
            " ALTER COLUMN updated TYPE DOUBLE PRECISION",
        ),
        "ALTER TABLE inflight_replies ADD COLUMN handed_over INTEGER NOT NULL DEFAULT 0",
    ],
)
_INSERT = (
    "INSERT INTO inflight_replies (id, conversation, platform, address, thread_id, asker, screen, owner, started,"
    " updated, handed_over) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
    " screen = excluded.screen, updated = excluded.updated, handed_over = excluded.handed_over"
    " WHERE inflight_replies.owner = excluded.owner"
)
# Once a record is stored, it is only updated, and only while this process still owns it: a replica that lost the
# conversation (its lease expired) and wrote late cannot overwrite a record another replica claimed, nor bring
# back one that was finished and dropped.
_UPDATE = "UPDATE inflight_replies SET screen = ?, updated = ?, handed_over = ? WHERE id = ? AND owner = ?"
_DELETE = "DELETE FROM inflight_replies WHERE id = ? AND owner = ?"


@dataclass(frozen=True, slots=True)
class Screen:
    """What one reply shows now: as much as a restart needs to finish it.

    Attributes:
        mode: The live mode in force (`LiveMode` value: "edit", "native", "draft", "off").
        message: The message being written (a Telegram message id, a Slack ts); None when no message is open (a
            draft, or between a finished message and the next one).
        text: The Markdown the message (or draft) shows.
        buttons: The message carries the Stop button.
    """

    mode: str = "off"
    message: Any = None
    text: str = ""
    buttons: bool = False


@dataclass(frozen=True, slots=True)
class Leftover:
    """A record an earlier run left: a reply that never ended."""

    id: str
    conversation: str
    platform: str
    address: dict[str, Any]
    thread_id: str
    screen: Screen
    owner: str
    started: float
    asker: str = ""
    """Who asked for the reply (who may stop its resumption); "" in records of versions before it was kept."""
    handed_over: bool = False
    """A replica that shut down stopped the reply and let its conversation go (`Record.hand_over`), rather than
    dying: the screen is exactly what the user sees."""


class Record:
    """The record of one reply in flight. `show` and `end` are O(1) and do no I/O."""

    def __init__(
        self, book: InFlight, conversation: str, platform: str, address: dict[str, Any], thread_id: str, asker: str
    ) -> None:
        self.id = uuid.uuid4().hex
        self._book = book
        self._static = (conversation, platform, json.dumps(address), thread_id, asker)
        self._started = time.time()
        self.screen = Screen()
        self.ended = False
        self.urgent = True  # a new record is written at once
        self.stored = False  # a row exists in the database
        self.written_at = float("-inf")
        self.handed_over = False
        self.landed: asyncio.Event | None = None
        """Set by the writer once the record is written as it stands (`hand_over` waits for it)."""

    def show(self, screen: Screen) -> None:
        """The reply now shows `screen` (the StreamingHandler calls this after each platform call)."""
        if self.ended or screen == self.screen:
            return
        self.urgent = self.urgent or screen.message != self.screen.message  # a message opened or finished
        self.screen = screen
        self._book._changed(self)

    def end(self) -> None:
        """The reply is over: its record goes."""
        if not self.ended:
            self.ended = self.urgent = True
            self._book._changed(self)

    async def hand_over(self) -> bool:
        """The reply stops here, as it shows now, and another replica finishes it (a shutdown in replica mode):
        note so and wait until the record is written, since the taker reads it as soon as the conversation is let
        go. Returns False when the database did not take it within CLOSE_PATIENCE (the taker then finds the record
        as last written, as after a crash)."""
        if self.ended:
            return False
        self.handed_over = self.urgent = True
        landed = self.landed = asyncio.Event()
        self._book._changed(self)
        try:
            async with asyncio.timeout(CLOSE_PATIENCE):
                await landed.wait()
        except TimeoutError:
            log.warning("in-flight record %s not written in %g s; handed over as last written", self.id, CLOSE_PATIENCE)
            return False
        return True

    def row(self, owner: str, now: float) -> tuple[Any, ...]:
        """The record's row, for its first write."""
        return (self.id, *self._static, self._encoded(), owner, self._started, now, int(self.handed_over))

    def change(self, owner: str, now: float) -> tuple[Any, ...]:
        """What changed since, for the later writes (`_UPDATE`'s parameters)."""
        return (self._encoded(), now, int(self.handed_over), self.id, owner)

    def _encoded(self) -> str:
        shown = self.screen
        return json.dumps({"mode": shown.mode, "message": shown.message, "text": shown.text, "buttons": shown.buttons})


class InFlight:
    """The records of the replies in flight of this process, and of those an earlier run left. Open with
    `open_inflight`.

    Args:
        store: The bot's state store (its `inflight` schema set up).
        clock: For the write cadence (tests control time with it).
        owner: This process's name in the records it writes (a fresh one per start).
    """

    def __init__(self, store: Store, *, clock: Clock | None = None, owner: str | None = None) -> None:
        self._store = store
        self._clock = clock or LoopClock()
        self.owner = owner or uuid.uuid4().hex
        self._pending: dict[str, Record] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self._failing = False
        self._deadline = float("inf")  # when the writer's next round is due (it wakes earlier only for what is sooner)

    def begin(
        self, conversation: str, platform: str, address: dict[str, Any], thread_id: str, asker: str = ""
    ) -> Record:
        """Open the record of a reply that starts now (`asker`: who asked for it); it is written at once, off the
        caller's path."""
        record = Record(self, conversation, platform, address, thread_id, asker)
        self._changed(record)
        return record

    async def leftovers(
        self, platform: str, *, owner: str | None = None, conversation: str | None = None
    ) -> list[Leftover]:
        """The records of `platform` that other processes left, oldest first: every other owner's (at the start
        of a single process: an earlier, crashed run), or only those of `owner` (a replica known to be dead); with
        `conversation`, only that conversation's (a replica taking it over)."""
        where, params = "owner = ?" if owner is not None else "owner <> ?", [platform, owner or self.owner]
        if conversation is not None:
            where = f"{where} AND conversation = ?"
            params.append(conversation)
        async with self._store.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT id, conversation, platform, address, thread_id, screen, owner, started, asker, handed_over"
                f" FROM inflight_replies WHERE platform = ? AND {where} ORDER BY started",
                params,
            )
        found = []
        for row in rows:
            try:
                found.append(_leftover(row))
            except (ValueError, KeyError, TypeError):
                log.error("in-flight record %s cannot be read; dropped", row[0])
                await self.drop(row[0])
        return found

    async def claim(self, leftover: Leftover) -> bool:
        """Make `leftover` this process's, if it is still its owner's: False when another process claimed it
        first (so two replicas never both finish one reply). A claimed record that this process does not drop
        (it died too) is found again among this owner's leftovers."""
        async with self._store.transaction() as tx:
            won = await tx.fetchall(
                "UPDATE inflight_replies SET owner = ? WHERE id = ? AND owner = ? RETURNING id",
                (self.owner, leftover.id, leftover.owner),
            )
        return bool(won)

    async def drop(self, record_id: str) -> None:
        """Forget the record `record_id` (a leftover that was finished, or could not be)."""
        async with self._store.transaction() as tx:
            await tx.execute("DELETE FROM inflight_replies WHERE id = ?", (record_id,))

    # -- the writer ------------------------------------------------------------------------------------

    def _changed(self, record: Record) -> None:
        self._pending[record.id] = record
        if record.urgent or record.written_at + WRITE_EVERY < self._deadline:
            self._wake.set()  # (a change the writer's next round writes anyway does not wake it: one round a second)

    async def write(self) -> None:
        """Write what changes, as it changes (the cadence is in the module docstring), until `close`; then write
        what is left, once."""
        while not self._closing:
            self._deadline = float("inf")
            await self._wake.wait()
            self._wake.clear()
            while self._pending and not self._closing:
                now = self._clock.now()
                due = [r for r in self._pending.values() if r.urgent or r.written_at + WRITE_EVERY <= now]
                if due and await self._write(due):
                    continue
                soonest = RETRY_AFTER if due else min(r.written_at for r in self._pending.values()) + WRITE_EVERY - now
                self._deadline = now + soonest
                await self._sleep_or_wake(soonest)  # an urgent change (or `close`) comes first
        if self._pending:
            await self._write(list(self._pending.values()))

    def close(self) -> None:
        """Ask `write` to write what is left and return (after the write it is in, so no change is half-done)."""
        self._closing = True
        self._wake.set()

    async def _sleep_or_wake(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
        self._wake.clear()

    async def _write(self, records: list[Record]) -> bool:
        """One transaction for `records`: ended ones deleted, new ones inserted, the others updated (all three
        only while this process owns the record). Returns whether it went."""
        now, wall = self._clock.now(), time.time()
        for record in records:
            del self._pending[record.id]
            record.urgent, record.written_at = False, now
        gone = [r for r in records if r.ended]
        kept = [r for r in records if not r.ended]
        new = [r.row(self.owner, wall) for r in kept if not r.stored]
        changed = [r.change(self.owner, wall) for r in kept if r.stored]
        try:
            async with self._store.transaction() as tx:
                if stored := [(r.id, self.owner) for r in gone if r.stored]:
                    await tx.executemany(_DELETE, stored)
                if new:
                    await tx.executemany(_INSERT, new)
                if changed:
                    await tx.executemany(_UPDATE, changed)
        except Exception as exc:  # the database is away: keep the latest state, try again later
            for record in records:
                self._pending.setdefault(record.id, record)
                record.urgent = record.urgent or record.ended
            if not self._failing:
                log.error("in-flight records cannot be written (%s); retrying every %g s", exc, RETRY_AFTER)
            self._failing = True
            return False
        for record in gone:
            record.stored = False
        for record in kept:
            record.stored = True  # (if it ended meanwhile, it is pending again and its row goes next)
            if record.landed is not None and record.id not in self._pending:  # written as it stands
                record.landed.set()
        if self._failing:
            log.info("in-flight records are written again")
        self._failing = False
        return True


def _leftover(row: tuple[Any, ...]) -> Leftover:
    id_, conversation, platform, address, thread_id, screen, owner, started, asker, handed_over = row
    raw = json.loads(screen)
    shown = Screen(str(raw["mode"]), raw["message"], str(raw["text"]), bool(raw["buttons"]))
    return Leftover(
        id_, conversation, platform, json.loads(address), thread_id, shown, owner, started, asker, bool(handed_over)
    )


@contextlib.asynccontextmanager
async def open_inflight(store: Store, *, clock: Clock | None = None) -> AsyncIterator[InFlight]:
    """Set up the records' table and run the writer for the duration of the block; what is pending is written
    on exit (call it after the replies have ended, so their records go)."""
    await store.migrate(SCHEMA)
    book = InFlight(store, clock=clock)
    writer = asyncio.create_task(book.write(), name="inflight-writer")
    try:
        yield book
    finally:
        book.close()
        try:
            await asyncio.wait_for(writer, CLOSE_PATIENCE)
        except TimeoutError:
            log.warning("in-flight records: the last write did not finish; the next start may mark a reply again")
