"""The StreamingHandler contract (docs/architecture.md), checked against a recording surface and a hand-moved clock."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import threading
from dataclasses import replace

import pytest

from bot.streaming import FINAL_BACKOFF, StreamingHandler
from channels.capabilities import LiveMode, Profile
from channels.errors import (
    FormattingRejected,
    MessageGone,
    MessageTooLong,
    NotModified,
    PermanentError,
    RateLimited,
    StreamingRefused,
    TransientError,
)
from tests.fakes import FakeClock, RecordingSurface, settle

EDIT = Profile(key="test.edit", edit=True, interval=1.0, mode=LiveMode.EDIT)
DRAFT = Profile(key="test.draft", edit=True, draft=True, interval=1.0, draft_interval=0.3, mode=LiveMode.DRAFT)
NATIVE = Profile(key="test.native", edit=True, native_stream=True, interval=1.0, mode=LiveMode.NATIVE)
OFF = Profile(key="test.off", edit=False, mode=LiveMode.OFF)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def started(profile: Profile, clock: FakeClock) -> tuple[StreamingHandler, RecordingSurface]:
    surface = RecordingSurface(profile, clock)
    handler = StreamingHandler(surface, clock=clock)
    await handler.start()
    return handler, surface


def words(texts: list[str]) -> list[str]:
    """The words of some messages, ignoring code-fence lines a split adds."""
    return [w for t in texts for line in t.splitlines() if not line.startswith("```") for w in line.split()]


# -- cadence ---------------------------------------------------------------------------------------------------


async def test_first_text_is_shown_at_once_not_an_interval_later(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("Hello")
    await settle()
    assert [(c.t, c.op, c.text) for c in surface.calls] == [(0.0, "send", "Hello")]


async def test_whitespace_alone_is_not_displayable(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("\n\n  ")
    await clock.advance(3)
    assert surface.calls == []
    handler.emit("Hi")
    await settle()
    assert surface.ops("send")[0].text == "Hi"  # leading blank lines of a message are dropped


async def test_at_most_one_update_per_interval_always_with_the_latest_text(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    for i in range(50):  # 5 s of tokens, one every 0.1 s
        handler.emit(f"w{i} ")
        await clock.advance(0.1)
    await clock.advance(1.0)
    calls = surface.ops()
    gaps = [b.t - a.t for a, b in itertools.pairwise(calls)]
    assert all(gap >= 1.0 - 1e-9 for gap in gaps), gaps
    assert 5 <= len(calls) <= 7
    assert surface.visible == ["w0 " + "".join(f"w{i} " for i in range(1, 50)).rstrip()]


async def test_no_update_when_the_shown_text_would_not_change(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("Same")
    await clock.advance(2)
    handler.emit("   ")  # trailing whitespace changes nothing on screen
    await clock.advance(5)
    assert len(surface.calls) == 1
    assert await handler.stop()
    assert len(surface.calls) == 1  # the final text is already shown: no identical edit
    assert await handler.stop()  # stop is idempotent
    assert surface.closed == 1


async def test_stale_states_are_skipped_not_queued(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("a")
    await settle()
    for token in "bcdefgh":  # seven states inside one interval
        handler.emit(token)
        await clock.advance(0.1)
    await clock.advance(1)
    assert [c.text for c in surface.calls] == ["a", "abcdefgh"]


async def test_emit_from_another_thread(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    worker = threading.Thread(target=lambda: [handler.emit(f"{i} ") for i in range(100)])
    worker.start()
    worker.join()
    await settle()
    await handler.stop()
    assert surface.visible == [" ".join(str(i) for i in range(100))]


# -- take() before tools -----------------------------------------------------------------------------------------


async def test_take_finishes_the_message_and_the_next_text_opens_a_new_one(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("Let me check")
    await settle()
    handler.emit(" the time.")
    assert await handler.take() == ""
    assert surface.visible == ["Let me check the time."]  # finished before the tool runs
    await clock.advance(2)
    handler.emit("It is noon.")
    await clock.advance(2)
    assert await handler.stop()
    assert surface.visible == ["Let me check the time.", "It is noon."]


async def test_take_with_nothing_written_sends_nothing(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    assert await handler.take() == ""
    handler.emit("Answer")
    await handler.stop()
    assert surface.visible == ["Answer"]


async def test_final_only_surface_gets_one_message_at_the_end(clock: FakeClock) -> None:
    handler, surface = await started(OFF, clock)
    handler.emit("Before the tool.")
    await clock.advance(5)
    assert surface.calls == []
    assert await handler.take() == "Before the tool."  # not shown yet: kept for the final message
    handler.emit("After the tool.")
    await clock.advance(5)
    assert surface.calls == []
    assert await handler.stop()
    assert [(c.op, c.text, c.final) for c in surface.calls] == [("send", "Before the tool.\n\nAfter the tool.", True)]


# -- live modes --------------------------------------------------------------------------------------------------


async def test_draft_previews_then_a_real_message(clock: FakeClock) -> None:
    handler, surface = await started(DRAFT, clock)
    handler.emit("Hel")
    await settle()
    handler.emit("lo")
    await clock.advance(0.3)
    assert [c.op for c in surface.calls] == ["draft", "draft"]
    assert surface.calls[0].ref == surface.calls[1].ref != 0  # the same draft animates
    assert surface.visible == []  # nothing permanent yet
    await handler.take()
    handler.emit("More")
    await clock.advance(0.3)
    await handler.stop()
    assert surface.visible == ["Hello", "More"]  # a draft is never the last thing the user sees
    drafts = surface.ops("draft")
    assert drafts[-1].ref != drafts[0].ref  # a new message gets a new draft id


async def test_a_draft_still_waiting_when_the_answer_ends_gives_way_to_the_final_message(clock: FakeClock) -> None:
    handler, surface = await started(DRAFT, clock)
    budget = asyncio.Event()  # never set: the platform budget has no room for the preview

    async def draft_waiting_for_budget(draft_id: int, text: str, *, plain: bool = False) -> None:
        await budget.wait()

    surface.draft = draft_waiting_for_budget  # type: ignore[method-assign]
    handler.emit("The whole answer, written before the preview could go.")
    await settle()
    await asyncio.wait_for(handler.stop(), 5)  # does not wait for the preview's budget
    assert surface.visible == ["The whole answer, written before the preview could go."]
    assert [c.op for c in surface.calls] == ["send"]  # one call for the whole answer


async def test_a_draft_call_that_loses_its_cancellation_still_gives_way_to_the_final_message(
    clock: FakeClock,
) -> None:
    handler, surface = await started(DRAFT, clock)
    budget = asyncio.Event()

    async def draft_losing_the_cancellation(draft_id: int, text: str, *, plain: bool = False) -> None:
        # What Python 3.11's asyncio.wait_for (redis-py sends through it) does when the call completes meanwhile:
        with contextlib.suppress(asyncio.CancelledError):
            await budget.wait()  # (its place in the shared rate budget, being given back to Redis)

    surface.draft = draft_losing_the_cancellation  # type: ignore[method-assign]
    handler.emit("The whole answer, while a preview was on its way.")
    await settle()
    stopping = asyncio.create_task(handler.stop())
    done, _ = await asyncio.wait([stopping], timeout=10)  # (not wait_for: its cancel would end the flusher)
    assert done, "the final message waits for a preview that is over"
    assert surface.visible == ["The whole answer, while a preview was on its way."]


async def test_native_stream_appends_deltas_and_stops(clock: FakeClock) -> None:
    handler, surface = await started(NATIVE, clock)
    handler.emit("One ")
    await settle()
    handler.emit("two ")
    await clock.advance(1)
    handler.emit("three")
    await handler.stop()
    assert [(c.op, c.text) for c in surface.calls] == [
        ("stream_start", "One"),
        ("stream_append", " two"),
        ("stream_stop", " three"),
    ]
    assert surface.visible == ["One two three"]
    assert not surface.streaming  # never left in streaming state


async def test_refused_draft_falls_back_to_edits(clock: FakeClock) -> None:
    handler, surface = await started(DRAFT, clock)
    surface.failures["draft"] = [StreamingRefused("drafts not allowed")]
    handler.emit("Hello")
    await settle()
    handler.emit(" world")
    await clock.advance(1.1)
    await handler.stop()
    assert handler.mode is LiveMode.EDIT
    assert [c.op for c in surface.calls] == ["draft", "send", "edit"]
    assert surface.visible == ["Hello world"]


async def test_refused_native_stream_falls_back_to_edits(clock: FakeClock) -> None:
    handler, surface = await started(NATIVE, clock)
    surface.failures["stream_start"] = [StreamingRefused("not allowed")]
    handler.emit("Hello")
    await settle()
    handler.emit(" there")
    await handler.stop()
    assert [c.op for c in surface.calls] == ["stream_start", "send", "edit"]
    assert surface.visible == ["Hello there"]


async def test_expired_native_stream_is_finished_by_editing_it(clock: FakeClock) -> None:
    handler, surface = await started(NATIVE, clock)
    handler.emit("Start")
    await settle()
    surface.streaming.clear()  # the platform expired the stream
    handler.emit(" and the rest")
    await handler.stop()
    assert [c.op for c in surface.calls] == ["stream_start", "stream_stop", "edit"]
    assert surface.visible == ["Start and the rest"]


async def test_a_surface_that_cannot_even_edit_falls_back_to_final_only(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    surface.failures["send"] = [StreamingRefused("read-only")]
    handler.emit("Hello")
    await clock.advance(2)
    handler.emit(" world")
    await clock.advance(2)
    assert handler.mode is LiveMode.OFF
    assert await handler.stop()
    assert surface.visible == ["Hello world"]


# -- overflow ----------------------------------------------------------------------------------------------------


async def test_overflow_freezes_at_a_paragraph_and_continues_without_loss(clock: FakeClock) -> None:
    handler, surface = await started(replace(EDIT, max_chars=60), clock)
    paragraphs = [f"Paragraph {i} has a handful of words." for i in range(6)]
    for token in re.findall(r"\S+|\s+", "\n\n".join(paragraphs)):
        handler.emit(token)
        await clock.advance(0.2)
    assert await handler.stop()
    assert all(len(m) <= 60 for m in surface.visible)
    assert all(m.endswith(".") for m in surface.visible)  # cut at a boundary, never mid-sentence
    assert words(surface.visible) == words(paragraphs)


async def test_overflow_inside_a_code_fence_closes_and_reopens_it(clock: FakeClock) -> None:
    handler, surface = await started(replace(EDIT, max_chars=80), clock)
    code = "\n".join(f"value_{i} = {i}" for i in range(20))
    answer = f"Here:\n\n```python\n{code}\n```\nDone."
    for line in answer.splitlines(keepends=True):
        handler.emit(line)
        await clock.advance(0.5)
    assert await handler.stop()
    assert len(surface.visible) > 2
    for message in surface.visible:
        assert len(message) <= 80
        assert message.count("```") % 2 == 0, message  # every fence in a message is closed
    continued = surface.visible[1:-1]
    assert all(m.startswith("```python\n") for m in continued)
    assert words(surface.visible) == words([answer])


async def test_a_huge_burst_is_cut_into_full_messages(clock: FakeClock) -> None:
    handler, surface = await started(replace(EDIT, max_chars=100), clock)
    text = " ".join(f"word{i}" for i in range(2000))
    handler.emit(text)
    assert await handler.stop()
    assert all(len(m) <= 100 for m in surface.visible)
    assert words(surface.visible) == text.split()


async def test_message_too_long_from_the_platform_cuts_shorter(clock: FakeClock) -> None:
    handler, surface = await started(replace(EDIT, max_chars=100), clock)
    surface.failures["send"] = [MessageTooLong("message is too long")]
    text = " ".join(f"w{i}" for i in range(30))  # 110 chars: fits by our count, not by the platform's
    handler.emit(text[:95])
    handler.emit(text[95:])
    assert await handler.stop()
    assert words(surface.visible) == text.split()
    assert len(surface.visible) == 2


# -- error rules -------------------------------------------------------------------------------------------------


async def test_429_mid_stream_means_no_call_before_retry_after_then_the_latest_text(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("one")
    await settle()
    surface.failures["edit"] = [RateLimited(7)]
    handler.emit(" two")
    await clock.advance(1.0)  # the edit at t=1 gets 429 retry_after=7
    limited_at = surface.calls[-1].t
    for token in (" three", " four"):
        handler.emit(token)
        await clock.advance(1.0)
    assert surface.calls[-1].t == limited_at  # nothing inside retry_after
    await clock.advance(6.0)
    after = surface.calls[-1]
    assert after.t >= limited_at + 7
    assert after.text == "one two three four"


async def test_429_on_the_final_waits_and_the_final_lands(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("start")
    await settle()
    handler.emit(" end")
    surface.failures["edit"] = [RateLimited(30), RateLimited(30)]
    stopping = __import__("asyncio").create_task(handler.stop())
    await clock.advance(59)
    assert not stopping.done()
    await clock.advance(2)
    assert await stopping
    assert surface.visible == ["start end"]
    finals = surface.ops("edit")
    assert [c.t for c in finals] == [0.0, 30.0, 60.0]


async def test_not_modified_counts_as_success(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("a")
    await settle()
    surface.failures["edit"] = [NotModified("message is not modified")]
    handler.emit("b")
    await clock.advance(1)
    await clock.advance(5)
    assert len(surface.ops("edit")) == 1  # not retried


async def test_formatting_rejected_is_resent_as_plain_text_for_the_rest_of_the_reply(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    surface.failures["send"] = [FormattingRejected("can't parse entities")]
    handler.emit("*bold")
    await settle()
    handler.emit(" more")
    await handler.stop()
    assert [(c.op, c.plain) for c in surface.calls] == [("send", False), ("send", True), ("edit", True)]
    assert surface.visible == ["*bold more"]


async def test_a_deleted_message_continues_in_a_new_one(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("first part")
    await settle()
    surface.failures["edit"] = [MessageGone("message to edit not found")]
    del surface.messages[1]
    handler.emit(" second part")
    await handler.stop()
    assert surface.visible == ["first part second part"]


async def test_intermediate_network_error_is_skipped(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("a")
    await settle()
    surface.failures["edit"] = [TransientError("connection reset")]
    handler.emit("b")
    await clock.advance(1)
    handler.emit("c")
    await clock.advance(5)
    assert [c.text for c in surface.ops("edit")] == ["ab", "abc"]
    assert surface.visible == ["abc"]


async def test_final_network_errors_are_retried_with_backoff(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("text")
    surface.failures["send"] = [TransientError("reset")] * 3
    stopping = __import__("asyncio").create_task(handler.stop())
    await clock.advance(sum(FINAL_BACKOFF[:3]) + 0.01)
    assert await stopping
    assert surface.visible == ["text"]


async def test_final_that_never_lands_is_reported_undelivered(clock: FakeClock) -> None:
    handler, surface = await started(OFF, clock)
    handler.emit("lost?")
    surface.failures["send"] = [TransientError("down")] * (len(FINAL_BACKOFF) + 1)
    stopping = __import__("asyncio").create_task(handler.stop())
    await clock.advance(sum(FINAL_BACKOFF) + 1)
    assert await stopping is False
    assert handler.undelivered == ["lost?"]


async def test_permanent_refusal_is_not_retried(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("to a blocked chat")
    surface.failures["send"] = [PermanentError("bot was blocked by the user")]
    assert await handler.stop() is False
    assert len(surface.ops("send")) == 1
    assert handler.undelivered == ["to a blocked chat"]


async def test_failed_final_edit_sends_the_whole_segment_anew(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("partial")
    await settle()
    handler.emit(" and complete")
    surface.failures["edit"] = [TransientError("down")] * (len(FINAL_BACKOFF) + 1)
    stopping = __import__("asyncio").create_task(handler.stop())
    await clock.advance(sum(FINAL_BACKOFF) + 1)
    assert await stopping
    assert surface.visible[-1] == "partial and complete"


# -- waiting feedback --------------------------------------------------------------------------------------------


async def test_typing_until_the_first_text_and_again_during_a_tool(clock: FakeClock) -> None:
    profile = replace(EDIT, typing=True, status=True)
    handler, surface = await started(profile, clock)
    await clock.advance(9)
    assert [c.t for c in surface.ops("typing")] == [0.0, 4.0, 8.0]
    handler.emit("Checking.")
    await clock.advance(9)
    assert len(surface.ops("typing")) == 3  # stops once there is text
    await handler.take()
    await handler.tool_started("calculator")
    assert surface.status_line == "Using calculator…"
    await clock.advance(5)
    assert len(surface.ops("typing")) == 5
    handler.emit("Result.")
    await settle()
    assert surface.status_line is None  # replaced when the answer continues
    await handler.stop()
    assert surface.visible == ["Checking.", "Result."]


async def test_typing_stops_when_its_call_loses_the_cancellation(clock: FakeClock) -> None:
    handler, surface = await started(replace(EDIT, typing=True), clock)
    typed = surface.typing

    async def typing_losing_the_cancellation() -> None:
        await typed()
        with contextlib.suppress(asyncio.CancelledError):  # lost, as in the draft's test above
            await asyncio.Event().wait()  # a call still under way when the text comes

    surface.typing = typing_losing_the_cancellation  # type: ignore[method-assign]
    await settle()
    handler.emit("Here.")
    await settle()
    await clock.advance(20)
    assert len(surface.ops("typing")) == 1  # not one every 4 s for ever
    await handler.stop()


async def test_tools_show_as_tasks_with_their_outcome_where_the_surface_has_tasks(clock: FakeClock) -> None:
    handler, surface = await started(replace(NATIVE, tasks=True, status=True), clock)
    handler.emit("Let me look.")
    await handler.take()
    await handler.tool_started("web_fetch", "call_1")
    await handler.tool_finished("web_fetch", "call_1", ok=False)
    handler.emit("The page could not be read.")
    await handler.stop()
    assert [c.text for c in surface.ops("task")] == [
        "call_1:Using web_fetch:in_progress",
        "call_1:Using web_fetch:error",
    ]
    assert surface.ops("status") == []  # tasks replace the status line
    assert surface.visible == ["Let me look.", "The page could not be read."]


async def test_a_final_behind_a_retry_after_longer_than_the_patience_is_kept_undelivered(clock: FakeClock) -> None:
    handler, surface = await started(EDIT, clock)
    handler.emit("cut short by a restart")
    surface.failures["send"] = [RateLimited(300)]
    handler.patience = 5
    assert await handler.stop() is False
    assert handler.undelivered == ["cut short by a restart"]


async def test_with_buttons_the_final_edit_goes_even_when_the_text_is_shown(clock: FakeClock) -> None:
    handler, surface = await started(replace(EDIT, buttons=True), clock)
    handler.emit("All shown already.")
    await settle()
    await handler.stop()
    assert [(c.op, c.final) for c in surface.calls] == [("send", False), ("edit", True)]  # removes the Stop button


async def test_only_the_answers_last_message_asks_for_feedback(clock: FakeClock) -> None:
    rated = replace(NATIVE, feedback=True, max_chars=100)
    handler, surface = await started(rated, clock)
    handler.feedback = True
    handler.emit("Before the tool.")
    await settle()
    await handler.take()
    handler.emit(" ".join(f"word{i}" for i in range(40)))  # the answer after it: over 100 chars, two messages
    assert await handler.stop()
    ops = [c.op for c in surface.calls]
    assert ops.count("ask_feedback") == 1 and ops[-2:] == ["ask_feedback", "send"]  # asked right before the last
    for profile, asked in ((rated, False), (NATIVE, True)):  # a help text is not rated; nor where none can be
        handler, surface = await started(profile, clock)
        handler.feedback = asked
        handler.emit("Help text.")
        assert await handler.stop()
        assert "ask_feedback" not in [c.op for c in surface.calls]
