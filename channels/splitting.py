"""Cutting a Markdown text that outgrew one message into a message that fits and the rest.

Platform-neutral: the caller says what "fits" means (Telegram counts UTF-16 units after rendering, Slack counts
Markdown characters). The cut is made at the best boundary the message can hold — paragraph, then line, then
sentence, then word, then anywhere — so that no message is less than half full just to reach a nicer boundary.
A code fence left open by the cut is closed in the first message and reopened (same info string) in the next,
so both render as code. A table cut between its rows starts the next message with its header row again: rows
without a header are no table, and would show as raw pipes. Only the whitespace at the cut is dropped; every other
character is kept exactly once (a repeated table header is the one addition).

A cut never falls inside a user-perceived character: an emoji built of several code points (👩‍💻, 🇺🇦, 👍🏽, 1️⃣),
or a letter and its combining marks (Arabic and Hebrew vowel points, accents), would otherwise arrive as two broken
halves. Text without spaces can still be cut where a reader would break a line: after a CJK full stop or a
zero-width space.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Callable

_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})([^\n]*)$", re.MULTILINE)
_BOUNDARIES = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraph
    re.compile(r"\n\s*"),  # line
    re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])\s*"),  # sentence (CJK writes no space after one)
    re.compile(r"\s+|(?<=\u200b)"),  # word (a zero-width space marks a break where words are not spaced)
)
_TABLE_DELIMITER = re.compile(r" {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*")
_ESCAPED = re.compile(r"\\.")
_CODE_SPAN = re.compile(r"`[^`]*`")
_LOOKAHEAD = 64
"""How far past the longest fitting prefix a separator may reach (it is dropped, so it need not fit)."""
_CANDIDATES = 16
"""Boundaries of one kind weighed per cut (see `_best_cut`)."""
_PROBES = 2
"""Candidate messages measured per cut at most (see `split_to_fit`): Telegram's measure renders the candidate,
and two renderings of the densest text a message can hold are the most one cut may cost."""
_STRETCH = 1.5
"""A second candidate is at most this many times as long as the first: the measure roughly follows the length,
and a longer candidate costs longer to measure."""
_RETRIES = 3
"""Boundaries tried at most whose message, once its fence is closed, the ceiling does not clear after all."""
_FULL = 0.9
"""A first message measured at least this full is taken: closer is not worth another measure."""
_MAX_REOPEN = 64
"""Longest fence line repeated at the top of the next message (see `_Fences.closed`)."""
_JOINER = "\u200d"
_VIRAMA = 9
"""The canonical combining class of a virama, which joins the consonants around it into one conjunct."""
_EXTENDERS = frozenset(["\u200c", _JOINER, *map(chr, range(0x1F3FB, 0x1F400)), *map(chr, range(0xE0020, 0xE0080))])
"""Characters that belong to the one before them beyond the combining marks: zero-width (non-)joiner, emoji skin
tones, and the tags of subdivision flags (🏴 + tags)."""


def open_fence(text: str) -> str | None:
    """The opening line of a code fence that `text` leaves open, or None.

    A closing fence uses the same character, at least as many of them, and no info string (CommonMark).
    """
    return _Fences(text).open_at(len(text))


_Open = tuple[str, str] | None
"""A fence left open: its opening line (stripped) and its run of backticks or tildes."""


def _after(state: _Open, line: str, run: str, rest: str) -> _Open:
    """The open fence after a fence line (`run` of backticks or tildes, then `rest`), given the one before."""
    if state is None:
        if run[0] == "`" and "`" in rest:
            return None  # not a fence: an info string may not contain a backtick
        return line.strip(), run
    marker = state[1]
    if run[0] == marker[0] and len(run) >= len(marker) and not rest.strip():
        return None
    return state


class _Fences:
    """Which code fence each prefix of one text leaves open. A cut asks about many prefixes, and a text of
    thousands of fence lines must not be scanned again for each: its fence lines are read once, in order, and only
    as far as a question reaches."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._lines = _FENCE_LINE.finditer(text)
        self._next = next(self._lines, None)  # the first fence line not taken into account yet
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._before: list[_Open] = []  # the open fence before each fence line read
        self._after: list[_Open] = []  # and after it

    def open_at(self, length: int) -> str | None:
        """The opening line of the fence that `text[:length]` leaves open, or None."""
        while self._next is not None and self._next.start() < length:
            line = self._next
            state = self._after[-1] if self._after else None
            self._starts.append(line.start())
            self._ends.append(line.end())
            self._before.append(state)
            self._after.append(_after(state, line.group(0), line.group(1), line.group(2)))
            self._next = next(self._lines, None)
        at = bisect.bisect_left(self._starts, length) - 1  # the last fence line that starts before the end
        if at < 0:
            return None
        state = self._after[at]
        if self._ends[at] > length:  # the prefix ends inside that line: what its part says
            part = _FENCE_LINE.fullmatch(self._text, self._starts[at], length)
            state = _after(self._before[at], part.group(0), part.group(1), part.group(2)) if part else self._before[at]
        return state[0] if state else None

    def closed(self, length: int) -> tuple[str, str]:
        """`text[:length]` with an open fence closed, and the line that reopens it in the next message ("" if none).

        The reopening line is the opening line when that is short, as every real one is; an opening line of
        thousands of backticks (or a huge info string) is reopened as a plain fence of three, because repeating it
        would fill the next message before any of the text moves on, and the cutting would never end.
        """
        head, opening = self._text[:length], self.open_at(length)
        if opening is None:
            return head, ""
        match = re.match(r"`+|~+", opening)
        assert match is not None  # only fence lines open fences
        marker = match.group(0)
        if len(opening) > _MAX_REOPEN:
            opening = marker if len(marker) <= _MAX_REOPEN else marker[0] * 3
        return head.rstrip() + "\n" + marker, opening + "\n"


def _table_header(head: str, gap: str, rest: str) -> str:
    """The header and delimiter rows of a table cut between its rows, to open the next message with ("" if none).

    `gap` is the whitespace the cut drops: one line break between rows (a blank line ends the table, and a cut
    inside a row leaves half a row either side). Only once the head holds a row of the table's body, so that every
    message takes at least one row.
    """
    if gap.count("\n") != 1 or "|" not in rest.split("\n", 1)[0]:
        return ""  # not between two rows of one table
    lines = head[head.rfind("\n\n") + 1 :].strip("\n").split("\n")
    if "|" not in lines[-1]:
        return ""  # the head does not end in a table row
    for at in range(len(lines) - 2, 0, -1):
        if _TABLE_DELIMITER.fullmatch(lines[at]) and "|" in lines[at - 1]:
            return f"{lines[at - 1]}\n{lines[at]}\n"
        if "|" not in lines[at]:
            return ""
    return ""


def _inline_open(text: str, cut: int) -> bool:
    """Whether cutting at `cut` would split an inline span (emphasis, strikethrough, code) of its paragraph.

    Inline spans never cross a blank line, so only the paragraph up to the cut is looked at; an odd number of a
    marker there means a span may be open. Cheap and conservative: a stray marker only makes a cut look unsafe,
    and the splitter then prefers another boundary.
    """
    start = text.rfind("\n\n", 0, cut) + 1
    paragraph = _ESCAPED.sub("", text[start:cut])
    if paragraph.count("`") % 2:
        return True
    paragraph = _CODE_SPAN.sub("", paragraph)
    if paragraph.count("~~") % 2:
        return True
    for single in ("*", "_"):
        double = paragraph.count(single * 2)  # "**" opens one span, and counted as two "*" it would look closed
        if double % 2 or (paragraph.count(single) - 2 * double) % 2:
            return True
    return False


def _regional(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"  # a flag is two of these


def _inside_cluster(text: str, at: int) -> bool:
    """Whether `text[at - 1]` and `text[at]` belong to one user-perceived character (Unicode's grapheme cluster
    rules that matter in chat: combining marks and other extenders, joiners, Indic conjuncts, flag pairs, CR LF)."""
    before, after = text[at - 1], text[at]
    if after in _EXTENDERS or before == _JOINER or unicodedata.category(after) in ("Mn", "Me", "Mc"):
        return True
    if unicodedata.combining(before) == _VIRAMA and unicodedata.category(after) == "Lo":
        return True  # न् + द is one conjunct, न्द
    if _regional(before) and _regional(after):
        run = at
        while run > 0 and _regional(text[run - 1]):
            run -= 1
        return (at - run) % 2 == 1  # flags pair up from the start of the run
    return before == "\r" and after == "\n"


def _cluster_start(text: str, at: int) -> int:
    """The nearest position at or before `at` that is not inside a user-perceived character (`at` if none is)."""
    cut = at
    while 0 < cut < len(text) and _inside_cluster(text, cut):
        cut -= 1
    return cut or at  # one "character" longer than a whole message: cut it where it must be


def _best_cut(text: str, fences: _Fences, longest: int) -> tuple[int, int]:
    """Where the first message ends and the next begins, for a first message of at most `longest` characters.

    Only the latest `_CANDIDATES` boundaries of each kind are weighed (each costs a look at its paragraph), so a
    text with thousands of boundaries that all split a span costs no more than one with a few.
    """
    floor = longest // 2
    region = text[floor : longest + _LOOKAHEAD]
    fallback: tuple[int, int] | None = None
    for paragraph_break, boundary in zip((True, False, False, False), _BOUNDARIES, strict=True):
        candidates = [m for m in boundary.finditer(region) if m.start() > 0 and floor + m.start() <= longest]
        for match in reversed(candidates[-_CANDIDATES:]):  # the latest boundary first: the fullest message
            cut = (floor + match.start(), floor + match.end())
            if paragraph_break or not _inline_open(text, cut[0]) or fences.open_at(cut[0]):
                return cut
            fallback = fallback or cut
    if fallback is not None:  # every cut there splits a span: an earlier paragraph break, even if less full
        earlier = [m for m in _BOUNDARIES[0].finditer(text[: longest + 1]) if m.start() > 0]
        return (earlier[-1].start(), earlier[-1].end()) if earlier else fallback
    point = _cluster_start(text, longest)
    return point, point


def split_to_fit(
    text: str, measure: Callable[[str], int], limit: int, *, window: int, ceiling: Callable[[str], int] | None = None
) -> tuple[str, str]:
    """Split `text` into a first message that fits and the text that continues in the next message.

    The work is bounded whatever the text. The longest prefix that surely fits is found on `ceiling`, a cheap
    bound of the measure (or on the measure itself, when it is cheap and no ceiling is given). Past it, at most
    `_PROBES` candidate messages are measured, each already cut at its best boundary, so that a measure that
    renders the whole candidate (Telegram's) runs at most twice: the first candidate is as long as a message, the
    second scaled by how far the first was off (a measure roughly follows the length, so one candidate usually
    lands in the full band below the limit). The longest candidate that fits is taken, else the sure one. Only for
    a limit below anything the ceiling clears are a few more candidates measured.

    Args:
        text: Markdown that does not fit in one message.
        measure: The size of a candidate message as the platform counts it.
        limit: The largest size a message may have.
        window: How many leading characters to consider; bounds the work for a huge text (the rest is tail).
        ceiling: A size `measure` never exceeds, cheap to compute; `measure` itself when omitted (a cheap one).

    Returns:
        (head, tail): `head` fits, starts with the first character that is not whitespace (so it is never blank:
        a platform refuses an empty message) and ends at the best boundary; `tail` is the remaining text (with a
        reopened code fence, or a table's header rows, first where the cut was inside one). ("", "") for a text
        of whitespace alone.

    Raises:
        ValueError: When not even one character fits (a limit no platform has).
    """
    text = text.lstrip()  # a message never starts with the blank lines between two (nor is it only those)
    if not text:
        return "", ""
    end = min(len(text), window)
    fences = _Fences(text[: end + _LOOKAHEAD])  # as far as a cut looks
    sure = _longest_sure(fences, end, ceiling or measure, limit)
    best = _cut_within(text, fences, sure, ceiling or measure, limit) if sure else None  # (cut, resume, head, reopen)
    guess = min(limit, end)
    target = limit * (1 + _FULL) / 2  # aim inside the full band, not at its edge
    probes = 0
    # More probes only while nothing is known to fit: a limit below what the ceiling can ever clear.
    while ceiling and guess > (best[0] if best else 0) and probes < (_PROBES if best else _PROBES + _RETRIES):
        probes += 1
        cut, resume = _best_cut(text, fences, guess)
        head, reopen = fences.closed(cut)
        measured = measure(head)
        if measured <= limit and (best is None or cut > best[0]):
            best = (cut, resume, head, reopen)
            if measured >= limit * _FULL:
                break
        stretched = int(guess * _STRETCH) if measured <= limit else guess - 1
        guess = min(end, stretched, int(cut * target / max(1, measured)))
    if best is None:
        if measure(fences.closed(1)[0]) > limit:
            raise ValueError("not even one character fits in a message")
        best = (1, 1, *fences.closed(1))
    cut, resume, head, reopen = best
    tail = text[resume:]
    return head, (reopen or _table_header(head, text[cut:resume], tail)) + tail


def _longest_sure(fences: _Fences, end: int, bound: Callable[[str], int], limit: int) -> int:
    """A prefix of the text, at most `end` long, whose message (fence closed) `bound` says fits: the first one
    found in the full band below the limit, else the longest; 0 if none.

    A binary search from a message's length: the bound grows with the prefix but for a fence closed or opened on
    the way, and any prefix it clears will do.
    """
    fits, over = 0, end + 1
    middle = min(limit, end)
    while over - fits > 1:
        size = bound(fences.closed(middle)[0])
        if size > limit:
            over = middle
        elif size >= limit * _FULL:
            return middle
        else:
            fits = middle
        middle = (fits + over) // 2
    return fits


def _cut_within(
    text: str, fences: _Fences, longest: int, bound: Callable[[str], int], limit: int
) -> tuple[int, int, str, str]:
    """(cut, resume, head, reopen) of the best cut at most `longest` into `text` whose head `bound` clears.

    Closing a fence at a nicer boundary can make the head longer than the prefix it was cut from; then an
    earlier boundary is tried, and a few misses in, the cut is made at `longest` itself (cleared by the caller).
    """
    first = longest
    for _ in range(_RETRIES):
        cut, resume = _best_cut(text, fences, longest)
        head, reopen = fences.closed(cut)
        size = bound(head)
        if size <= limit:
            return cut, resume, head, reopen
        longest = max(1, min(cut - 1, int(cut * limit / size)))
    head, reopen = fences.closed(first)
    return first, first, head, reopen
