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
_PROBES = 4
"""Measures of candidate messages per search at most (see `split_to_fit`); one or two do for real answers."""
_RETRIES = 3
"""Boundaries tried at most whose message, once its fence is closed, does not fit after all."""
_FULL = 0.9
"""A first message measured at least this full is taken: closer is not worth another measure."""
_MAX_REOPEN = 64
"""Longest fence line repeated at the top of the next message (see `_closed`)."""
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
    opening: str | None = None
    marker = ""
    for match in _FENCE_LINE.finditer(text):
        run, rest = match.group(1), match.group(2)
        if opening is None:
            if run[0] == "`" and "`" in rest:
                continue  # not a fence: an info string may not contain a backtick
            opening, marker = match.group(0).strip(), run
        elif run[0] == marker[0] and len(run) >= len(marker) and not rest.strip():
            opening = None
    return opening


def _closed(head: str) -> tuple[str, str]:
    """`head` with an open fence closed, and the line that reopens it in the next message ("" if none).

    The reopening line is the opening line when that is short, as every real one is; an opening line of
    thousands of backticks (or a huge info string) is reopened as a plain fence of three, because repeating it
    would fill the next message before any of the text moves on, and the cutting would never end.
    """
    opening = open_fence(head)
    if opening is None:
        return head, ""
    match = re.match(r"`+|~+", opening)
    assert match is not None  # open_fence only returns fence lines
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


def _best_cut(text: str, longest: int) -> tuple[int, int]:
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
            if paragraph_break or not _inline_open(text, cut[0]) or open_fence(text[: cut[0]]):
                return cut
            fallback = fallback or cut
    if fallback is not None:  # every cut there splits a span: an earlier paragraph break, even if less full
        earlier = [m for m in _BOUNDARIES[0].finditer(text[: longest + 1]) if m.start() > 0]
        return (earlier[-1].start(), earlier[-1].end()) if earlier else fallback
    point = _cluster_start(text, longest)
    return point, point


def split_to_fit(text: str, measure: Callable[[str], int], limit: int, *, window: int) -> tuple[str, str]:
    """Split `text` into a first message that fits and the text that continues in the next message.

    The work is bounded whatever the text: `measure` (which may render the whole candidate, as Telegram's does)
    is called a handful of times, not once per character or per boundary. The longest prefix that fits is found
    by scaling the guess by how far its measure is off, then interpolating between the longest prefix that fits
    and the shortest that does not (a measure roughly follows the length, so one or two guesses land in the last
    few percent below the limit, which is full enough); then the best boundary before it is taken.

    Args:
        text: Markdown that does not fit in one message.
        measure: The size of a candidate message as the platform counts it.
        limit: The largest size a message may have.
        window: How many leading characters to consider; bounds the work for a huge text (the rest is tail).

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

    def size(length: int) -> int:
        return measure(_closed(text[:length])[0])

    fit_size, over_size = size(1), 0
    if fit_size > limit:
        raise ValueError("not even one character fits in a message")
    fit, over = 1, min(len(text), window) + 1  # the longest prefix known to fit, the shortest known not to
    guess = min(limit, over - 1)
    target = limit * (1 + _FULL) / 2  # aim inside the full band, not at its edge
    missed = False  # whether the last guess was too long
    for _ in range(_PROBES):
        measured = size(guess)
        if measured <= limit:
            fit, fit_size, missed = guess, measured, False
        else:
            if missed:  # twice too long: interpolation creeps in from one side, halve instead
                over, over_size = guess, measured
                guess = (fit + over) // 2
                continue
            over, over_size, missed = guess, measured, True
        if fit_size >= limit * _FULL or over - fit <= max(1, fit // 64):
            break
        if over_size > fit_size:  # between a fit and a miss: where the measure crosses the target, if linear
            guess = fit + int((over - fit) * (target - fit_size) / (over_size - fit_size))
        else:  # only fits so far: scale up by how much room is left
            guess = int(guess * target / max(1, measured))
        if not fit < guess < over:
            guess = (fit + over) // 2
    longest = fit
    for _ in range(_RETRIES):
        cut, resume = _best_cut(text, longest)
        head, reopen = _closed(text[:cut])
        measured = measure(head)
        if measured <= limit:
            tail = text[resume:]
            return head, (reopen or _table_header(head, text[cut:resume], tail)) + tail
        # Closing the fence at the nicer boundary made it too long (or the measure is not monotonic): earlier.
        longest = max(1, min(cut - 1, int(cut * limit / measured)))
    head, reopen = _closed(text[:fit])  # measured to fit; only a text built to defeat the search gets here
    return head, reopen + text[fit:]
