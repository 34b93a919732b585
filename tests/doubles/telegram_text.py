"""Text rules of the Telegram Bot API double: UTF-16 lengths, entity checks, trimming and entity detection.

Telegram measures everything (the 4096 limit, entity offsets and lengths) in UTF-16 code units, not in Python
characters, so an emoji counts twice. A bot that gets this wrong produces entities that are off by one per emoji or
messages that are refused as too long; the double must count the same way or it would hide exactly those bugs.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

MAX_TEXT_UNITS = 4096
"""The longest text (UTF-16 code units, after entity parsing and trimming) sendMessage and editMessageText take."""

ENTITY_TYPES = frozenset(
    {
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
        "date_time",
    }
)

_REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "text_link": ("url",),
    "text_mention": ("user",),
    "custom_emoji": ("custom_emoji_id",),
    "date_time": ("unix_time",),
}
_OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {"pre": ("language",), "date_time": ("date_time_format",)}


class EntityError(ValueError):
    """An entity or markup problem, carrying the detail Telegram puts after "Bad Request: ".

    The API layer decides the final wording (see `describe_entity_error`), because the real server says
    "can't parse entities: ..." for markup but other words for explicit `entities` arrays.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def describe_entity_error(error: EntityError, *, real_wording: bool) -> str:
    """The `description` for an entity problem.

    Args:
        error: The problem found.
        real_wording: Use the real server's wording, where an out-of-range entity is "entity beginning at UTF-16
            offset ..." and a bad type "can't parse MessageEntity: ...". Otherwise every entity problem reads
            "can't parse entities: <detail>", the single phrase the bot is documented to recognise.
    """
    if real_wording or error.detail.startswith("can't parse entities"):
        return f"Bad Request: {error.detail}"
    return f"Bad Request: can't parse entities: {error.detail}"


def utf16_len(text: str) -> int:
    """Length of `text` in UTF-16 code units (characters outside the BMP count twice)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def utf16_positions(text: str) -> list[int]:
    """`positions[i]` is the UTF-16 offset of `text[i]`; the last item is the total length."""
    positions = [0]
    for char in text:
        positions.append(positions[-1] + (2 if ord(char) > 0xFFFF else 1))
    return positions


def _field_int(entity: dict[str, Any], name: str) -> int:
    value = entity[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise EntityError(f'can\'t parse MessageEntity: Field "{name}" must be of type Number')
    return value


def _check_url(url: Any) -> None:
    if not isinstance(url, str):
        raise EntityError('can\'t parse MessageEntity: Field "url" must be of type String')
    parts = urlsplit(url if "://" in url or url.startswith(("tg:", "mailto:")) else f"http://{url}")
    if parts.scheme in ("http", "https", "ton") and "." not in (parts.hostname or ""):
        raise EntityError(f"Entity URL '{url}' is invalid: Wrong HTTP URL")
    if parts.scheme not in ("http", "https", "tg", "ton", "mailto"):
        raise EntityError(f"Entity URL '{url}' is invalid: Unsupported URL protocol")


def validate_entities(text: str, raw: Any) -> list[dict[str, Any]]:
    """Check `raw` (the decoded `entities` parameter) against `text`; return them normalised and sorted.

    Normalised means only the fields the Bot API defines for the type, sorted by (offset, -length, type), so that
    two requests that Telegram would treat as the same formatting compare equal ("message is not modified").

    Raises:
        EntityError: For a non-list, a non-object, a missing or mistyped field, an unknown type, a negative offset,
            a non-positive length, an entity that ends after the text (UTF-16) or a text_link without a valid URL.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise EntityError("can't parse entities JSON object")
    total = utf16_len(text)
    result: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, dict):
            raise EntityError("can't parse MessageEntity: Object expected")
        for name in ("type", "offset", "length"):
            if name not in item:
                raise EntityError(f"can't parse MessageEntity: Can't find field \"{name}\"")
        kind = item["type"]
        if kind not in ENTITY_TYPES:
            raise EntityError("can't parse MessageEntity: Unsupported type specified")
        offset, length = _field_int(item, "offset"), _field_int(item, "length")
        if offset < 0:
            raise EntityError(f"entity has a negative UTF-16 offset {offset}")
        if length <= 0:
            raise EntityError(f"entity beginning at UTF-16 offset {offset} has a non-positive length {length}")
        if offset + length > total:
            raise EntityError(
                f"entity beginning at UTF-16 offset {offset} ends after the end of the text at UTF-16 offset "
                f"{offset + length}"
            )
        entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
        for name in _REQUIRED_FIELDS.get(kind, ()):
            if item.get(name) in (None, ""):
                raise EntityError(f"can't parse MessageEntity: Can't find field \"{name}\"")
            entity[name] = item[name]
        for name in _OPTIONAL_FIELDS.get(kind, ()):
            if item.get(name) not in (None, ""):
                entity[name] = item[name]
        if kind == "text_link":
            _check_url(entity["url"])
        if kind == "text_mention" and not isinstance(entity["user"], dict):
            raise EntityError('can\'t parse MessageEntity: Field "user" must be of type Object')
        result.append(entity)
    return sort_entities(result)


def sort_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Telegram's order: by offset, an enclosing entity before the ones it contains."""
    return sorted(entities, key=lambda e: (e["offset"], -e["length"], e["type"]))


def trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip leading and trailing whitespace as Telegram does, moving and clipping entities to match.

    This is why an edit that only adds trailing spaces or newlines is "not modified", and why a whitespace-only
    text is "empty".
    """
    start, end = 0, len(text)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if (start, end) == (0, len(text)):
        return text, entities
    positions = utf16_positions(text)
    low, high = positions[start], positions[end]
    kept: list[dict[str, Any]] = []
    for entity in entities:
        first = max(entity["offset"], low)
        last = min(entity["offset"] + entity["length"], high)
        if last > first:
            kept.append({**entity, "offset": first - low, "length": last - first})
    return text[start:end], sort_entities(kept)


_DETECTORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("url", re.compile(r"(?<![\w@/])(?:https?://)[^\s<>\"]+[^\s<>\".,;:!?)\]'}]")),
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    ("bot_command", re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z][A-Za-z0-9_]{2,31}(?![\w])")),
    ("hashtag", re.compile(r"(?<![\w#])#\w*[^\W\d]\w*")),
)


def detect_entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram adds to a user's message by itself: URLs, e-mails, bot commands, mentions, hashtags.

    Offsets and lengths are UTF-16. Earlier detectors win over later ones where matches overlap (an e-mail address
    is not also a mention).
    """
    positions = utf16_positions(text)
    taken: list[tuple[int, int]] = []
    found: list[dict[str, Any]] = []
    for kind, pattern in _DETECTORS:
        for match in pattern.finditer(text):
            begin, end = match.span()
            if any(begin < other_end and other_begin < end for other_begin, other_end in taken):
                continue
            taken.append((begin, end))
            found.append({"type": kind, "offset": positions[begin], "length": positions[end] - positions[begin]})
    return sort_entities(found)
