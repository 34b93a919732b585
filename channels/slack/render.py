"""The model's Markdown made safe to show as typed in Slack.

Slack reads `&`, `<` and `>` as its own control characters: `<@U123>` and `<!here>` become live mentions,
`<https://x|label>` a link, and `&lt;` is shown as `<` (its formatting guide: escape them as `&amp;`, `&lt;` and
`&gt;` unless they are meant for that). `markdown_text` and markdown blocks take standard Markdown, where raw HTML
and character references are read the same way; so a model answer with `<b>`, `a < b` or `&lt;tag&gt;` is shown
with characters missing or changed, and one that quotes `<!channel>` notifies a whole channel.

`as_typed` escapes those characters outside code (CommonMark shows code as typed, so an entity there would show
as `&lt;`) and outside autolinks and link targets (Slack does not decode entities in a URL). `fallback_text` is
for the mrkdwn `text` that goes with blocks (notifications, screen readers), where every `&`, `<`, `>` is text.
"""

from __future__ import annotations

import re

import pyromark

_OPTIONS = pyromark.Options.ENABLE_STRIKETHROUGH | pyromark.Options.ENABLE_TABLES | pyromark.Options.ENABLE_TASKLISTS
"""Slack's Markdown: GitHub's extensions, no math (so `$a<b>$` is text, not code)."""
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_SPECIAL = re.compile(r"\\?[&<>]")
"""A control character, with the backslash that escapes it in Markdown (the entity replaces both)."""
_CONTAINER = re.compile(r"\n[ \t>]*")
"""A line break and the block quote markers that continue an inline HTML tag on the next line."""


def fallback_text(markdown: str) -> str:
    """`markdown` as mrkdwn text that shows every `&`, `<` and `>` and triggers no mention or link."""
    return "".join(_ENTITIES.get(char, char) for char in markdown)


def as_typed(markdown: str) -> str:
    """`markdown` with `&`, `<` and `>` escaped wherever Slack would otherwise not show them as typed.

    For a whole message (postMessage, update, a markdown block): whether a character is in code depends on what
    follows it, so a streamed delta cannot be escaped on its own.
    """
    if not any(char in markdown for char in _ENTITIES):
        return markdown
    source = markdown.encode()
    pieces: list[bytes] = []
    done = 0
    for start, end in _escapable(markdown):
        text = source[start:end].decode()
        pieces += [source[done:start], _escape(text).encode()]
        done = end
    pieces.append(source[done:])
    return b"".join(pieces).decode()


def _escapable(markdown: str) -> list[tuple[int, int]]:
    """UTF-8 ranges of text and raw HTML outside code and autolinks that hold a control character, in order.

    A text range starts after a backslash that escapes its first character; the range then takes the backslash in,
    for the entity to replace both (`\\<` is `<` in Markdown, `\\&lt;` would be `&lt;`).
    """
    source = markdown.encode()
    ranges: list[tuple[int, int]] = []
    literal = False  # inside a code block or an autolink (neither can hold the other, nor a link)
    shown_to = 0  # where the last piece of inline content ended
    for event, span in pyromark.events_with_range(markdown, options=_OPTIONS):
        if not isinstance(event, dict):
            continue
        opened, (start, end) = event.get("Start"), (span["start"], span["end"])
        if isinstance(opened, dict) and ("CodeBlock" in opened or _autolink(opened)):
            literal = True
        elif event.get("End") in ("CodeBlock", "Link"):
            literal = False
        elif ("Text" in event and not literal) or "InlineHtml" in event or "Html" in event:
            if "Text" in event and shown_to < start and source[start - 1 : start] == b"\\":
                start -= 1
            if any(char in source[start:end] for char in b"&<>"):
                ranges.append((start, end))
        if opened is None and "End" not in event:
            shown_to = end
    return ranges


def _autolink(opened: dict[str, object]) -> bool:
    link = opened.get("Link")
    return isinstance(link, dict) and link.get("link_type") in ("Autolink", "Email")


def _escape(text: str) -> str:
    """Entities for the control characters of `text`, keeping the block quote markers of continued lines."""
    lines = _CONTAINER.split(text)
    markers = _CONTAINER.findall(text)
    escaped = [_SPECIAL.sub(lambda match: _ENTITIES[match.group(0)[-1]], line) for line in lines]
    return "".join(part for pair in zip(escaped, [*markers, ""], strict=True) for part in pair)
