"""How a request to approve a tool call shows the model's arguments (readable, cut, and unable to break out), and
where approvals are kept."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

from bot.approvals import (
    MAX_ARGS_CHARS,
    MAX_VALUE_CHARS,
    Approvals,
    Ruling,
    approved,
    denied,
    describe_calls,
    open_approvals,
)
from bot.store import open_store
from channels.inbound import approval_data, read_approval_data


def test_arguments_are_json_in_a_code_block_nothing_can_close() -> None:
    hostile = "```\n**fake** [link](http://x)\u202eevil\u2028line\x1b[2J"
    text = describe_calls([("files: write_file", {"path": "/tmp/a", "content": hostile})])
    body = text.split("```json\n", 1)[1]
    assert body.count("```") == 1 and body.endswith("\n```")  # only the block's own closing fence
    assert "\\u0060\\u0060\\u0060" in body and "\\u202e" in body and "\\u2028" in body and "\\u001b" in body
    assert "**files: write_file**" in text


def test_long_values_and_long_calls_are_cut() -> None:
    text = describe_calls([("t", {"a": "x" * 10_000})])
    assert "x" * (MAX_VALUE_CHARS - 1) + "…" in text and "x" * MAX_VALUE_CHARS not in text
    many = describe_calls([("t", {f"k{n}": "y" * 200 for n in range(40)})])
    assert len(many) < MAX_ARGS_CHARS + 200


def test_a_tool_label_cannot_carry_markup() -> None:
    assert "**a_b_ c**" in describe_calls([("a*b` c", {})])


def test_who_decided_is_named_in_plain_words() -> None:
    assert approved("Eve](http://evil)").note == "✅ Approved by Eve__http___evil_."


def test_button_data_round_trips_within_telegrams_64_bytes() -> None:
    data = approval_data("x" * 16, True)
    assert len(data.encode()) <= 64 and read_approval_data(data) == ("x" * 16, True)
    assert read_approval_data(approval_data("abc", False)) == ("abc", False)
    assert read_approval_data("stop") is None and read_approval_data("approval:maybe:abc") is None


async def test_approvals_an_earlier_version_kept_in_approvals_sqlite_still_wait(tmp_path: Path) -> None:
    with contextlib.closing(sqlite3.connect(tmp_path / "approvals.sqlite")) as old:  # as versions before the store
        old.execute(
            "CREATE TABLE approvals (id TEXT PRIMARY KEY, channel TEXT NOT NULL, conversation TEXT NOT NULL,"
            " asker TEXT NOT NULL, text TEXT NOT NULL, deadline REAL NOT NULL, address TEXT NOT NULL,"
            " message TEXT NOT NULL, created REAL NOT NULL, decided TEXT, note TEXT)"
        )
        row = "(?, 'telegram', 'telegram:5', '5', 'Approve?', 4e9, '{\"chat_id\": 5}', '12', 1.0, ?, NULL)"
        old.execute(f"INSERT INTO approvals VALUES {row}", ("waiting", None))
        old.execute(f"INSERT INTO approvals VALUES {row}", ("done", "approved"))
        old.commit()
    for _ in range(2):  # imported once, then read from the store
        async with open_store(tmp_path) as store:
            approvals = await open_approvals(store, tmp_path, "telegram", 60)
            waiting = await approvals.get("waiting")
            assert waiting is not None and await approvals.get("done") is None
            assert (waiting.conversation, waiting.address, waiting.message) == ("telegram:5", {"chat_id": 5}, 12)
    assert (tmp_path / "approvals.sqlite.imported").exists()


async def test_what_waits_is_read_from_the_store_and_the_first_decision_written_counts(tmp_path: Path) -> None:
    now = [1000.0]
    async with open_store(tmp_path) as store:
        here = await open_approvals(store, tmp_path, "telegram", 60)
        approval = await here.open("telegram:5", "5", "Approve?", {"chat_id": 5})
        there = Approvals(store, "telegram", 60, clock=lambda: now[0])  # another replica: it asked for nothing
        assert await there.get(approval.id) == approval and await there.waiting_in("telegram:5") == approval
        assert await Approvals(store, "slack", 60).get(approval.id) is None  # each channel its own
        await here.shown(approval, 77)
        now[0] = approval.deadline - 1
        assert await there.due() == []
        now[0] = approval.deadline
        assert [a.id for a in await there.due()] == [approval.id]
        decided = await there.record(Ruling(approval.id, denied("Bob"), pressed=12))
        assert decided is not None and decided.message == 77  # where it is shown, as recorded (not the press's)
        assert await here.record(Ruling(approval.id, approved("Alice"))) is None  # too late: Bob's decision counts
        assert await here.get(approval.id) is None and await there.waiting_in("telegram:5") is None
        assert await there.due() == []


def test_a_ruling_crosses_replicas_as_data() -> None:
    ruling = Ruling("abc", denied("Bob"), pressed={"ts": "1.2"})
    assert Ruling.decode(json.loads(json.dumps(ruling.encode()))) == ruling
