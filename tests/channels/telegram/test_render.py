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


def test_literal_html_and_character_references_show_as_the_model_wrote_them() -> None:
    rendered = render("Use <b>bold</b> & `a<b`, AT&T, &lt;tag&gt;")
    assert rendered.text == "Use <b>bold</b> & a<b, AT&T, &lt;tag&gt;"
    assert [(e.type, e.offset, e.length) for e in rendered.entities] == [("code", 18, 3)]


def test_markdown_around_literal_html_still_formats() -> None:
    rendered = render("**Note:** write <br> or &nbsp; &#65; [the docs](https://example.com/?a=1&amp;b=2)")
    assert rendered.text == "Note: write <br> or &nbsp; &#65; the docs"
    bold, link = rendered.entities
    assert (bold.type, bold.offset, bold.length) == ("bold", 0, 5)
    assert (link.type, link.url) == ("text_link", "https://example.com/?a=1&b=2")  # a link target is no text


def test_an_html_block_is_shown_as_typed_and_markdown_inside_it_still_formats() -> None:
    rendered = render("<div>\nSee <i>this</i> &amp; **that**\n</div>\n\nAfter.")
    assert rendered.text == "<div>\nSee <i>this</i> &amp; that\n</div>\n\nAfter."
    assert [e.type for e in rendered.entities] == ["bold"]


def test_code_keeps_its_characters_without_added_escapes() -> None:
    rendered = render("```html\n<b>x</b> &amp;\n```\n\n<https://example.com/?q=a&amp;b>")
    assert rendered.text == "<b>x</b> &amp;\n\nhttps://example.com/?q=a&amp;b"
    assert [e.type for e in rendered.entities] == ["pre", "text_link"]


def test_literal_html_in_lists_quotes_and_tables() -> None:
    assert render("- a <b>\n- b &lt;").text == "⦁ a <b>\n⦁ b &lt;"
    assert render("> quoted <u>x</u>").text == "quoted <u>x</u>"
    assert "<br>" in render("| a | b |\n|---|---|\n| 1<br>2 | &amp; |").text


def test_only_the_first_hundred_entities_are_sent_as_telegram_formats_no_more() -> None:
    markdown = " ".join(f"**w{i}**" for i in range(150))
    rendered = render(markdown)
    assert len(rendered.entities) == 100
    assert [rendered.text[e.offset : e.offset + e.length] for e in rendered.entities] == [f"w{i}" for i in range(100)]
