"""Slack's agent messaging experience end to end (issue 13): the real Bolt app against the Slack double.

Under `agent_view` (every new app) opening the Messages tab shows suggested prompts, each message there is a thread
the bot answers in with the native stream, the thread is titled after its question, and the answer ends with
feedback buttons whose press is thanked and recorded. Apps still on `assistant_view` keep being answered."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.slack_app import THANKS
from channels.slack.agent_view import DEFAULT_PROMPTS, FEEDBACK_ACTION, GREETING
from tests.doubles.openai_server import Text, ToolCalls
from tests.doubles.slack_events import app_context_changed, app_home_opened, assistant_thread_started
from tests.scenarios.slack_scene import DM, SlackScene, clean_environment, running_scene


def block_types(message: object) -> list[str]:
    return [block["type"] for block in message.blocks]  # type: ignore[attr-defined]


async def test_opening_the_messages_tab_shows_the_suggested_prompts_once_per_person(scene: SlackScene) -> None:
    for event in (
        app_home_opened(user="U0ALICE", channel=DM),
        app_home_opened(user="U0ALICE", channel=DM),  # Slack sends it every time the tab is opened
        app_home_opened(user="U0ALICE", channel=DM, tab="home"),
        app_home_opened(user="U0BOB", channel="D0BOB"),
        app_context_changed(user="U0ALICE", channel=DM),  # acknowledged, nothing shown
    ):
        reply = await scene.post(event)
        assert reply.status == 200
    await scene.replied()

    assert [(p.channel_id, p.thread_ts, p.title) for p in scene.slack.suggested_prompts] == [
        (DM, None, GREETING),  # an agent app's prompts name no thread (Slack ignores them if they do)
        ("D0BOB", None, GREETING),
    ]
    assert [title for title, _ in scene.slack.suggested_prompts[0].prompts] == list(DEFAULT_PROMPTS)
    assert scene.llm.requests == []


async def test_the_prompts_come_from_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)
    async with running_scene(tmp_path, slack_suggested_prompts="What is 2+2?|Read https://example.com") as scene:
        await scene.post(app_home_opened())
        await scene.replied()
        [shown] = scene.slack.suggested_prompts
        assert shown.prompts == (
            ("What is 2+2?", "What is 2+2?"),
            ("Read https://example.com", "Read https://example.com"),
        )


async def test_a_dm_is_streamed_in_its_thread_titled_and_ends_with_feedback_buttons(scene: SlackScene) -> None:
    scene.llm.script(
        ToolCalls([("calculator", {"expression": "17.5/100*2340"})], text_before="Let me compute that."),
        Text("17.5% of 2,340 is **409.5**.", chunk_size=5, delay=0.02),
    )
    question = scene.dm("What is 17.5% of 2,340? I need it for an invoice.")
    await scene.post(question)
    await scene.replied()

    before, after = scene.slack.messages(DM)
    assert (before.thread_ts, after.thread_ts) == (question["ts"], question["ts"])  # in the message's own thread
    assert (before.text, after.text) == ("Let me compute that.", "17.5% of 2,340 is **409.5**.")
    assert before.stream == after.stream == "stopped"
    assert [card["status"] for card in after.tasks.values()] == ["complete"]  # the tool as a task card
    assert block_types(before) == [] and block_types(after) == ["context_actions"]  # feedback on the last only
    assert [c.params["thread_ts"] for c in scene.slack.calls_to("chat.startStream")] == [question["ts"]] * 2
    assert scene.slack.titles == {(DM, question["ts"]): "What is 17.5% of 2,340? I need it for an invoice."}
    assert scene.slack.statuses[0].thread_ts == question["ts"]  # "is thinking…" in that thread
    assert scene.streaming() == []


async def test_only_the_first_question_of_a_thread_titles_it_and_help_is_not_rated(scene: SlackScene) -> None:
    scene.llm.script(Text("First."), Text("Second."))
    first = scene.dm("How long is a piece of string, roughly, in the general case, and why?")
    await scene.post(first)
    await scene.replied()
    await scene.post(scene.dm("and in metres?", thread_ts=first["ts"]))
    asked_for_help = scene.dm("help")
    await scene.post(asked_for_help)
    await scene.replied()

    assert scene.slack.titles == {(DM, first["ts"]): "How long is a piece of string, roughly, in the general case…"}
    [help_text] = scene.slack.messages(DM, asked_for_help["ts"])
    assert "`reset`" in help_text.text and "context_actions" not in block_types(help_text)


async def test_a_feedback_press_is_thanked_and_recorded(scene: SlackScene, caplog: pytest.LogCaptureFixture) -> None:
    scene.llm.script(Text("It is 42."))
    question = scene.dm("what is 6*7?")
    await scene.post(question)
    await scene.replied()
    [answer] = scene.slack.messages(DM)

    with caplog.at_level(logging.INFO, logger="bot.feedback"):
        reply = await scene.press(answer, FEEDBACK_ACTION, value="positive", user="U0ALICE")
        await scene.replied()

    assert reply.status == 200
    [thanks] = scene.slack.ephemerals
    assert (thanks.channel, thanks.user, thanks.thread_ts, thanks.text) == (DM, "U0ALICE", question["ts"], THANKS)
    conversation = f"slack:{DM}:{question['ts']}"
    [rating] = scene.bot.feedback.recent
    assert (rating.conversation, rating.message, rating.rating) == (conversation, answer.ts, "positive")
    assert scene.bot.feedback.counts == {"positive": 1}
    assert f"feedback: positive for message {answer.ts} in {conversation}" in caplog.text
    assert len(scene.llm.requests) == 1  # a rating is not a question


async def test_an_assistant_view_app_is_still_answered_in_its_assistant_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch)
    async with running_scene(tmp_path, view="assistant") as scene:
        scene.llm.script(Text("Answered in the assistant thread."))
        started = assistant_thread_started(user="U0ALICE", channel=DM)
        thread = started["assistant_thread"]["thread_ts"]
        await scene.post(started)
        await scene.post(scene.dm("hello", thread_ts=thread))  # every message there is in the assistant thread
        await scene.replied()

        [prompts] = scene.slack.suggested_prompts
        assert prompts.thread_ts == thread  # the legacy prompts name their thread
        [message] = scene.slack.messages(DM)
        assert (message.text, message.thread_ts) == ("Answered in the assistant thread.", thread)
        assert message.stream == "stopped"
        assert block_types(message) == ["context_actions"]
        assert scene.slack.titles == {}  # the thread existed before the question
