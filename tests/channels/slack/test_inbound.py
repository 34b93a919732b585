"""Which Slack events the bot answers, refuses or ignores, and under which conversation key."""

from __future__ import annotations

from channels.inbound import NOT_ALLOWED, ONLY_TEXT, Answer, Ignore, Refuse, StopPress
from channels.slack.inbound import (
    SeenEvents,
    SlackIdentity,
    clean_text,
    read_event,
    stop_request,
)
from channels.slack.surface import SlackTarget
from tests.doubles.slack_events import (
    app_mention,
    block_actions,
    bot_message,
    channel_message,
    dm_message,
    message_changed,
)

ME = SlackIdentity(user_id="U0LIVEBOT", bot_id="B0LIVEBOT")


def answer(event: dict, me: SlackIdentity = ME) -> Answer:
    verdict = read_event(event, me, team_id="T0ENVELOPE")
    assert isinstance(verdict, Answer), verdict
    return verdict


def test_channel_mention_is_answered_in_the_messages_thread() -> None:
    event = app_mention("what is 2+2?", bot_user_id="U0LIVEBOT", ts="1700000000.000100")
    verdict = answer(event)
    assert (verdict.incoming.conversation, verdict.incoming.text) == (
        "slack:C0GENERAL:1700000000.000100",
        "what is 2+2?",
    )
    target = verdict.target
    assert (target.channel, target.kind, target.thread_ts) == ("C0GENERAL", "thread", "1700000000.000100")
    assert (target.user_id, target.team_id, target.in_channel) == ("U0ALICE", "T0LIVEBOT", True)


def test_mention_inside_a_thread_answers_in_that_thread() -> None:
    event = app_mention("and now?", bot_user_id="U0LIVEBOT", ts="1700000001.000200", thread_ts="1700000000.000100")
    verdict = answer(event)
    assert verdict.incoming.conversation == "slack:C0GENERAL:1700000000.000100"
    assert verdict.target.thread_ts == "1700000000.000100"


def test_recipient_team_falls_back_to_the_envelopes_team() -> None:
    event = app_mention("hi", bot_user_id="U0LIVEBOT")
    del event["team"]
    assert answer(event).target.team_id == "T0ENVELOPE"


def test_a_dm_message_is_the_root_of_a_thread_the_answer_goes_in() -> None:
    # agent_view: each message in the Messages tab is a thread root; the thread is the conversation
    verdict = answer(dm_message("hello", ts="1700000000.000300"))
    assert verdict.incoming.conversation == "slack:D0ALICE:1700000000.000300"
    target = verdict.target
    assert (target.kind, target.thread_ts, target.in_channel) == ("thread", "1700000000.000300", False)


def test_dm_in_a_thread_is_answered_in_that_thread() -> None:
    # a follow-up in an agent_view thread, and every message of an assistant_view app (assistant threads)
    verdict = answer(dm_message("more", thread_ts="1700000000.000300"))
    assert verdict.incoming.conversation == "slack:D0ALICE:1700000000.000300"
    assert (verdict.target.kind, verdict.target.thread_ts) == ("thread", "1700000000.000300")


def test_bots_edits_subtypes_and_unaddressed_messages_are_ignored() -> None:
    ignored = [
        bot_message("echo of my own reply", bot_id="B0LIVEBOT", user="U0LIVEBOT"),
        bot_message("another bot", bot_id="B0OTHER"),
        bot_message("legacy integration", bot_id="B0OLD", legacy_subtype=True),
        message_changed("edited", ts="1700000000.000001"),
        {**dm_message("bye"), "subtype": "message_deleted"},
        {**dm_message("joined"), "subtype": "channel_join"},
        channel_message("humans talking"),
        {**dm_message("from me"), "user": "U0LIVEBOT"},
        app_mention("a mention in a DM", bot_user_id="U0LIVEBOT", channel="D0ALICE"),  # its message event answers
        {"type": "reaction_added", "user": "U0ALICE", "channel": "C0GENERAL", "ts": "1.1"},
    ]
    for event in ignored:
        assert isinstance(read_event(event, ME), Ignore), event


def test_mention_is_stripped_and_slack_markup_undone() -> None:
    assert clean_text("<@U0LIVEBOT> is 3 &lt; 4 &amp;&amp; 5 &gt; 4?", "U0LIVEBOT") == "is 3 < 4 && 5 > 4?"
    assert clean_text("<@U0LIVEBOT|livebot> hi <@U0BOB>", "U0LIVEBOT") == "hi <@U0BOB>"
    assert clean_text("read <https://example.com/a>", "U0LIVEBOT") == "read https://example.com/a"
    assert clean_text("read <https://example.com|the site>", "U0LIVEBOT") == "read the site (https://example.com)"


def test_plain_words_are_the_commands_and_an_empty_mention_asks_for_help() -> None:
    assert answer(app_mention("reset", bot_user_id="U0LIVEBOT")).incoming.text == "/reset"
    assert answer(dm_message("Help!")).incoming.text == "/help"
    assert answer(app_mention("/reset", bot_user_id="U0LIVEBOT")).incoming.text == "/reset"
    assert answer(app_mention("", bot_user_id="U0LIVEBOT")).incoming.text == "/help"
    assert answer(dm_message("reset the router please")).incoming.text == "reset the router please"
    assert answer(app_mention("stop", bot_user_id="U0LIVEBOT")).incoming.text == "/stop"  # stops the thread's reply
    assert answer(dm_message("tools")).incoming.text == "/tools"


def test_allowlist_refuses_others_in_their_conversation() -> None:
    me = SlackIdentity(user_id="U0LIVEBOT", allowed=frozenset({"U0ALICE"}))
    assert isinstance(read_event(dm_message("hi", user="U0ALICE"), me), Answer)
    verdict = read_event(dm_message("hi", user="U0MALLORY", channel="D0MALLORY", ts="1700000000.000300"), me)
    assert isinstance(verdict, Refuse)
    assert (verdict.text, verdict.target.conversation, verdict.target.thread_ts) == (
        NOT_ALLOWED,
        "slack:D0MALLORY:1700000000.000300",
        "1700000000.000300",
    )


def test_too_long_and_file_only_messages_are_refused_politely() -> None:
    me = SlackIdentity(user_id="U0LIVEBOT", max_input_chars=10)
    too_long = read_event(dm_message("x" * 11), me)
    assert isinstance(too_long, Refuse) and "11 characters" in too_long.text
    photo = {**dm_message(""), "subtype": "file_share", "files": [{"id": "F1"}]}
    only_file = read_event(photo, me)
    assert isinstance(only_file, Refuse) and only_file.text == ONLY_TEXT
    captioned = read_event({**photo, "text": "what's it?"}, me)
    assert isinstance(captioned, Answer) and captioned.incoming.text == "what's it?"


def test_seen_events_remember_a_bounded_number_of_ids() -> None:
    seen = SeenEvents(limit=2)
    assert [seen.first_time(i) for i in ("a", "a", "b", "c", "a")] == [True, False, True, True, True]


def stop_press(channel: str, *, thread_ts: str | None, user: str = "U0ALICE", action_id: str = "stop") -> dict:
    """A press on the bot's message as Slack describes it (the double's builder, from the message's JSON)."""
    message = {"ts": "1700000000.000200", "blocks": [{"type": "actions", "elements": [{"action_id": action_id}]}]}
    if thread_ts:
        message["thread_ts"] = thread_ts
    return block_actions(message, channel=channel, action_id=action_id, user=user)


def conversation(press: StopPress[SlackTarget] | None) -> str | None:
    return None if press is None else press.conversation


def test_a_stop_press_names_the_conversation_its_message_is_in() -> None:
    # where a reply's message sits is its conversation: its thread (as read_event keys them)
    thread = read_event(app_mention("hi", bot_user_id="U0LIVEBOT", ts="1700000000.000100"), ME)
    dm = read_event(dm_message("hi", ts="1700000000.000300"), ME)
    assert isinstance(thread, Answer) and isinstance(dm, Answer)
    pressed_in_thread = stop_press("C0GENERAL", thread_ts="1700000000.000100")
    assert conversation(stop_request(pressed_in_thread, ME)) == thread.incoming.conversation
    pressed_in_dm = stop_press("D0ALICE", thread_ts="1700000000.000300")
    assert conversation(stop_request(pressed_in_dm, ME)) == dm.incoming.conversation


def test_other_buttons_and_people_outside_the_allowlist_stop_nothing() -> None:
    assert stop_request(stop_press("D0ALICE", thread_ts=None, action_id="feedback"), ME) is None
    private = SlackIdentity(user_id="U0LIVEBOT", allowed=frozenset({"U0BOB"}))
    assert stop_request(stop_press("D0ALICE", thread_ts=None, user="U0ALICE"), private) is None
    assert conversation(stop_request(stop_press("D0ALICE", thread_ts=None, user="U0BOB"), private)) == "slack:D0ALICE"
