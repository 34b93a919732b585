"""SlackSurface against the Slack Web API double through the real AsyncWebClient: task cards living in the
stream the answer continues, streams never left open, fallbacks, and the status line."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from channels.capabilities import LiveMode, resolve
from channels.errors import PermanentError, RateLimited, StreamingRefused
from channels.slack.surface import METHOD_TIERS, SlackSurface, SlackTarget, new_limiter
from tests.doubles.slack_api import DEFAULT_RATE_LIMITS, TIER_2, TIER_3, TIER_4, ManualClock, SlackDouble
from tests.fakes import FakeClock

TOKEN = "xoxb-surface-test"
CHANNEL, DM, THREAD = "C0GENERAL", "D0ALICE", "1700000000.000100"
IN_THREAD = SlackTarget(CHANNEL, "thread", THREAD, user_id="U0ALICE", team_id="T0LIVEBOT")
IN_DM = SlackTarget(DM, "thread", "1700000000.000200", user_id="U0ALICE", team_id="T0LIVEBOT")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def slack(clock: ManualClock) -> AsyncIterator[SlackDouble]:
    async with SlackDouble(token=TOKEN, clock=clock, stream_ttl=10) as double:
        yield double


def surface(
    slack: SlackDouble, target: SlackTarget = IN_THREAD, mode: LiveMode | None = None, **kwargs: object
) -> SlackSurface:
    client = AsyncWebClient(token=TOKEN, base_url=slack.base_url)
    limiter = kwargs.pop("limiter", None) or new_limiter()
    profile = resolve("slack", target.kind, mode=mode)
    return SlackSurface(client, limiter, target, profile, **kwargs)  # type: ignore[arg-type]


def methods(slack: SlackDouble) -> list[str]:
    return [call.method for call in slack.calls]


async def test_task_cards_open_the_stream_that_the_answer_then_continues(slack: SlackDouble) -> None:
    reply = surface(slack)
    await reply.task("call_1", "Using calculator", "in_progress")
    await reply.task("call_1", "Using calculator", "complete")
    ts = await reply.stream_start("6 × 7 is ")
    await reply.stream_append(ts, "**42**.")
    await reply.stream_stop(ts, "")
    await reply.close()

    [message] = slack.messages(CHANNEL)
    assert (message.ts, message.text, message.stream) == (ts, "6 × 7 is **42**.", "stopped")
    assert message.tasks == {"call_1": {"id": "call_1", "title": "Using calculator", "status": "complete"}}
    assert methods(slack) == [
        "chat.startStream",
        "chat.appendStream",
        "chat.appendStream",
        "chat.appendStream",
        "chat.stopStream",
    ]
    first = slack.calls[0].params
    assert (first["recipient_user_id"], first["recipient_team_id"], first["thread_ts"]) == (
        "U0ALICE",
        "T0LIVEBOT",
        THREAD,
    )


async def test_an_answer_that_arrives_whole_after_a_tool_finishes_the_cards_stream(slack: SlackDouble) -> None:
    reply = surface(slack)
    await reply.task("call_1", "Using clock", "in_progress")
    await reply.task("call_1", "Using clock", "error")
    ts = await reply.send("The clock failed.", final=True)
    await reply.close()

    [message] = slack.messages(CHANNEL)
    assert (message.ts, message.text, message.stream) == (ts, "The clock failed.", "stopped")
    assert [card["status"] for card in message.tasks.values()] == ["error"]
    assert "chat.postMessage" not in methods(slack)


async def test_close_stops_every_stream_left_open(slack: SlackDouble) -> None:
    reply = surface(slack)
    await reply.stream_start("an answer whose stop never came")
    await reply.task("call_9", "Using web_fetch", "in_progress")  # (a second stream, as after a failed stop)
    await reply.close()
    assert [m.stream for m in slack.messages(CHANNEL)] == ["stopped", "stopped"]


async def test_a_cards_stream_that_expired_during_the_tool_is_replaced(slack: SlackDouble, clock: ManualClock) -> None:
    reply = surface(slack)
    await reply.task("call_1", "Using web_fetch", "in_progress")
    clock.advance(11)  # a slow tool: Slack expired the stream
    await reply.task("call_1", "Using web_fetch", "complete")
    ts = await reply.stream_start("The page says hi.")
    await reply.stream_stop(ts, "")

    expired, fresh = slack.messages(CHANNEL)
    assert expired.stream == "expired" and fresh.ts == ts
    assert (fresh.text, fresh.stream) == ("The page says hi.", "stopped")
    assert [card["status"] for card in fresh.tasks.values()] == ["complete"]


async def test_an_expired_stream_is_finished_with_chat_update(slack: SlackDouble, clock: ManualClock) -> None:
    reply = surface(slack)
    ts = await reply.stream_start("Hel")
    clock.advance(11)
    with pytest.raises(StreamingRefused):
        await reply.stream_append(ts, "lo")
    await reply.edit(ts, "Hello", final=True)  # what the handler does after the fallback
    await reply.close()
    message = slack.message(CHANNEL, ts)
    assert (message.text, message.streaming) == ("Hello", False)
    assert methods(slack)[-1] == "chat.update"


async def test_refused_streaming_is_remembered_and_tasks_become_a_status_line(slack: SlackDouble) -> None:
    slack.refuse_streaming = "not_allowed"
    refused: list[str] = []
    reply = surface(slack, on_live_refused=lambda: refused.append(CHANNEL))
    with pytest.raises(StreamingRefused):
        await reply.stream_start("hi")
    calls = len(slack.calls)
    with pytest.raises(StreamingRefused):
        await reply.stream_start("hi")  # known now: no second refused call
    assert len(slack.calls) == calls and refused == [CHANNEL]
    await reply.task("call_1", "Using calculator", "in_progress")
    assert slack.statuses[-1].status == "is using calculator…"
    await reply.send("42", final=True)
    await reply.close()
    assert slack.workspace.thread_status[(CHANNEL, THREAD)] == ""  # the reply in the thread cleared it


async def test_updates_in_a_dm_thread_carry_the_stop_button_until_the_final_one(slack: SlackDouble) -> None:
    reply = surface(slack, IN_DM, LiveMode.EDIT)
    ref = await reply.send("Hi", final=False)
    assert slack.messages(DM)[0].thread_ts == IN_DM.thread_ts
    assert [block["type"] for block in slack.messages(DM)[0].blocks] == ["markdown", "actions"]
    await reply.edit(ref, "Hi", final=True)  # the same text, but the Stop button goes
    assert [block["type"] for block in slack.messages(DM)[0].blocks] == ["markdown"]
    calls = len(slack.calls)
    await reply.edit(ref, "Hi", final=True)  # nothing would change: no call
    assert len(slack.calls) == calls


async def test_the_answers_last_message_carries_the_feedback_buttons_whichever_way_it_ends(
    slack: SlackDouble,
) -> None:
    streamed = surface(slack, IN_DM)
    ts = await streamed.stream_start("Streamed ")
    await streamed.stream_stop(ts, "and stopped.")  # a segment before a tool: no feedback yet
    second = await streamed.stream_start("The answer ")
    streamed.ask_feedback()
    await streamed.stream_stop(second, "after the tool.")
    await streamed.close()
    whole = surface(slack, IN_DM)
    whole.ask_feedback()
    await whole.send("Short.", final=True)  # an answer that arrived whole before the first update
    edited = surface(slack, IN_DM, LiveMode.EDIT)
    ref = await edited.send("Being written", final=False)
    edited.ask_feedback()
    await edited.edit(ref, "Being written, done.", final=True)

    shown = [(m.text, [block["type"] for block in m.blocks]) for m in slack.messages(DM)]
    assert shown == [
        ("Streamed and stopped.", []),
        ("The answer after the tool.", ["context_actions"]),
        ("Short.", ["markdown", "context_actions"]),
        ("Being written, done.", ["markdown", "context_actions"]),  # the Stop button gave way to the feedback
    ]
    [stop] = [call for call in slack.calls_to("chat.stopStream") if call.params.get("blocks")]
    assert stop.params["blocks"][0]["elements"][0]["type"] == "feedback_buttons"


async def test_typing_is_not_refreshed_while_a_stream_of_the_reply_is_open(slack: SlackDouble) -> None:
    reply = surface(slack)
    await reply.task("call_1", "Using calculator", "in_progress")
    await reply.typing()
    assert slack.statuses == []


async def test_a_workspace_that_refuses_the_status_is_not_asked_again(slack: SlackDouble) -> None:
    slack.fail_next("assistant.threads.setStatus", "not_allowed")
    reply = surface(slack)
    with pytest.raises(PermanentError):
        await reply.typing()
    await reply.typing()
    assert len(slack.calls_to("assistant.threads.setStatus")) == 1


async def test_a_card_update_held_back_by_a_429_rides_on_the_next_call(slack: SlackDouble) -> None:
    fake = FakeClock()
    reply = surface(slack, limiter=new_limiter(clock=fake))
    await reply.task("call_1", "Using calculator", "in_progress")
    slack.fail_next("chat.appendStream", retry_after=1)
    with pytest.raises(RateLimited):
        await reply.task("call_1", "Using calculator", "complete")
    await fake.advance(6.5)  # the Retry-After, and the period of the appendStream budget the 429 lowered
    ts = await reply.stream_start("Done.")
    await reply.stream_stop(ts, "")

    [message] = slack.messages(CHANNEL)
    assert (message.text, [card["status"] for card in message.tasks.values()]) == ("Done.", ["complete"])
    carried = slack.calls_to("chat.appendStream")[-1].params["chunks"]
    assert [chunk["type"] for chunk in carried] == ["task_update", "markdown_text"]


async def test_an_answer_with_a_stop_button_shows_its_markdown_and_notifies_nobody(slack: SlackDouble) -> None:
    reply = surface(slack, IN_DM, LiveMode.EDIT)
    text = "Tell <!channel> that **AT&T** < 3 & `a<b`"
    ref = await reply.send(text, final=False)
    [message] = slack.messages(DM)
    assert message.text == text  # the markdown block shows the answer as written
    [post] = slack.calls_to("chat.postMessage")
    assert "<!channel>" not in post.params["text"] and "&lt;!channel&gt;" in post.params["text"]  # the fallback
    await reply.edit(ref, text, final=True)
    [update] = slack.calls_to("chat.update")
    assert "<" not in update.params["text"]


def test_every_tiered_method_is_paced_at_the_tier_slack_enforces() -> None:
    """A method the surface or the bot calls outside its tier's budget would meet 429s under load."""
    tiers = {TIER_2: 2, TIER_3: 3, TIER_4: 4}
    enforced = {method: tiers[limit] for method, limit in DEFAULT_RATE_LIMITS.items() if limit in tiers}
    # One upload (files_upload_v2) passes the limiter once, as files.completeUploadExternal, for both its calls.
    assert enforced.pop("files.getUploadURLExternal") == METHOD_TIERS["files.completeUploadExternal"]
    assert enforced == METHOD_TIERS
