"""A target is stored in the outbox as its address and rebuilt from it after a restart: the two must round-trip,
and the address format (on disk) must stay what earlier versions wrote."""

from __future__ import annotations

from channels.slack.surface import SlackTarget
from channels.telegram.surface import TelegramTarget


def test_a_telegram_target_comes_back_from_its_address_in_the_same_conversation() -> None:
    topic = TelegramTarget(-1001, "topic", thread_id=7, reply_to=42)
    assert topic.address() == {"chat_id": -1001, "kind": "topic", "thread_id": 7}
    back = TelegramTarget.from_address(topic.address())
    assert (back.chat_id, back.kind, back.thread_id, back.conversation) == (-1001, "topic", 7, "telegram:-1001:7")
    assert back.reply_to is None  # a late final message answers nothing


def test_a_slack_target_comes_back_from_its_address_in_the_same_conversation() -> None:
    dm = SlackTarget("D0ALICE", "thread", "1700000000.000100", user_id="U0ALICE", team_id="T0")
    assert dm.address() == {"channel": "D0ALICE", "kind": "thread", "thread_ts": "1700000000.000100"}
    back = SlackTarget.from_address(dm.address())
    assert back.conversation == dm.conversation == "slack:D0ALICE:1700000000.000100"


def test_a_slack_outbox_entry_from_before_dm_threads_is_still_delivered_where_it_was_going() -> None:
    top_of_dm = {"channel": "D0ALICE", "kind": "dm", "thread_ts": None, "status_ts": "1700000000.000100"}
    target = SlackTarget.from_address(top_of_dm)  # "dm" is no longer a kind: the top level of the DM, as before
    assert (target.kind, target.thread_ts, target.conversation) == ("thread", None, "slack:D0ALICE")
    in_thread = {"channel": "C0GENERAL", "kind": "thread", "thread_ts": "1700000000.000200", "status_ts": "x"}
    assert SlackTarget.from_address(in_thread).thread_ts == "1700000000.000200"
