"""Cutting an over-long Markdown answer: best boundary, fences kept valid, nothing lost or repeated."""

from __future__ import annotations

import pytest

from channels.splitting import open_fence, split_to_fit


def test_prefers_a_paragraph_break() -> None:
    text = "The first paragraph is this one.\n\nSecond paragraph. It has two sentences and goes on"
    head, tail = split_to_fit(text, len, 60, window=1000)
    assert (head, tail) == ("The first paragraph is this one.", "Second paragraph. It has two sentences and goes on")


def test_falls_back_to_line_then_sentence_then_word() -> None:
    lines = "alpha beta gamma delta\nepsilon zeta eta theta iota"
    assert split_to_fit(lines, len, 40, window=1000)[0] == "alpha beta gamma delta"
    sentences = "One two three four. Five six seven eight nine ten"
    assert split_to_fit(sentences, len, 30, window=1000)[0] == "One two three four."
    plain = "one two three four five six seven"
    head, tail = split_to_fit(plain, len, 16, window=1000)
    assert (head, tail) == ("one two three", "four five six seven")


def test_a_boundary_too_early_is_not_worth_an_almost_empty_message() -> None:
    text = "Hi.\n\n" + "word " * 40
    head, _ = split_to_fit(text, len, 100, window=1000)
    assert len(head) > 50  # the paragraph break at 3 would leave the message nearly empty


def test_hard_cut_when_there_is_no_boundary() -> None:
    head, tail = split_to_fit("x" * 25, len, 10, window=1000)
    assert (head, tail) == ("x" * 10, "x" * 15)


def test_code_fence_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"line_{i} = {i}" for i in range(10))
    text = f"Intro.\n\n```python\n{code}\n```\nOutro."
    head, tail = split_to_fit(text, len, 70, window=1000)
    assert head.endswith("\n```") and head.count("```") == 2
    assert tail.startswith("```python\nline_")
    assert len(head) <= 70
    body = [line for part in (head, tail) for line in part.splitlines() if line.startswith("line_")]
    assert body == code.splitlines()  # every code line once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("```py\nx = 1\n", "```py"),
        ("```py\nx = 1\n```\n", None),
        ("~~~\ncode\n", "~~~"),
        ("````\n```\nstill open\n", "````"),  # a shorter run does not close a longer fence
        ("```a\n~~~\n", "```a"),  # the other character does not close it
        ("text ```inline``` text\n", None),
    ],
)
def test_open_fence(text: str, expected: str | None) -> None:
    assert open_fence(text) == expected


def test_window_bounds_the_work_on_a_huge_text() -> None:
    calls = []

    def counting(text: str) -> int:
        calls.append(len(text))
        return len(text)

    split_to_fit("word " * 200_000, counting, 100, window=400)
    assert max(calls) <= 400 + 4
    assert len(calls) < 20


def test_limit_below_one_character_is_an_error() -> None:
    with pytest.raises(ValueError):
        split_to_fit("abc", len, 0, window=10)


def test_a_table_cut_between_rows_opens_the_next_message_with_its_header() -> None:
    rows = "".join(f"| r{i} | {i} |\n" for i in range(12))
    text = f"Totals:\n\n| name | n |\n|---|--:|\n{rows}"
    head, tail = split_to_fit(text, len, 90, window=1000)
    assert head.endswith("|") and len(head) <= 90
    assert tail.startswith("| name | n |\n|---|--:|\n| r")
    body = [line for part in (head, tail) for line in part.splitlines() if line.startswith("| r")]
    assert body == rows.splitlines()  # every row once


def test_a_table_header_is_not_repeated_after_the_table_ended() -> None:
    table = "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |"
    text = f"{table}\n\nAfter the table | comes a paragraph that is long enough to be cut."
    head, tail = split_to_fit(text, len, 60, window=1000)
    assert (head, tail) == (table, "After the table | comes a paragraph that is long enough to be cut.")


@pytest.mark.parametrize("cluster", ["👨‍👩‍👧‍👦", "🇺🇦", "👍🏽", "1️⃣", "e\u0301", "שָׁ", "न्द"])
def test_a_hard_cut_never_splits_a_character_made_of_several_code_points(cluster: str) -> None:
    for limit in range(12, 12 + len(cluster)):
        text = "x" * 10 + cluster * 4
        head, tail = split_to_fit(text, len, limit, window=1000)
        assert head + tail == text
        assert (head[10:] + tail).count(cluster) == 4, limit


def test_text_without_spaces_is_cut_after_a_cjk_full_stop_or_a_zero_width_space() -> None:
    assert split_to_fit("第一句话很长。第二句话很长", len, 10, window=1000) == ("第一句话很长。", "第二句话很长")
    assert split_to_fit("คำ\u200bที่\u200bยาวมากมาก", len, 9, window=1000) == ("คำ\u200bที่\u200b", "ยาวมากมาก")
