"""Issue 16 item 7: a replica that shuts down hands its unfinished replies over. The reply stops without another
platform call and its in-flight record is in the store, as the user sees it and marked as handed over, before the
reply ends (so before its conversation is let go, when the taker reads it), even when the database is away for a
moment; the taker marks only a message left open mid-step.

The store is the real one (SQLite in a temporary directory); the agent is a stand-in that writes half an answer
and goes on writing for ever (the model's side is tested with real processes in
tests/scenarios/test_replicas_handover.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.run import Cut
from bot.channel import cut_mark
from bot.inflight import RETRY_AFTER, SCHEMA, InFlight, Leftover, Screen, open_inflight
from bot.metrics import REGISTRY
from bot.runtime import HAND_OVER, HANDED_OVER_MARK, LOST_MARK, RESUMED_MARK, SHUTDOWN_MARK, Runtime
from bot.store import open_store
from channels.capabilities import LiveMode, Profile
from channels.inbound import Incoming
from tests.bot.test_inflight import FlakyStore, eventually
from tests.fakes import FakeClock, RecordingSurface, settle

EDIT = Profile(key="test.edit", edit=True, buttons=True, interval=0.5, mode=LiveMode.EDIT)
HALF = "Half of the answer, and the model is still writing"


class WritingAgent:
    """An agent whose run writes HALF, then keeps the model's stream open until it is closed."""

    tools: tuple[()] = ()
    is_demo = False

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def run(self, content: Any, *, thread_id: str, on_text: Callable[[str], None]) -> AsyncGenerator[Any]:
        on_text(HALF)
        try:
            await asyncio.Event().wait()
        finally:
            self.closed.set()
        yield  # (never reached: an async generator, as the real run is)


class AddressedSurface(RecordingSurface):
    """A surface whose replies can be finished elsewhere: it has an address, as Telegram's and Slack's have."""

    def address(self) -> dict[str, Any]:  # type: ignore[override]
        return {"chat_id": -5, "kind": "group"}


def handed_over_replies() -> float:
    return (
        REGISTRY.get_sample_value("livebot_replies_finished_total", {"platform": "telegram", "outcome": "handed_over"})
        or 0.0
    )


async def test_a_reply_handed_over_stops_writing_and_is_recorded_as_shown_before_it_ends(tmp_path: Path) -> None:
    clock = FakeClock()
    async with open_store(tmp_path) as real:
        await real.migrate(SCHEMA)
        store = FlakyStore(real, clock, outages=0)
        async with open_inflight(store, clock=clock) as book:
            agent = WritingAgent()
            runtime = Runtime(agent, clock=clock, inflight=book, channel="telegram")  # type: ignore[arg-type]
            surface = AddressedSurface(EDIT, clock)
            counted = handed_over_replies()
            reply = asyncio.create_task(runtime.answer(Incoming("telegram:-5", "go", "alice"), surface))
            await eventually(lambda: _true(surface.visible == [HALF]))
            calls = len(surface.calls)
            store.outages = 1  # the next write finds the database away: the hand-over waits for the one after
            reply.cancel(HAND_OVER)
            await eventually(lambda: _true(store.outages == 0))
            await settle()
            assert not reply.done()  # the record is not written yet: the conversation must not be let go
            assert agent.closed.is_set()  # the run was closed first: the checkpoint is as the taker will find it
            await clock.advance(RETRY_AFTER)
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(reply, 10)
            [left] = await InFlight(real).leftovers("telegram")  # what the taker reads
            assert left.handed_over and left.asker == "alice"
            assert left.screen == Screen("edit", 1, HALF, buttons=True)  # exactly what the user sees
            await clock.advance(30)
            assert len(surface.calls) == calls  # no mark, no final edit, no "typing": the taker finishes it
            assert surface.visible == [HALF] and surface.closed == 1  # (what it showed beside the text is gone)
            assert handed_over_replies() == counted + 1


async def test_a_reply_that_cannot_be_handed_over_is_cut_short_with_the_notice(tmp_path: Path) -> None:
    clock = FakeClock()
    async with open_store(tmp_path) as store, open_inflight(store, clock=clock) as book:
        runtime = Runtime(WritingAgent(), clock=clock, inflight=book, channel="telegram")  # type: ignore[arg-type]
        surface = RecordingSurface(EDIT, clock)  # no address: no record, so nobody could finish it
        reply = asyncio.create_task(runtime.answer(Incoming("telegram:-5", "go", "alice"), surface))
        await eventually(lambda: _true(surface.visible == [HALF]))
        reply.cancel(HAND_OVER)
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(reply, 10)
        assert surface.visible == [f"{HALF}\n\n{SHUTDOWN_MARK}"]


def leftover(screen: Screen, *, handed_over: bool) -> Leftover:
    address = {"chat_id": 1}
    return Leftover("r1", "telegram:1", "telegram", address, "telegram:1", screen, "x", 0.0, "alice", handed_over)


EDITING = Screen("edit", 7, "Half of it", buttons=True)
STREAMING = Screen("native", "1.0", "Half of it")
DRAFTING = Screen("draft", None, "Half of it")
BETWEEN = Screen("edit")  # the text before a tool was finished; the tool runs


@pytest.mark.parametrize(
    ("screen", "handed_over", "cut", "mark"),
    [
        (EDITING, False, Cut.UNFINISHED, RESUMED_MARK),  # a crash says so, wherever it cut
        (DRAFTING, False, Cut.UNFINISHED, RESUMED_MARK),
        (BETWEEN, False, Cut.UNFINISHED, RESUMED_MARK),
        (EDITING, False, Cut.LOST, LOST_MARK),
        (EDITING, True, Cut.UNFINISHED, HANDED_OVER_MARK),  # the step is written again: the shown text stops here
        (STREAMING, True, Cut.UNFINISHED, HANDED_OVER_MARK),
        (DRAFTING, True, Cut.UNFINISHED, None),  # the resumed reply's draft and final message replace it
        (BETWEEN, True, Cut.UNFINISHED, None),  # the answer opens a new message, as after any tool
        (EDITING, True, Cut.LOST, LOST_MARK),
    ],
)
def test_a_reply_handed_over_is_marked_only_where_it_cannot_go_on_cleanly(
    screen: Screen, handed_over: bool, cut: Cut, mark: str | None
) -> None:
    assert cut_mark(leftover(screen, handed_over=handed_over), cut) == mark


def test_the_hand_over_mark_promises_the_answer_and_asks_nothing() -> None:
    assert "whole answer follows" in HANDED_OVER_MARK and "ask again" not in HANDED_OVER_MARK.lower()
    assert "restart" not in HANDED_OVER_MARK  # nothing crashed


async def _true(value: bool) -> bool:
    return value
