"""The Slack bot end to end (issue 4): the real Bolt app in HTTP mode, signed events over real HTTP, the strict
Slack Web API double and the OpenAI-compatible streaming double. Assertions are about what a user sees: the
messages in the thread or DM, their task cards, and that nothing is left streaming."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import STOPPED_MARK
from channels.slack.inbound import NOT_ALLOWED
from channels.slack.surface import STOP_ACTION
from tests.doubles.openai_server import Break, Hang, Text, ToolCalls
from tests.doubles.slack_api import RateLimit, SlackMessage
from tests.doubles.slack_events import bot_message, channel_message, message_changed
from tests.scenarios.conftest import script_tool_turns
from tests.scenarios.slack_scene import CHANNEL, DM, SlackScene, clean_environment, running_scene


async def test_channel_mention_is_answered_in_its_thread_with_native_streaming(scene: SlackScene) -> None:
    answer = "Hello! This answer **streams** into the thread while it is written."
    scene.llm.script(Text(answer, chunk_size=8, delay=0.05))
    mention = scene.mention("say hello")
    reply = await scene.post(mention)
    await scene.replied()

    assert reply.status == 200
    [message] = scene.thread(mention)
    assert (message.text, message.stream, message.thread_ts) == (answer, "stopped", mention["ts"])
    assert (message.recipient_user_id, message.recipient_team_id) == ("U0ALICE", "T0LIVEBOT")
    assert scene.llm.requests[0]["messages"][-1] == {"role": "user", "content": "say hello"}  # mention stripped
    methods = [call.method for call in scene.slack.calls if call.method.startswith("chat.")]
    assert methods[0] == "chat.startStream" and methods[-1] == "chat.stopStream"
    assert "chat.postMessage" not in methods and "chat.update" not in methods
    # "is thinking…" while waiting for the first words, on the thread; the answer cleared it
    assert scene.slack.statuses[0].status == "is thinking…"
    assert scene.slack.statuses[0].thread_ts == mention["ts"]
    assert scene.slack.workspace.thread_status[(CHANNEL, mention["ts"])] == ""
    assert scene.streaming() == []


async def test_mention_inside_a_thread_answers_there_and_memory_is_per_thread(scene: SlackScene) -> None:
    scene.llm.script(Text("Noted: 7."), Text("You said 7."), Text("I don't know."))
    first = scene.mention("remember 7")
    await scene.post(first)
    await scene.replied()
    follow_up = scene.mention("what number?", thread_ts=first["ts"])
    await scene.post(follow_up)
    await scene.replied()
    elsewhere = scene.mention("what number?")
    await scene.post(elsewhere)
    await scene.replied()

    assert [m.text for m in scene.thread(first)] == ["Noted: 7.", "You said 7."]
    assert [m.text for m in scene.thread(elsewhere)] == ["I don't know."]
    second, third = (request["messages"] for request in scene.llm.requests[1:])
    assert [m["content"] for m in second[1:]] == ["remember 7", "Noted: 7.", "what number?"]
    assert [m["content"] for m in third[1:]] == ["what number?"]


async def test_tool_call_is_a_task_card_between_the_text_before_and_after(scene: SlackScene) -> None:
    scene.llm.script(
        ToolCalls([("calculator", {"expression": "6*7"})], text_before="Let me compute that."),
        Text("6 × 7 is **42**."),
    )
    mention = scene.mention("what is 6*7?")
    await scene.post(mention)
    await scene.replied()

    before, after = scene.thread(mention)
    assert (before.text, before.stream, before.tasks) == ("Let me compute that.", "stopped", {})
    assert (after.text, after.stream) == ("6 × 7 is **42**.", "stopped")
    [card] = after.tasks.values()
    assert (card["title"], card["status"]) == ("Using calculator", "complete")
    kinds = [(c["type"], c.get("status")) for c in after.chunks]
    assert kinds[:2] == [("task_update", "in_progress"), ("task_update", "complete")]  # the card came first
    assert scene.llm.requests[1]["messages"][-1]["content"] == "42"  # the real calculator ran
    assert scene.streaming() == []


@pytest.mark.parametrize("call_ids", ["per_reply", "none"])
async def test_every_tool_turn_in_a_thread_finishes_its_text_shows_a_card_and_answers_below_it(
    scene: SlackScene, call_ids: str
) -> None:
    """Servers that send `call_1` on every turn (or no id) once lost the second and later tool turns: the text
    before the tool and the answer arrived merged in one message, with no task card."""
    turns = script_tool_turns(scene.llm, call_ids)
    first = scene.mention(turns[0].question)
    for turn in turns:
        await scene.post(first if turn is turns[0] else scene.mention(turn.question, thread_ts=first["ts"]))
        await scene.replied()

    messages = scene.thread(first)
    assert [m.text for m in messages] == [text for turn in turns for text in (turn.before, turn.answer)]
    assert all(before.tasks == {} and before.stream == "stopped" for before in messages[::2])
    cards = [list(after.tasks.values()) for after in messages[1::2]]
    # The third turn's card can be held back by our own chat.startStream budget (5 per 6 s per channel), and a
    # card held back at the start of its stream is not shown later (a Slack surface matter, not one of ids).
    assert all(len(shown) == 1 for shown in cards[:2]) and all(len(shown) <= 1 for shown in cards)
    assert all((card["title"], card["status"]) == ("Using calculator", "complete") for shown in cards for card in shown)
    assert scene.streaming() == [] and scene.llm.pending == 0


async def test_every_tool_turn_in_a_dm_shows_the_status_line_and_a_new_message_for_the_answer(
    scene: SlackScene,
) -> None:
    scene.slack.refuse_streaming = "feature_not_enabled"  # posts and updates: the tool shows as the status line
    turns = script_tool_turns(scene.llm, "per_reply")
    first = scene.dm(turns[0].question)
    for turn in turns:  # one conversation: the DM message's thread
        await scene.post(first if turn is turns[0] else scene.dm(turn.question, thread_ts=first["ts"]))
        await scene.replied()

    assert [m.text for m in scene.slack.messages(DM)] == [text for turn in turns for text in (turn.before, turn.answer)]
    assert {m.thread_ts for m in scene.slack.messages(DM)} == {first["ts"]}
    using = [status for status in scene.slack.statuses if status.status == "is using calculator…"]
    # Each turn sets the status about three times; the third turn's can be held back by our own setStatus budget
    # (5 per 6 s per channel), which drops intermediate calls by design.
    assert len(using) >= 2


async def test_a_failing_tool_shows_an_error_card(scene: SlackScene) -> None:
    scene.llm.script(ToolCalls([("calculator", {"expression": "1/0"})]), Text("That cannot be computed."))
    mention = scene.mention("what is 1/0?")
    await scene.post(mention)
    await scene.replied()

    [message] = scene.thread(mention)  # no text before the tool: the cards and the answer share one message
    assert message.text == "That cannot be computed."
    assert [card["status"] for card in message.tasks.values()] == ["error"]
    assert scene.streaming() == []


async def test_each_dm_message_opens_a_thread_that_is_its_conversation(scene: SlackScene) -> None:
    scene.llm.script(Text("Hi Alice, here in our thread.", chunk_size=5, delay=0.05), Text("You are Alice."), Text("?"))
    first = scene.dm("hi, I am Alice")
    await scene.post(first)
    await scene.replied()
    await scene.post(scene.dm("who am I?", thread_ts=first["ts"]))  # a follow-up in the thread
    await scene.replied()
    await scene.post(scene.dm("who am I?"))  # a new message in the Messages tab: a new thread
    await scene.replied()

    shown = [(m.text, m.thread_ts, m.stream) for m in scene.slack.messages(DM)]
    assert shown[:2] == [
        ("Hi Alice, here in our thread.", first["ts"], "stopped"),
        ("You are Alice.", first["ts"], "stopped"),
    ]
    assert shown[2][1] not in (None, first["ts"])
    assert len(scene.llm.requests[1]["messages"]) == 4  # the thread remembers its first exchange
    assert len(scene.llm.requests[2]["messages"]) == 2  # the new thread starts fresh
    assert all(value == "" for value in scene.slack.workspace.thread_status.values())


async def test_long_answer_continues_in_new_messages_of_at_most_12000_characters(scene: SlackScene) -> None:
    paragraphs = [f"Paragraph {i}: " + " ".join(["lorem ipsum dolor sit amet"] * 20) + "." for i in range(50)]
    answer = "\n\n".join(paragraphs)  # about 28,000 characters
    scene.llm.script(Text(answer, chunk_size=400))
    mention = scene.mention("write a lot")
    await scene.post(mention)
    await scene.replied()

    messages = scene.thread(mention)
    assert len(messages) == 3
    assert all(len(m.text) <= 12_000 for m in messages)
    assert "\n\n".join(m.text for m in messages) == answer  # nothing repeated, nothing dropped
    assert scene.streaming() == []
    sent = [c.params.get("markdown_text") or "" for c in scene.slack.calls]
    assert max(len(text) for text in sent) <= 12_000
    assert all(call.ok for call in scene.slack.calls)


async def test_refused_native_streaming_falls_back_to_post_and_update(scene: SlackScene) -> None:
    scene.slack.refuse_streaming = "feature_not_enabled"
    answer = " ".join(f"word{i}" for i in range(60))
    scene.llm.script(Text(answer, chunk_size=12, delay=0.04), Text("Second answer."))
    mention = scene.mention("hi")
    await scene.post(mention)
    await scene.replied()

    [message] = scene.thread(mention)
    assert (message.text, message.stream) == (answer, None)
    assert message.update_count >= 1
    intermediate = [c.time for c in scene.slack.calls_to("chat.update")][:-1]  # (the final one goes at once)
    assert all(later - earlier >= 0.9 for earlier, later in itertools.pairwise(intermediate))  # ≤ 1 update/s
    assert len(scene.slack.calls_to("chat.startStream")) == 1

    again = scene.mention("again")  # the channel is remembered: no second refused stream
    await scene.post(again)
    await scene.replied()
    assert [m.text for m in scene.thread(again)] == ["Second answer."]
    assert len(scene.slack.calls_to("chat.startStream")) == 1


async def test_where_updates_fail_too_the_answer_is_one_final_message(scene: SlackScene) -> None:
    scene.slack.refuse_streaming = "not_allowed"
    scene.slack.fail_next("chat.update", "cant_update_message", times=1000)
    answer = " ".join(f"word{i}" for i in range(40))
    scene.llm.script(Text(answer, chunk_size=12, delay=0.04))
    mention = scene.mention("hi")
    await scene.post(mention)
    await scene.replied()

    first, final = scene.thread(mention)  # the first words as posted, then the whole answer once
    assert answer.startswith(first.text) and final.text == answer
    assert scene.streaming() == []


async def test_broken_model_stream_keeps_the_text_so_far_with_a_notice(scene: SlackScene) -> None:
    scene.llm.script(Break("The first answer was going well until", after_chars=24), Text("Second answer."))
    mention = scene.mention("one")
    await scene.post(mention)
    await scene.replied()

    [message] = scene.thread(mention)
    assert message.text.startswith("The first answer was goi")
    assert "⚠️" in message.text
    assert message.stream == "stopped"
    assert scene.streaming() == []

    second = scene.mention("two")
    await scene.post(second)
    await scene.replied()
    assert [m.text for m in scene.thread(second)] == ["Second answer."]


async def test_retried_event_is_not_answered_twice(scene: SlackScene) -> None:
    scene.llm.script(Text("Only once."))
    mention = scene.mention("hello")
    first = await scene.post(mention, event_id="Ev0000RETRY")
    retry = await scene.post(mention, event_id="Ev0000RETRY", retry_num=1, retry_reason="http_timeout")
    await scene.replied()

    assert (first.status, retry.status) == (200, 200)
    assert [m.text for m in scene.thread(mention)] == ["Only once."]
    assert len(scene.llm.requests) == 1


async def test_forged_or_stale_requests_are_refused_and_run_nothing(scene: SlackScene) -> None:
    forged = await scene.post(scene.mention("hi"), forge=True)
    stale = await scene.post(scene.mention("hi"), timestamp=int(time.time()) - 600)
    await scene.replied()

    assert (forged.status, stale.status) == (401, 401)
    assert scene.llm.requests == []
    assert [c.method for c in scene.slack.calls] == ["auth.test"]  # start-up only


async def test_bots_edits_and_unaddressed_messages_are_ignored(scene: SlackScene) -> None:
    who = scene.slack.identity
    events = [
        bot_message("my own reply", bot_id=who.bot_id, user=who.bot_user_id),
        bot_message("another bot", bot_id="B0OTHER", legacy_subtype=True),
        message_changed("edited", ts="1700000000.000001"),
        channel_message("talking among humans"),
    ]
    for event in events:
        assert (await scene.post(event)).status == 200
    await scene.replied()

    assert scene.llm.requests == []
    assert not any(c.method.startswith("chat.") for c in scene.slack.calls)


async def test_rate_limits_are_honoured_per_method_and_workspace(scene: SlackScene) -> None:
    scene.slack.fail_next("chat.startStream", retry_after=1)  # a 429 is not a refusal: the stream starts later
    scene.slack.fail_next("chat.stopStream", retry_after=1)
    answer = " ".join(f"word{i}" for i in range(60))
    scene.llm.script(Text(answer, chunk_size=10, delay=0.05))  # still streaming when the first Retry-After ends
    mention = scene.mention("hi")
    await scene.post(mention)
    await scene.replied()

    assert [(m.text, m.stream) for m in scene.thread(mention)] == [(answer, "stopped")]
    assert [c.method for c in scene.slack.rate_limited] == ["chat.startStream", "chat.stopStream"]
    assert scene.slack.calls_inside_retry_after == []
    assert scene.streaming() == []


async def test_429_on_post_message_in_a_dm_waits_and_the_final_text_lands(scene: SlackScene) -> None:
    scene.slack.refuse_streaming = "feature_not_enabled"  # answers are posted and updated
    scene.slack.rate_limits["chat.postMessage"] = RateLimit(per_minute=30, burst=1, scope="channel")
    scene.llm.script(Text("First."), Text("Second, right after."))
    await scene.post(scene.dm("one"))
    await scene.post(scene.dm("two"))
    await scene.replied()

    assert [m.text for m in scene.slack.messages(DM)] == ["First.", "Second, right after."]
    assert scene.slack.calls_inside_retry_after == []


async def test_tool_in_a_dm_shows_as_the_status_line_where_streaming_is_refused(scene: SlackScene) -> None:
    scene.slack.refuse_streaming = "feature_not_enabled"  # no stream to hold task cards
    scene.llm.script(
        ToolCalls([("calculator", {"expression": "6*7"})], text_before="Computing."),
        Text("It is **42**."),
    )
    await scene.post(scene.dm("what is 6*7?"))
    await scene.replied()

    assert [m.text for m in scene.slack.messages(DM)] == ["Computing.", "It is **42**."]
    assert "is using calculator…" in [status.status for status in scene.slack.statuses]
    assert all(value == "" for value in scene.slack.workspace.thread_status.values())  # nothing left showing


async def test_plain_reset_word_forgets_the_thread(scene: SlackScene) -> None:
    scene.llm.script(Text("Noted."), Text("Fresh."))
    first = scene.mention("remember 7")
    await scene.post(first)
    await scene.replied()
    await scene.post(scene.mention("reset", thread_ts=first["ts"]))
    await scene.replied()
    await scene.post(scene.mention("what number?", thread_ts=first["ts"]))
    await scene.replied()

    texts = [m.text for m in scene.thread(first)]
    assert texts[0] == "Noted." and "forgot this conversation" in texts[1] and texts[2] == "Fresh."
    assert [m["role"] for m in scene.llm.requests[1]["messages"]] == ["system", "user"]


def stop_buttons(message: SlackMessage) -> list[dict[str, Any]]:
    return [
        element
        for block in message.blocks
        for element in block.get("elements") or []
        if element.get("action_id") == STOP_ACTION
    ]


async def test_stop_button_on_a_posted_and_updated_dm_answer_stops_the_reply(scene: SlackScene) -> None:
    scene.slack.refuse_streaming = "feature_not_enabled"  # the post + update fallback carries the Stop button
    scene.llm.script(Hang("Streaming until someone presses the button"), Text("Ready again."))
    await scene.post(scene.dm("go"))
    await scene.slack.wait_for(lambda: bool(scene.slack.messages(DM)))
    [message] = scene.slack.messages(DM)
    assert stop_buttons(message)  # the Stop button while it streams

    reply = await scene.press(message, STOP_ACTION)
    await asyncio.wait_for(scene.llm.disconnected.wait(), 2)  # the model's HTTP stream is closed within 2 s
    await scene.replied()

    assert reply.status == 200
    [message] = scene.slack.messages(DM)
    kept = message.text.removesuffix(f"\n\n{STOPPED_MARK}")  # what had reached the bot, then the mark
    assert kept != message.text and kept and "Streaming until someone presses the button".startswith(kept)
    assert stop_buttons(message) == []  # the final message has no button
    await scene.post(scene.dm("and now?"))
    await scene.replied()
    assert scene.slack.messages(DM)[-1].text == "Ready again."


async def test_a_stop_button_left_by_a_killed_bot_goes_when_pressed(scene: SlackScene) -> None:
    # A message an earlier run was still writing when it was killed: its Stop button outlived the reply.
    stop = {"type": "button", "action_id": STOP_ACTION, "text": {"type": "plain_text", "text": "⏹ Stop"}}
    blocks = [
        {"type": "markdown", "text": "Streaming when the power"},
        {"type": "actions", "block_id": "livebot_stop", "elements": [stop]},
    ]
    posted = scene.slack.workspace.call("chat.postMessage", {"channel": DM, "blocks": blocks, "text": "Streaming"})
    message = scene.slack.message(DM, posted["ts"])
    assert stop_buttons(message)

    reply = await scene.press(message, STOP_ACTION)
    await scene.slack.wait_for(lambda: stop_buttons(scene.slack.message(DM, posted["ts"])) == [])

    assert reply.status == 200
    assert scene.slack.message(DM, posted["ts"]).text == "Streaming when the power"  # the text stays as it was
    assert scene.llm.requests == []


async def test_the_word_stop_in_the_thread_stops_a_streaming_reply(scene: SlackScene) -> None:
    scene.llm.script(Hang("I am thinking about this at great length"))
    mention = scene.mention("think")
    await scene.post(mention)
    await scene.slack.wait_for(lambda: bool(scene.thread(mention)))
    await scene.post(scene.mention("stop", thread_ts=mention["ts"]))
    await asyncio.wait_for(scene.llm.disconnected.wait(), 2)
    await scene.replied()

    [message] = scene.thread(mention)
    kept = message.text.removesuffix(f"\n\n{STOPPED_MARK}")
    assert kept != message.text and kept and "I am thinking about this at great length".startswith(kept)
    assert scene.streaming() == []
    assert len(scene.llm.requests) == 1  # "stop" is not a question for the model


async def test_tools_lists_the_tools_and_how_to_add_web_search(scene: SlackScene) -> None:
    mention = scene.mention("tools")
    await scene.post(mention)
    await scene.replied()
    [message] = scene.thread(mention)
    assert "`calculator`" in message.text and "`web_fetch`" in message.text and "SEARXNG_URL" in message.text
    assert scene.llm.requests == []


async def test_help_names_the_commands_as_slack_users_type_them(scene: SlackScene) -> None:
    mention = scene.mention("help")
    await scene.post(mention)
    await scene.replied()
    [message] = scene.thread(mention)
    assert "`reset`" in message.text and "`stop`" in message.text and "`tools`" in message.text
    assert "/reset" not in message.text  # a leading "/" would be one of Slack's own slash commands
    assert scene.llm.requests == []


async def test_users_outside_the_allowlist_get_one_polite_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch)
    async with running_scene(tmp_path, slack_allowed_users="U0BOB") as scene:
        await scene.post(scene.dm("hi"))  # from U0ALICE
        await scene.replied()
        [message] = scene.slack.messages(DM)
        assert message.text == NOT_ALLOWED
        assert scene.llm.requests == []


async def test_a_final_slack_will_not_take_in_time_is_delivered_from_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch)
    async with running_scene(tmp_path, final_patience=0.2) as scene:
        scene.slack.refuse_streaming = "feature_not_enabled"  # the answer is a posted message
        scene.slack.fail_next("chat.postMessage", retry_after=1)
        scene.llm.script(Text("Late but whole."))
        await scene.post(scene.dm("hi"))
        await scene.replied()  # the conversation moved on: the text went to the outbox
        assert scene.slack.messages(DM) == []  # (Retry-After has not passed yet)
        await scene.slack.wait_for(lambda: [m.text for m in scene.slack.messages(DM)] == ["Late but whole."])
        assert scene.slack.calls_inside_retry_after == []
