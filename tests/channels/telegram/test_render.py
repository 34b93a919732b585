"""Markdown to Telegram text + entities, counted in UTF-16 units as Telegram counts them."""

from __future__ import annotations

from channels.telegram.render import measure, render, utf16_len


def test_markdown_becomes_text_and_entities() -> None:
    rendered = render("Say **hello** to `code`")
    assert rendered.text == "Say hello to code"
    assert [(e.type, e.offset, e.length) for e in rendered.entities] == [("bold", 4, 5), ("code", 13, 4)]


def test_offsets_and_lengths_are_utf16() -> None:
    rendered = render("😀😀 **x**")
    assert [(e.offset, e.length) for e in rendered.entities] == [(5, 1)]
    assert measure("😀" * 10) == 20 == utf16_len("😀" * 10)


def test_partial_markdown_while_streaming_renders_without_error() -> None:
    assert render("**unclosed bold").text == "**unclosed bold"
    fence = render("Look:\n\n```python\nx = 1")
    assert fence.text.endswith("x = 1") and fence.entities[0].type == "pre"


def test_entities_never_reach_past_the_text() -> None:
    for markdown in ["**bold**   ", "`code`\n\n", "> quote\n\n\n"]:
        rendered = render(markdown)
        size = utf16_len(rendered.text)
        assert all(e.length > 0 and e.offset + e.length <= size for e in rendered.entities), markdown


def test_plain_sends_the_markdown_as_typed() -> None:
    assert render("**x** <b>", plain=True).text == "**x** <b>"
    assert render("**x**", plain=True).entities == ()


def test_text_that_renders_to_nothing_is_sent_as_typed() -> None:
    assert render("<b></b>").text == "<b></b>"
