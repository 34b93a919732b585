"""Characters made of several code points or UTF-16 units, right where an answer outgrows Telegram's 4,096 units.

A cut inside one shows the user garbage: half a flag is a letter in a box, a family emoji falls apart into
people, an Arabic letter loses its vowel mark to the next message, and half a surrogate pair is refused outright.
Each case puts the character across the boundary at every offset it can straddle it, in text with no space to
cut at instead (a long CJK paragraph, an emoji run)."""

from __future__ import annotations

import unicodedata
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.telegram.render import ceiling, measure, render, utf16_len
from tests.channels.messages import cut_all, squeezed
from tests.channels.telegram.checks import LIMIT, assert_valid_message

CLUSTERS = {
    "family (ZWJ sequence)": "👨‍👩‍👧‍👦",
    "technologist (ZWJ)": "👩🏽‍💻",
    "flag": "🇺🇦",
    "subdivision flag (tags)": "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
    "skin tone": "👍🏽",
    "keycap": "1️⃣",
    "heart (variation selector)": "❤️",
    "astral emoji": "😀",
    "CJK extension B": "𠮷",
    "Arabic letter with shadda and fatha": "شَّ",
    "Hebrew letter with points": "שָׁ",
    "Devanagari conjunct": "न्दी",
    "decomposed accents": "e\u0301\u0323",
    "Persian letter and its ZWNJ": "ی\u200c",
}
JOINING = frozenset("\u200c\u200d\ufe0f\u20e3") | {chr(c) for c in range(0x1F3FB, 0x1F400)}
"""Characters that only mean something attached to the one before them."""


def attaches(char: str) -> bool:
    return char in JOINING or unicodedata.category(char) in ("Mn", "Mc", "Me") or 0xE0020 <= ord(char) <= 0xE007F


def assert_whole_answer_in_fitting_messages(text: str, messages: list[str], limit: int = LIMIT) -> None:
    shown = [render(message).text for message in messages]
    for message in messages:
        assert_valid_message(render(message), limit)
    assert "".join(squeezed(part) for part in shown) == squeezed(render(text).text)
    for before, after in pairwise(shown):
        assert not attaches(after[0]), f"message starts with U+{ord(after[0]):04X}, cut from {before[-3:]!r}"
        assert before[-1] != "\u200d", "message ends in a zero-width joiner, cut from what it joins"
        assert regional_run(before) % 2 == 0, "a flag cut in half"


def regional_run(text: str) -> int:
    """How many regional indicators `text` ends with: two make one flag."""
    return len(text) - len(text.rstrip("".join(map(chr, range(0x1F1E6, 0x1F200)))))


@pytest.mark.parametrize("name", CLUSTERS)
def test_a_character_straddling_the_limit_moves_whole_to_the_next_message(name: str) -> None:
    cluster = CLUSTERS[name]
    for straddle in range(1, utf16_len(cluster) + 1):  # how many of its units lie past the boundary
        filler = "数" * (LIMIT - utf16_len(cluster) + straddle)
        text = filler + cluster * 3 + "据" * 50
        messages = cut_all(text, measure, LIMIT, ceiling=ceiling)
        assert len(messages) == 2
        assert_whole_answer_in_fitting_messages(text, messages)
        assert sum(render(message).text.count(cluster) for message in messages) == 3, straddle


def test_a_run_of_flags_pairs_up_the_same_in_every_message() -> None:
    flags = "🇺🇦🇩🇪🇯🇵🇧🇷"
    for shift in range(8):
        text = "x" * shift + flags * (LIMIT // 8 + 10)
        messages = cut_all(text, measure, LIMIT, ceiling=ceiling)
        assert_whole_answer_in_fitting_messages(text, messages)
        assert render(messages[1]).text.startswith(("🇺🇦", "🇩🇪", "🇯🇵", "🇧🇷"))


def test_zero_width_characters_at_the_boundary() -> None:
    for zero_width in ("\u200b", "\u200c", "\u200d"):
        for straddle in range(3):
            text = "a" * (LIMIT - 1 + straddle) + zero_width + "b" * 100
            messages = cut_all(text, measure, LIMIT, ceiling=ceiling)
            assert_whole_answer_in_fitting_messages(text, messages)
            assert sum(render(m).text.count(zero_width) for m in messages) == 1  # neither dropped nor doubled


def test_a_zero_width_space_is_where_unspaced_text_is_cut() -> None:
    words = ["ภาษาไทย", "ไม่มี", "ช่องว่าง"]  # Thai writes no spaces; a ZWSP marks where a line may break
    text = "\u200b".join(words[i % 3] for i in range(1500))
    messages = cut_all(text, measure, LIMIT, ceiling=ceiling)
    assert_whole_answer_in_fitting_messages(text, messages)
    assert render(messages[0]).text.endswith("\u200b")
    assert render(messages[1]).text.startswith(tuple(words))


def test_a_long_cjk_paragraph_is_cut_after_a_full_stop() -> None:
    text = "我们今天讨论数据的处理方法，以及如何提高效率。" * 400
    messages = cut_all(text, measure, LIMIT, ceiling=ceiling)
    assert len(messages) >= 2
    assert_whole_answer_in_fitting_messages(text, messages)
    assert all(render(message).text.endswith("。") for message in messages)


def test_right_to_left_text_straddling_the_limit() -> None:
    arabic = "السَّلَامُ عَلَيْكُمْ وَرَحْمَةُ اللَّهِ"
    hebrew = "שָׁלוֹם עֲלֵיכֶם"
    for shift in range(12):
        text = "x" * shift + " ".join([arabic, hebrew, "**نص عريض** 123"] * 200)
        messages = cut_all(text, measure, LIMIT, ceiling=ceiling)
        assert_whole_answer_in_fitting_messages(text, messages)


def test_formatting_around_emoji_at_the_boundary_keeps_entities_on_character_edges() -> None:
    for shift in range(6):
        text = "x" * shift + " ".join(["**😀 bold 👩🏽‍💻**", "`🇺🇦 code`", "_مرحبا_"] * 400)
        messages = cut_all(text, measure, LIMIT, ceiling=ceiling)
        assert len(messages) >= 2
        assert_whole_answer_in_fitting_messages(text, messages)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([*CLUSTERS.values(), "a", "数", "\u200b", " "]), min_size=1, max_size=150),
    st.integers(min_value=20, max_value=80),  # more than any one character
)
def test_any_run_of_such_characters_is_cut_only_between_them(atoms: list[str], limit: int) -> None:
    text = "".join(atoms)
    messages = cut_all(text, measure, limit, ceiling=ceiling)
    edges = {0}
    for atom in atoms:
        edges.add(max(edges) + len(atom))
    consumed = 0
    for message in messages:
        assert_valid_message(render(message), limit)
        start = text.index(message, consumed)
        assert squeezed(text[consumed:start]) == ""  # only whitespace between messages
        assert start in edges or text[start - 1].isspace(), (text[start - 3 : start + 3], message[:3])
        consumed = start + len(message)
        assert consumed in edges or text[consumed].isspace()
    assert squeezed(text[consumed:]) == ""
