"""The model's text reaches a Slack reader as typed: no character lost to Slack's `<…>` tokens or entities, no
mention or link the model did not write as Markdown, and the Markdown itself (code, links, quotes) intact."""

from __future__ import annotations

import pytest

from channels.slack.render import as_typed, fallback_text


def test_html_and_character_references_are_escaped_as_slack_asks() -> None:
    assert as_typed("Use <b>bold</b> & `a<b`, AT&T, &lt;tag&gt;") == (
        "Use &lt;b&gt;bold&lt;/b&gt; &amp; `a<b`, AT&amp;T, &amp;lt;tag&amp;gt;"
    )


@pytest.mark.parametrize("token", ["<!channel>", "<!here>", "<@U0ALICE>", "<#C0GENERAL>", "<!subteam^S1>"])
def test_a_quoted_slack_token_cannot_notify_or_mention(token: str) -> None:
    escaped = as_typed(f"The docs say to write {token} to ping.")
    assert "<" not in escaped and ">" not in escaped
    assert escaped.replace("&lt;", "<").replace("&gt;", ">") == f"The docs say to write {token} to ping."


def test_code_is_left_as_typed() -> None:
    text = "Run `a < b && c > d` or:\n\n```python\nif a < b and c > d:\n    x = '&amp;'\n```\n\n    indented <b>"
    assert as_typed(text) == text


def test_links_keep_their_targets_and_quotes_their_markers() -> None:
    assert as_typed("[Q&A](https://e.com/?a=1&b=2) <https://e.com/?a&b>") == (
        "[Q&amp;A](https://e.com/?a=1&b=2) <https://e.com/?a&b>"
    )
    assert (
        as_typed("> 2 > 1 & <i>so</i>\n> > nested <b>")
        == "> 2 &gt; 1 &amp; &lt;i&gt;so&lt;/i&gt;\n> > nested &lt;b&gt;"
    )
    assert as_typed("> a <span\n> class='x'>b</span>") == "> a &lt;span\n> class='x'&gt;b&lt;/span&gt;"


def test_html_blocks_lists_and_tables() -> None:
    assert as_typed("<div>\nx &amp; y\n</div>") == "&lt;div&gt;\nx &amp;amp; y\n&lt;/div&gt;"
    assert as_typed("- <b> item\n  1. a&b") == "- &lt;b&gt; item\n  1. a&amp;b"
    assert as_typed("| a<b | c |\n|---|---|\n| 1 | & |") == "| a&lt;b | c |\n|---|---|\n| 1 | &amp; |"


def test_a_backslash_escape_becomes_the_entity() -> None:
    assert as_typed(r"\<b\> and \& and \*stars\*") == r"&lt;b&gt; and &amp; and \*stars\*"
    assert as_typed("a \\\\<b>") == "a \\\\&lt;b&gt;"  # an escaped backslash, then a tag


def test_markdown_without_control_characters_is_unchanged() -> None:
    text = "# Title\n\n**bold** _it_ ~~gone~~ [x](https://e.com) 😀 数据"
    assert as_typed(text) == text


def test_fallback_text_escapes_every_control_character() -> None:
    assert fallback_text("**a** <!here> & `b > c`") == "**a** &lt;!here&gt; &amp; `b &gt; c`"
