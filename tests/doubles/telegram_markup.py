"""`parse_mode` for the Telegram Bot API double: HTML, MarkdownV2 and legacy Markdown into text + entities.

The bot is meant to send entities and never a parse_mode, but a fallback path or a future change may use one, and
then the failures that matter are Telegram's: an unbalanced HTML tag, an unescaped "." in MarkdownV2, an unclosed
"*" in legacy Markdown. The parsers are small, but they refuse those cases with Telegram's wording
("can't parse entities: ..." with UTF-8 byte offsets) and turn accepted markup into the visible text and entities,
so `visible_texts` shows what a user would see and not the markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tests.doubles.telegram_text import EntityError, sort_entities, utf16_len

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_CHAR_REF = re.compile(r"&(?:(lt|gt|amp|quot)|#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED_REFS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"[a-zA-Z0-9-]*")
_ATTR = re.compile(r"\s*([a-zA-Z0-9_-]*)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>\"']+))?")
_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD2_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


def parse(parse_mode: str, source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse `source` in `parse_mode` (case-insensitive, as Telegram accepts it).

    Raises:
        EntityError: "unsupported parse_mode" or Telegram's "can't parse entities: ..." for broken markup.
    """
    mode = parse_mode.lower()
    if mode == "html":
        return parse_html(source)
    if mode == "markdownv2":
        return parse_markdown_v2(source)
    if mode == "markdown":
        return parse_markdown(source)
    raise EntityError("unsupported parse_mode")


def _byte_offset(source: str, index: int) -> int:
    return len(source[:index].encode("utf-8"))


def _fail(detail: str) -> EntityError:
    return EntityError(f"can't parse entities: {detail}")


@dataclass
class _Out:
    """The visible text being built, with its UTF-16 length kept current for entity offsets."""

    chars: list[str] = field(default_factory=list)
    units: int = 0
    entities: list[dict[str, Any]] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.chars.append(text)
        self.units += utf16_len(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.units > start:
            self.entities.append({"type": kind, "offset": start, "length": self.units - start, **extra})

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        return "".join(self.chars), sort_entities(self.entities)


@dataclass
class _Open:
    tag: str
    kind: str
    start: int
    byte: int
    extra: dict[str, Any] = field(default_factory=dict)


def _html_start_tag(source: str, index: int, byte: int) -> tuple[str, dict[str, str], int]:
    """Read `<name attr="v" ...>` at `index`; return the lower-cased name, attributes and the index after `>`."""
    name = _TAG_NAME.match(source, index + 1)
    assert name is not None  # the pattern also matches the empty string
    attrs: dict[str, str] = {}
    position = name.end()
    while True:
        if position >= len(source):
            raise _fail(f"Unclosed start tag at byte offset {byte}")
        if source[position] == ">":
            return name.group().lower(), attrs, position + 1
        attr = _ATTR.match(source, position)
        if attr is None or not attr.group(1):
            if source[position].isspace() or source[position] == "/":
                position += 1
                continue
            raise _fail(f'Empty attribute name in the tag "{name.group()}" at byte offset {byte}')
        value = attr.group(2) or ""
        attrs[attr.group(1).lower()] = value[1:-1] if value[:1] in "\"'" and value else value
        position = attr.end()


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML style: the supported tags only, `&lt; &gt; &amp; &quot;` and numeric references."""
    out = _Out()
    stack: list[_Open] = []
    index = 0
    while index < len(source):
        char = source[index]
        if char == "&" and (ref := _HTML_CHAR_REF.match(source, index)):
            named, decimal, hexadecimal = ref.groups()
            out.add(_NAMED_REFS[named] if named else chr(int(decimal or hexadecimal, 10 if decimal else 16)))
            index = ref.end()
            continue
        if char != "<":
            out.add(char)
            index += 1
            continue
        byte = _byte_offset(source, index)
        if source.startswith("</", index):
            close = source.find(">", index)
            if close == -1:
                raise _fail(f"Unclosed end tag at byte offset {byte}")
            name = source[index + 2 : close].strip().lower()
            if not stack:
                raise _fail(f"Unexpected end tag at byte offset {byte}")
            top = stack.pop()
            if name and name != top.tag:
                raise _fail(f'Unmatched end tag at byte offset {byte}, expected "</{top.tag}>", found "</{name}>"')
            if top.tag == "code" and stack and stack[-1].tag == "pre" and top.extra.get("language"):
                stack[-1].extra["language"] = top.extra["language"]
            elif top.kind != "text_link" or top.extra.get("url"):
                extra = {k: v for k, v in top.extra.items() if not (top.kind == "code" and k == "language")}
                out.entity(top.kind, top.start, **extra)
            index = close + 1
            continue
        name, attrs, after = _html_start_tag(source, index, byte)
        if name not in _HTML_TAGS:
            raise _fail(f'Unsupported start tag "{name}" at byte offset {byte}')
        kind, extra = _HTML_TAGS[name], {}
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise _fail(f'Tag "span" must have class "tg-spoiler" at byte offset {byte}')
        if name == "a":
            extra = {"url": attrs.get("href", "")}
        elif name == "code" and attrs.get("class", "").startswith("language-"):
            extra = {"language": attrs["class"].removeprefix("language-")}
        elif name == "blockquote" and "expandable" in attrs:
            kind = "expandable_blockquote"
        elif name == "tg-emoji":
            if not attrs.get("emoji-id"):
                raise _fail(f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {byte}')
            extra = {"custom_emoji_id": attrs["emoji-id"]}
        stack.append(_Open(name, kind, out.units, byte, extra))
        index = after
    if stack:
        raise _fail(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return out.result()


def _read_until(source: str, index: int, closing: str, escapes: str) -> tuple[str, int] | None:
    """Read literal text up to `closing`, resolving backslash escapes; return (text, index after) or None."""
    chars: list[str] = []
    while index < len(source):
        if source[index] == "\\" and index + 1 < len(source) and (not escapes or source[index + 1] in escapes):
            chars.append(source[index + 1])
            index += 2
        elif source.startswith(closing, index):
            return "".join(chars), index + len(closing)
        else:
            chars.append(source[index])
            index += 1
    return None


def _md2_code(source: str, index: int, out: _Out) -> int:
    """A `code` or ```pre``` span at `index`; returns the index after it."""
    byte = _byte_offset(source, index)
    if source.startswith("```", index):
        found = _read_until(source, index + 3, "```", "")
        if found is None:
            raise _fail(f"Can't find end of Pre entity at byte offset {byte}")
        body, after = found
        first_line, newline, rest = body.partition("\n")
        language = first_line if newline and first_line and not any(c.isspace() for c in first_line) else ""
        start = out.units
        out.add(rest if language else body)
        out.entity("pre", start, **({"language": language} if language else {}))
        return after
    found = _read_until(source, index + 1, "`", "")
    if found is None:
        raise _fail(f"Can't find end of Code entity at byte offset {byte}")
    start = out.units
    out.add(found[0])
    out.entity("code", start)
    return found[1]


def parse_markdown_v2(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's MarkdownV2: every reserved character outside markup must be escaped with a backslash."""
    out = _Out()
    stack: list[_Open] = []
    quote_start: int | None = None
    index = 0
    line_start = True
    while index < len(source):
        char = source[index]
        if line_start:
            line_start = False
            if char == ">":
                quote_start = out.units if quote_start is None else quote_start
                index += 1
                continue
            if quote_start is not None:
                out.units -= 1  # the newline that ended the quote is not part of it
                out.entity("blockquote", quote_start)
                out.units += 1
                quote_start = None
        if char == "\\" and index + 1 < len(source) and 0 < ord(source[index + 1]) <= 126:
            out.add(source[index + 1])
            index += 2
            continue
        if char == "`":
            index = _md2_code(source, index, out)
            continue
        toggle = {"*": "bold", "~": "strikethrough"}.get(char)
        width = 1
        if char == "_":
            toggle, width = ("underline", 2) if source.startswith("__", index) else ("italic", 1)
        elif source.startswith("||", index):
            toggle, width = "spoiler", 2
        if toggle is not None:
            if stack and stack[-1].kind == toggle:
                top = stack.pop()
                out.entity(top.kind, top.start)
            else:
                stack.append(_Open(char * width, toggle, out.units, _byte_offset(source, index)))
            index += width
            continue
        if char == "[" or source.startswith("![", index):
            kind, width = ("custom_emoji", 2) if char == "!" else ("text_link", 1)
            stack.append(_Open(char, kind, out.units, _byte_offset(source, index)))
            index += width
            continue
        if char == "]" and stack and stack[-1].kind in ("text_link", "custom_emoji"):
            top = stack.pop()
            index += 1
            if source.startswith("(", index):
                found = _read_until(source, index + 1, ")", ")\\")
                if found is None:
                    raise _fail(f"Can't find end of a URL at byte offset {_byte_offset(source, index)}")
                url, index = found
                if top.kind == "text_link":
                    out.entity("text_link", top.start, url=url)
                else:
                    out.entity("custom_emoji", top.start, custom_emoji_id=url.rpartition("id=")[2])
            continue
        if char in _MD2_RESERVED:
            raise _fail(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")
        out.add(char)
        line_start = char == "\n"
        index += 1
    if stack:
        top = stack[-1]
        raise _fail(f"Can't find end of {_MD2_TYPE_NAMES[top.kind]} entity at byte offset {top.byte}")
    if quote_start is not None:
        out.entity("blockquote", quote_start)
    return out.result()


def parse_markdown(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Legacy Markdown: `*bold*`, `_italic_`, `` `code` ``, ```` ```pre``` ````, `[text](url)`; no nesting."""
    out = _Out()
    index = 0
    simple = {"*": "bold", "_": "italic"}
    while index < len(source):
        char = source[index]
        byte = _byte_offset(source, index)
        unclosed = _fail(f"Can't find end of the entity starting at byte offset {byte}")
        if char == "\\" and index + 1 < len(source) and source[index + 1] in "_*`[":
            out.add(source[index + 1])
            index += 2
        elif char in simple:
            close = source.find(char, index + 1)
            if close == -1:
                raise unclosed
            start = out.units
            out.add(source[index + 1 : close])
            out.entity(simple[char], start)
            index = close + 1
        elif char == "`":
            fence = "```" if source.startswith("```", index) else "`"
            close = source.find(fence, index + len(fence))
            if close == -1:
                raise unclosed
            start = out.units
            out.add(source[index + len(fence) : close])
            out.entity("pre" if fence == "```" else "code", start)
            index = close + len(fence)
        elif char == "[":
            close = source.find("]", index + 1)
            if close == -1 or not source.startswith("(", close + 1) or source.find(")", close + 2) == -1:
                raise unclosed
            end = source.find(")", close + 2)
            start = out.units
            out.add(source[index + 1 : close])
            out.entity("text_link", start, url=source[close + 2 : end])
            index = end + 1
        else:
            out.add(char)
            index += 1
    return out.result()
