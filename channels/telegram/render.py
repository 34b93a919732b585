"""Markdown to Telegram text + entities, measured as Telegram measures it.

Sending entities instead of a parse_mode means no "can't parse entities" error can come from our own markup:
telegramify-markdown parses the model's Markdown (CommonMark) and returns plain text plus entities with UTF-16
offsets. A partial text (an unclosed fence or emphasis while streaming) renders safely: an unclosed fence is
shown as code, an unclosed `**` as the characters themselves.

Telegram shows no HTML, so the model's `<b>`, `<br>` or `&lt;` are text it meant the user to read. CommonMark
reads them as raw HTML and character references, which telegramify-markdown drops or decodes (and has no option
against), so `render` first backslash-escapes exactly those (see `as_typed`).

Whatever else Markdown hides or inflates, a message is sent as typed rather than lose or bloat it (`_faithful`):
a rendering that does not show every letter and digit the model wrote (a link reference definition, a table row
with more cells than its header, a link's title), or one more than twice as long as its Markdown (a table padded
to one wide cell grows without bound, and then an answer would take ever more messages).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import pyromark
import telegramify_markdown
from telegram import MessageEntity
from telegramify_markdown.converter import STANDARD_OPTIONS

_MAX_PASSES = 4
"""Each pass turns what the parser read as HTML into text; one or two do for any answer seen, and a text that
still holds HTML after these is sent as typed (plain), which shows every character of it."""

MAX_ENTITIES = 100
"""Telegram formats at most 100 entities of a message and ignores the rest, so no more are built or sent."""
_HTML_SPECIALS = re.compile(rb"[<&]")
_DOLLAR = re.compile(rb"\$")
_MAX_COST = 3200
_PER_CHARS = 4096
"""Parser events one render converts at most per 4,096 characters, in half events (`_COSTS`, see `_too_dense`): a
full message of every construct an answer uses (headings, lists, quotes, code, links, a table) costs about 2,300,
one of nothing but a table of short rows about 2,000; 3,200 of the dearest kind take about 8 ms on a quiet machine,
so that a cut, which renders two candidates at most, stays within 20 ms. Per characters, so that a text and the
messages it is cut into are formatted alike."""
_COSTS = {"CodeBlock": 16, "Heading": 4, "Link": 6, "Image": 6, "Item": 3, "Rule": 4, "TableCell": 1, "TableRow": 1}
"""What an event costs telegramify-markdown, in halves of a plain one (measured per kind on the units of
tests/channels/adversarial.py, so that each kind costs about 2 µs per half): each block start scans the text
written so far for trailing line breaks, which runs of empty code blocks make long; headings, links and list items
do more than plain text, a table's rows and cells less."""
_PLAIN = 2
"""What a text event and any event not in `_COSTS` cost."""
_MAX_CHAR_COST = 10
"""No Markdown character costs more than this (the 4 characters of a fence line cost 16 + 16, in a block that
may be empty), so a text with few of them is cleared without parsing."""
_MARKUP = tuple("*_`[]!<>&#|~\\-+=:$.)")
"""Characters that can start Markdown structure (with line breaks, which end or continue blocks)."""
_MAX_GROWTH = 2
"""A rendering may be at most this many times as long as its Markdown (past `_GROWTH_FREE` units): each message
then carries at least half a message of the answer, so an answer takes a bounded number of messages."""
_GROWTH_FREE = 1024
"""A rendering this short is never too long: a small table may pad to a few times its Markdown."""
_ORDERED_ITEM = re.compile(r"(?<![^\s>])\d{1,9}(?=[.)](?:\s|$))")
"""An ordered list item's number, which Markdown renumbers from the first (1. 1. 1. shows as 1. 2. 3.)."""
_FENCE_INFO = re.compile(r"^( {0,3}(?:`{3,}|~{3,})).*$", re.MULTILINE)
"""A code fence's info string: it names the code's language (kept as the entity's language), and no more shows."""
_REFERENCE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
"""A character reference (`&amp;`, `&#65;`): shown as typed in text, decoded in a link's target."""
_LABEL = re.compile(r"^ {0,3}\[[^\]\n]{1,999}\]:", re.MULTILINE)
"""The label of a link reference definition."""
_LABEL_USED = re.compile(r"(?<=\])\[[^\]\n]{1,999}\]")
"""The label a full reference link names its definition by (`[text][1]`): the link shows the text alone."""
_DEEP = re.compile(r"^(?:[ \t]*+(?:>|[-+*](?=[ \t])|\d{1,9}+[.)](?=[ \t]))){32}", re.MULTILINE)
"""Block quotes and lists nested 32 deep: no answer writes them, and the parser's cost grows faster than the
text there, so such a text is not even counted."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """What one sendMessage / editMessageText / sendMessageDraft carries.

    The entities stay telegramify-markdown's until a call sends them: cutting an answer measures several
    renderings for each one that goes, and a python-telegram-bot `MessageEntity` costs more to build than the
    conversion that found it.
    """

    text: str
    marks: tuple[telegramify_markdown.MessageEntity, ...] = ()

    @property
    def entities(self) -> tuple[MessageEntity, ...]:
        """The entities as python-telegram-bot sends them: the first `MAX_ENTITIES` in the text, clipped to it
        (its trailing space is stripped)."""
        if not self.marks:
            return ()
        limit = utf16_len(self.text)
        shown = sorted((mark for mark in self.marks if mark.offset < limit), key=lambda m: (m.offset, -m.length))
        return tuple(_entity(mark, limit) for mark in shown[:MAX_ENTITIES])


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: how Telegram counts the 4,096 limit and entity offsets."""
    return len(text.encode("utf-16-le")) // 2


@lru_cache(maxsize=64)
def render(markdown: str, *, plain: bool = False) -> Rendered:
    """Render the model's Markdown for Telegram; `plain` sends the Markdown as typed, without entities.

    Cached because the StreamingHandler measures a text and then sends the same text.
    """
    markdown = markdown.rstrip()  # shows nothing, and a message is sent without it: measured the same either way
    typed = None if plain else _formattable(markdown)
    if typed is not None:
        # No LaTeX: Telegram shows none, and converting it costs time quadratic in a run of "$" or "\\(".
        text, entities = telegramify_markdown.convert(typed, latex_escape=False)
        text = text.rstrip()
        if text and _faithful(markdown, text, entities):
            return Rendered(text, tuple(entities))
    return Rendered(markdown)


def _faithful(markdown: str, text: str, entities: list[telegramify_markdown.MessageEntity]) -> bool:
    """Whether `text` (with `entities`) shows every letter and digit of `markdown` and is not much longer.

    Shown are the text and what its entities carry (a link's target is one tap away, a code block names its
    language). Not counted as written: the numbers of ordered list items, which Markdown renumbers, code fences'
    info strings, the names of character references, which a link's target shows decoded (`&amp;` as `&`), and
    the labels of link reference definitions (`[1]: https://…`: the key a link uses, whose target it shows) and of
    the links that use them (`[text][1]`).
    """
    size = utf16_len(text)
    if size > _GROWTH_FREE and size > _MAX_GROWTH * utf16_len(markdown):
        return False
    written = markdown
    for hidden, kept in ((_ORDERED_ITEM, ""), (_FENCE_INFO, r"\1"), (_REFERENCE, ""), (_LABEL, ""), (_LABEL_USED, "")):
        written = hidden.sub(kept, written)
    carried = "".join(
        f"{entity.url or ''}{entity.language or ''}" for entity in entities if entity.url or entity.language
    )
    return not _letters(written) - _letters(text + carried)


def _letters(text: str) -> Counter[str]:
    return Counter(filter(str.isalnum, text))


def _formattable(markdown: str) -> str | None:
    """`markdown` as `as_typed` makes it, or None when it is too dense to format within the bound."""
    if _too_dense(markdown):
        return None
    return as_typed(markdown)


def _too_dense(markdown: str) -> bool:
    """Whether `markdown` has more Markdown structure than any real answer of its size, so that converting it
    would cost more than the bound on one render: it is then sent as typed (every character shown, unformatted).

    Counting the parser's events is cheap next to converting them; most texts are cleared by counting the
    characters that can make any at all, and deep nesting is refused before parsing.
    """
    if _DEEP.search(markdown):
        return True
    allowed = max(_MAX_COST, _MAX_COST * len(markdown) // _PER_CHARS)
    if sum(map(markdown.count, _MARKUP)) + markdown.count("\n") <= allowed // _MAX_CHAR_COST:
        return False
    budget = allowed - 2 * _PLAIN * markdown.count("||")  # telegramify-markdown makes each `||` spoiler mark HTML
    for event, _ in pyromark.events_with_range(markdown, options=STANDARD_OPTIONS):  # unmerged text, as converted
        budget -= _PLAIN if type(event) is dict and "Text" in event else _cost(event)
        if budget < 0:
            return True
    return False


def _cost(event: object) -> int:
    if not isinstance(event, dict):
        return _COSTS.get(event, _PLAIN) if isinstance(event, str) else _PLAIN  # "Rule", "SoftBreak", ...
    tag = event.get("Start") or event.get("End")
    if tag is None:
        return _PLAIN
    return _COSTS.get(tag if isinstance(tag, str) else next(iter(tag)), _PLAIN)


def measure(markdown: str) -> int:
    """The visible length of `markdown` once rendered, in UTF-16 units."""
    return utf16_len(render(markdown).text)


def ceiling(markdown: str) -> int:
    """A length `measure(markdown)` never exceeds, without rendering: a rendering is kept only while it is at most
    `_MAX_GROWTH` times as long as its Markdown (past `_GROWTH_FREE`), and otherwise the Markdown is sent as typed.
    It lets a cut take a message that surely fits without paying for its rendering (see `split_to_fit`)."""
    return max(_GROWTH_FREE, _MAX_GROWTH * utf16_len(markdown.rstrip()))


def as_typed(markdown: str) -> str | None:
    """`markdown` with a backslash before each `<` that opens raw HTML, each `&` that opens a character
    reference and each `$` of math, so all render as the characters typed; everything else (code, autolinks, link
    targets) is as it was. (Left to telegramify-markdown, a run of `$` costs it a parse per pair.)
    None when no few passes get there, or the text they make is too dense to format (then the text is best sent
    as typed).

    The parser telegramify-markdown uses decides what is HTML, so nothing that is Markdown is touched. Escaping
    the `<` at the start of an HTML block turns the block into a paragraph, in which the parser would find the rest
    of its tags as inline HTML, and the next line may start an HTML block of its own: so every `<` and `&` inside
    an HTML block is escaped at once (a block of a thousand lines costs one pass, not a thousand), and passes
    repeat while the parser still finds HTML.
    """
    if "<" not in markdown and "&" not in markdown and "$" not in markdown:
        return markdown
    for _ in range(_MAX_PASSES):
        offsets = _read_as_html(markdown)
        if not offsets:
            return markdown
        source = markdown.encode()
        bounds = [0, *offsets, len(source)]
        markdown = b"\\".join(source[a:b] for a, b in pairwise(bounds)).decode()
        if _too_dense(markdown):  # HTML turned to text can be denser: then no further pass is worth its cost
            return None
    return None if _read_as_html(markdown) else markdown


def _read_as_html(markdown: str) -> list[int]:
    """UTF-8 offsets of the `<` and `&` the parser reads as raw HTML or a character reference (in an HTML block,
    all of them) and of the `$` it reads as math, ascending."""
    source = markdown.encode()
    offsets: list[int] = []
    in_code = False
    for event, span in pyromark.events_with_range(markdown, options=STANDARD_OPTIONS):
        if not isinstance(event, dict):
            continue
        text = event.get("Text")
        if isinstance(text, str):  # most events: only a character reference there is read as something else
            start = span["start"]
            if not in_code and source.startswith(b"&", start) and _decoded(text, source, start, span["end"]):
                offsets.append(start)
            continue
        start, end = span["start"], span["end"]
        opened = event.get("Start")
        if isinstance(opened, dict) and "CodeBlock" in opened:
            in_code = True
        elif event.get("End") == "CodeBlock":
            in_code = False
        elif opened == "HtmlBlock":
            offsets.extend(match.start() for match in _HTML_SPECIALS.finditer(source, start, end))
        elif "InlineMath" in event or "DisplayMath" in event:  # Telegram shows no math: the `$` are text
            offsets.extend(match.start() for match in _DOLLAR.finditer(source, start, end))
        elif "InlineHtml" in event:
            at = source.find(b"<", start, end)
            if at >= 0:
                offsets.append(at)
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
