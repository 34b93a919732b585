"""Slack's agent messaging experience as values: who to greet, a thread's title, what a feedback press says."""

from __future__ import annotations

import pytest

from channels.slack.agent_view import (
    FEEDBACK_ACTION,
    TITLE_CHARS,
    FeedbackPress,
    Greet,
    feedback_block,
    feedback_press,
    greeting,
    prompts_payload,
    thread_title,
)
from tests.doubles.slack_events import app_context_changed, app_home_opened, assistant_thread_started, block_actions

ANSWER = {"type": "message", "ts": "1700000000.000300", "thread_ts": "1700000000.000100", "text": "42"}


def test_opening_the_messages_tab_greets_in_the_dm_and_an_assistant_thread_in_that_thread() -> None:
    assert greeting(app_home_opened(user="U0ALICE", channel="D0ALICE")) == Greet("U0ALICE", "D0ALICE")
    started = assistant_thread_started(user="U0ALICE", channel="D0ALICE", thread_ts="1700000000.000100")
    assert greeting(started) == Greet("U0ALICE", "D0ALICE", "1700000000.000100")
    assert greeting(app_home_opened(tab="home")) is None  # the Home tab is not a conversation
    assert greeting(app_context_changed()) is None
    assert greeting({"type": "app_home_opened", "tab": "messages"}) is None  # no user, no channel


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("What is 2+2?", "What is 2+2?"),
        ("  **Why** is the `sky` blue?\nAsking for a friend.", "Why is the sky blue?"),
        (
            "Please compare the population growth of Lisbon and Porto over the last thirty years in detail",
            "Please compare the population growth of Lisbon and Porto…",
        ),
        ("x" * 200, "x" * TITLE_CHARS + "…"),
        ("```\n\n", None),
    ],
)
def test_a_thread_title_is_the_questions_first_words(question: str, title: str | None) -> None:
    assert thread_title(question) == title
    assert title is None or len(title) <= TITLE_CHARS + 1


def test_prompts_are_their_own_titles_and_at_most_four() -> None:
    assert prompts_payload(["a", "b"]) == [{"title": "a", "message": "a"}, {"title": "b", "message": "b"}]
    assert len(prompts_payload([str(n) for n in range(6)])) == 4


def test_a_feedback_press_names_the_message_its_thread_and_the_rating() -> None:
    message = {**ANSWER, "blocks": [{"type": "markdown", "text": "42"}, feedback_block()]}
    press = block_actions(message, channel="D0ALICE", action_id=FEEDBACK_ACTION, value="negative")
    assert feedback_press(press) == FeedbackPress(
        "U0ALICE", "D0ALICE", "1700000000.000300", "1700000000.000100", "negative"
    )
    assert feedback_press(press, frozenset({"U0BOB"})) is None  # not someone the bot serves
    assert feedback_press({**press, "actions": [{**press["actions"][0], "value": "meh"}]}) is None
    assert feedback_press({**press, "type": "view_submission"}) is None
    stop = {**message, "blocks": [{"type": "actions", "elements": [{"type": "button", "action_id": "stop"}]}]}
    assert feedback_press(block_actions(stop, channel="D0ALICE", action_id="stop")) is None
