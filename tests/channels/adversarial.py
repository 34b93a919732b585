"""Model text built to be expensive or lossy to render and cut: what tests/channels/test_bounds.py and
bench/worst_case.py throw at Telegram's renderer and at the splitter.

Each answer is a few "units" of pathological Markdown repeated to a given size, mixed with words so there are
letters and digits to lose: raw HTML block lines, runs of `*_`, many fence lines, long `>` runs, thousands of
backticks, tables (one padded to a wide header renders to many times its length), link reference definitions
(which Markdown shows nothing of), LaTeX delimiters, brackets, character references, deep lists, runs of blank
lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hypothesis import strategies as st

from channels.telegram.render import render

UNITS = (
    "<div>\n",
    "<tr><td>cell 7</td></tr>\n",
    "<table>\n",
    "<!-- ",
    "<p>a</p>",
    "a <b> ",
    "<",
    "<a ",
    "*_",
    "_*a ",
    "**a ",
    "*a _b ",
    "~~a ",
    "~",
    "```\n",
    "```py\nx = 1\n",
    "~~~\n",
    ">",
    "> ",
    "> > > > > > > > a\n",
    "`",
    "``",
    "`a` ",
    "| a | b |\n|---|---|\n",
    "| 1 | 2 |\n",
    "| a header cell far wider than the cells under it | b |\n|---|---|\n",  # rows padded to it: ~10x the text
    "| 1 |\n",
    "| x ",
    "|",
    "[",
    "[a](",
    "[a](b) ",
    "![",
    "[^",
    "[^1]: note 1\n",
    "[ref]: http://example.com/9\n",
    "&amp; ",
    "&#123;",
    "&",
    "<http://a.b/c1> ",
    "$",
    "$$",
    "\\(",
    "\\",
    "\\*",
    "# a\n",
    "a\n=\n",
    "---\n",
    "- ",
    "- a\n",
    "  - b\n",
    "1. ",
    "1) x\n",
    "\n",
    "\n\n",
    "\t",
    "word ",
    "Q9 ",
    "数据。",
    "👩‍💻",
    "🇺🇦",
    "e\u0301",
    "\u200b",
)


@st.composite
def pathological(draw: st.DrawFn, size: int) -> str:
    """About `size` characters: one to four units, each repeated for its share, in drawn order."""
    units = draw(st.lists(st.sampled_from(UNITS) | st.text(min_size=1, max_size=12), min_size=1, max_size=4))
    share = size // len(units)
    parts = [(unit * (share // len(unit) + 1))[:share] for unit in units]
    if draw(st.booleans()):  # a backtick line of thousands first: the splitter once cut it for ever
        parts.insert(0, "`" * draw(st.integers(3, 8000)) + "\n")
    return "".join(parts)


def cpu(call: Callable[[], object]) -> float:
    """The least thread CPU seconds of three runs of `call`, with Telegram's render cache emptied before each:
    this thread's CPU rather than wall time, and the least run, so that a busy machine inflates it little."""
    best = float("inf")
    for _ in range(3):
        render.cache_clear()
        started = time.thread_time()
        call()
        best = min(best, time.thread_time() - started)
    return best
