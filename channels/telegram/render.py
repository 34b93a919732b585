"""Markdown to Telegram text + entities, measured as Telegram measures it.

Sending entities instead of a parse_mode means no "can't parse entities" error can come from our own markup:
telegramify-markdown parses the model's Markdown (CommonMark) and returns plain text plus entities with UTF-16
offsets. A partial text (an unclosed fence or emphasis while streaming) renders safely: an unclosed fence is
shown as code, an unclosed `**` as the characters themselves.

Telegram shows no HTML, so the model's `<b>`, `<br>` or `&lt;` are text it meant the user to read. CommonMark
reads them as raw HTML and character references, which telegramify-markdown drops or decodes (and has no option
against), so `render` first backslash-escapes exactly those (see `as_typed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import pyromark
import telegramify_markdown
from telegram import MessageEntity
from telegramify_markdown.converter import STANDARD_OPTIONS

_MAX_PASSES = 64
"""Each pass unwraps a level of HTML blocks; real answers need one or two."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """What one sendMessage / editMessageText / sendMessageDraft carries."""

    text: str
    entities: tuple[MessageEntity, ...] = ()


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: how Telegram counts the 4,096 limit and entity offsets."""
    return len(text.encode("utf-16-le")) // 2


@lru_cache(maxsize=64)
def render(markdown: str, *, plain: bool = False) -> Rendered:
    """Render the model's Markdown for Telegram; `plain` sends the Markdown as typed, without entities.

    Cached because the StreamingHandler measures a text and then sends the same text.
    """
    if not plain:
        text, entities = telegramify_markdown.convert(as_typed(markdown))
        text = text.rstrip()
        if text:
            limit = utf16_len(text)
            kept = (_entity(e, limit) for e in entities if e.offset < limit)
            return Rendered(text, tuple(kept))
    return Rendered(markdown)


def measure(markdown: str) -> int:
    """The visible length of `markdown` once rendered, in UTF-16 units."""
    return utf16_len(render(markdown).text)


def as_typed(markdown: str) -> str:
    """`markdown` with a backslash before each `<` that opens raw HTML and each `&` that opens a character
    reference, so both render as the characters typed; everything else (code, autolinks, link targets) is as it was.

    The parser telegramify-markdown uses decides what is HTML, so nothing that is Markdown is touched. A `<` escaped
    at the start of an HTML block turns the block into a paragraph, in which the parser may then find inline HTML:
    hence passes until it finds none (each pass escapes at least one more character, so this ends).
    """
    if "<" not in markdown and "&" not in markdown:
        return markdown
    for _ in range(_MAX_PASSES):
        offsets = _read_as_html(markdown)
        if not offsets:
            break
        source = markdown.encode()
        bounds = [0, *offsets, len(source)]
        markdown = b"\\".join(source[a:b] for a, b in pairwise(bounds)).decode()
    return markdown


def _read_as_html(markdown: str) -> list[int]:
    """UTF-8 offsets of the `<` and `&` the parser reads as raw HTML or a character reference, ascending."""
    source = markdown.encode()
    offsets: list[int] = []
    in_code = False
    for event, span in pyromark.events_with_range(markdown, options=STANDARD_OPTIONS):
        if not isinstance(event, dict):
            continue
        start, end = span["start"], span["end"]
        opened = event.get("Start")
        if isinstance(opened, dict) and "CodeBlock" in opened:
            in_code = True
        elif event.get("End") == "CodeBlock":
            in_code = False
        elif "InlineHtml" in event or opened == "HtmlBlock":
            at = source.find(b"<", start, end)
            if at >= 0:
                offsets.append(at)
        elif (
            isinstance(text := event.get("Text"), str)
            and not in_code
            and source.startswith(b"&", start)
            and _decoded(text, source, start, end)
        ):
            offsets.append(start)
    return sorted(set(offsets))


def _decoded(text: str, source: bytes, start: int, end: int) -> bool:
    """Whether a text event shows other characters than its source: `&lt;` that the parser decoded to `<`."""
    return source[start:end] != text.encode()


def _entity(entity: telegramify_markdown.MessageEntity, limit: int) -> MessageEntity:
    length = min(entity.length, max(0, limit - entity.offset))  # the trailing whitespace we strip
    return MessageEntity(
        type=entity.type,
        offset=entity.offset,
        length=length,
        url=entity.url,
        language=entity.language,
        custom_emoji_id=entity.custom_emoji_id,
    )
