"""Cutting an over-long Markdown answer: best boundary, fences kept valid, nothing lost or repeated."""

from __future__ import annotations

import pytest

from channels.splitting import open_fence, split_to_fit


def fits(limit: int):
    return lambda text: len(text) <= limit


def test_prefers_a_paragraph_break() -> None:
    text = "The first paragraph is this one.\n\nSecond paragraph. It has two sentences and goes on"
    head, tail = split_to_fit(text, fits(60), window=1000)
    assert (head, tail) == ("The first paragraph is this one.", "Second paragraph. It has two sentences and goes on")


def test_falls_back_to_line_then_sentence_then_word() -> None:
    lines = "alpha beta gamma delta\nepsilon zeta eta theta iota"
    assert split_to_fit(lines, fits(40), window=1000)[0] == "alpha beta gamma delta"
    sentences = "One two three four. Five six seven eight nine ten"
    assert split_to_fit(sentences, fits(30), window=1000)[0] == "One two three four."
    plain = "one two three four five six seven"
    head, tail = split_to_fit(plain, fits(16), window=1000)
    assert (head, tail) == ("one two three", "four five six seven")


def test_a_boundary_too_early_is_not_worth_an_almost_empty_message() -> None:
    text = "Hi.\n\n" + "word " * 40
    head, _ = split_to_fit(text, fits(100), window=1000)
    assert len(head) > 50  # the paragraph break at 3 would leave the message nearly empty


def test_hard_cut_when_there_is_no_boundary() -> None:
    head, tail = split_to_fit("x" * 25, fits(10), window=1000)
    assert (head, tail) == ("x" * 10, "x" * 15)


def test_code_fence_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"line_{i} = {i}" for i in range(10))
    text = f"Intro.\n\n```python\n{code}\n```\nOutro."
    head, tail = split_to_fit(text, fits(70), window=1000)
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

    def counting(text: str) -> bool:
        calls.append(len(text))
        return len(text) <= 100

    split_to_fit("word " * 200_000, counting, window=400)
    assert max(calls) <= 400 + 4
    assert len(calls) < 20


def test_limit_below_one_character_is_an_error() -> None:
    with pytest.raises(ValueError):
        split_to_fit("abc", fits(0), window=10)
