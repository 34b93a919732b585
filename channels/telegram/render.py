"""Markdown to Telegram text + entities, measured as Telegram measures it.

Sending entities instead of a parse_mode means no "can't parse entities" error can come from our own markup:
telegramify-markdown parses the model's Markdown (CommonMark) and returns plain text plus entities with UTF-16
offsets. A partial text (an unclosed fence or emphasis while streaming) renders safely: an unclosed fence is
shown as code, an unclosed `**` as the characters themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import telegramify_markdown
from telegram import MessageEntity


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
        text, entities = telegramify_markdown.convert(markdown)
        text = text.rstrip()
        if text:
            limit = utf16_len(text)
            kept = (_entity(e, limit) for e in entities if e.offset < limit)
            return Rendered(text, tuple(kept))
    return Rendered(markdown)


def measure(markdown: str) -> int:
    """The visible length of `markdown` once rendered, in UTF-16 units."""
    return utf16_len(render(markdown).text)


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
