"""What every Telegram message the bot sends must satisfy, or Telegram refuses it or shows it broken."""

from __future__ import annotations

from channels.telegram.render import Rendered, utf16_len

LIMIT = 4096
"""Telegram's longest message, in UTF-16 code units after entities are applied."""
LITERAL = frozenset({"code", "pre"})
"""Entities whose text is shown as typed: nothing may be formatted inside them."""


def code_point_starts(text: str) -> set[int]:
    """The UTF-16 offsets where a character starts (and the end): an entity edge anywhere else cuts an emoji."""
    starts, at = {0}, 0
    for char in text:
        at += 2 if ord(char) > 0xFFFF else 1
        starts.add(at)
    return starts


def assert_valid_message(rendered: Rendered, limit: int = LIMIT) -> None:
    """Fits, is real UTF-16, and its entities lie inside the text on character edges and nest without crossing."""
    text = rendered.text
    text.encode("utf-16-le")  # a lone surrogate (half an emoji) cannot be encoded
    size = utf16_len(text)
    assert 0 < size <= limit, size
    edges = code_point_starts(text)
    spans = []
    for entity in rendered.entities:
        start, end = entity.offset, entity.offset + entity.length
        assert 0 <= start < end <= size, (entity, size)
        assert start in edges and end in edges, entity
        spans.append((start, end, str(entity.type)))
    for a_start, a_end, a_type in spans:
        for b_start, b_end, b_type in spans:
            if (a_start, a_end, a_type) == (b_start, b_end, b_type):
                continue
            crossing = a_start < b_start < a_end < b_end
            assert not crossing, (a_type, a_start, a_end, b_type, b_start, b_end)
            inside = a_start <= b_start and b_end <= a_end
            assert not (inside and a_type in LITERAL and (a_start, a_end) != (b_start, b_end)), (a_type, b_type)
