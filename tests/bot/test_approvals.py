"""How a request to approve a tool call shows the model's arguments: readable, cut, and unable to break out."""

from __future__ import annotations

from bot.approvals import MAX_ARGS_CHARS, MAX_VALUE_CHARS, approved, describe_calls
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
