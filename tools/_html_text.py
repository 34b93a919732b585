"""HTML to readable plain text with lxml's parser (libxml2), for `web_fetch`.

The model needs the words and the paragraph structure of a page, not its markup: scripts, styles and other
non-content elements are dropped, block elements become line or paragraph breaks, list items get a "- ",
whitespace is collapsed except inside <pre>. It is deliberately not a renderer: no CSS, no hidden-element
detection, no layout of tables beyond one line per row.

The page is hostile input, so the work is bounded: libxml2's tokenizer is linear in the page (the standard
library's html.parser is quadratic on pages such as `<a ` repeated: 48 kB of it took 17 s), the page is fed in
pieces so a `stop` request ends the work between two of them, and parsing ends once the text is longer than
anyone will read or after more elements than any real page has.
"""

from __future__ import annotations

import re
import threading

from lxml import etree  # type: ignore[import-untyped]  # lxml ships no type hints

# Only elements whose content is never prose. Not <head> (its end tag is optional, and a parser that does not
# infer it would hide the whole page) and not <iframe>/<object> (their content is fallback text).
_SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "math"})
_PARAGRAPH = frozenset(
    {
        "p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl", "section",
        "article", "header", "footer", "nav", "main", "aside", "figure", "form", "fieldset", "hr", "address",
        "details",
    }
)  # fmt: skip
_LINE = frozenset({"br", "div", "li", "tr", "dt", "dd", "figcaption", "caption", "summary", "option", "label"})
_CELL = frozenset({"td", "th"})
_WHITESPACE = re.compile(r"\s+")


_PIECE = 32 * 1024
"""Characters fed to the parser at a time: the granularity of `stop` and of the limits."""
_MAX_ELEMENTS = 100_000
"""Elements read at most (each costs a call into Python): more than a long article has, and a page of nothing but
tags would otherwise cost half a second per MiB."""


class Stopped(Exception):
    """The caller asked the extraction to stop (its time ran out)."""


class _TextExtractor:
    """An lxml parser target: collects text and break requests; breaks are applied lazily so no run of tags
    stacks blank lines."""

    def __init__(self) -> None:
        self.length = 0
        self.elements = 0
        self.title_parts: list[str] = []
        self._parts: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0
        self._in_title = False
        self._pending_break = 0
        self._at_line_start = True

    def start(self, tag: str, attrib: object) -> None:
        self.elements += 1
        if tag == "title" and not self._skip_depth:  # not an <svg> <title>
            self._in_title = True
        if tag in _SKIPPED:
            self._skip_depth += 1
            return
        if tag == "pre":
            self._pre_depth += 1
        self._break_for(tag)
        if tag == "li" and not self._skip_depth:
            self._write("- ")

    def end(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIPPED:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
        if tag in _CELL and not self._at_line_start:
            self._write(" ")
        self._break_for(tag)

    def data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
            return
        if self._skip_depth:
            return
        if self._pre_depth:
            self._write(data)
            return
        text = _WHITESPACE.sub(" ", data)
        if self._at_line_start or (self._parts and self._parts[-1].endswith(" ")):
            text = text.lstrip(" ")
        if text:
            self._write(text)

    def _break_for(self, tag: str) -> None:
        if self._skip_depth:
            return
        if tag in _PARAGRAPH:
            self._pending_break = max(self._pending_break, 2)
        elif tag in _LINE:
            self._pending_break = max(self._pending_break, 1)

    def _write(self, text: str) -> None:
        if self._pending_break and self._parts:
            # Trailing spaces before a break are noise; the break itself replaces them.
            self._parts[-1] = self._parts[-1].rstrip(" ")
            self._parts.append("\n" * self._pending_break)
        self._pending_break = 0
        self._parts.append(text)
        self.length += len(text)
        self._at_line_start = text.endswith("\n")

    def close(self) -> None:
        """Called by lxml at the end of the document; the text is read with `text`."""

    def text(self) -> str:
        joined = "".join(self._parts)
        joined = re.sub(r"[ \t]+\n", "\n", joined)
        return re.sub(r"\n{3,}", "\n\n", joined).strip()


def html_to_text(html: str, *, max_chars: int = 1_000_000, stop: threading.Event | None = None) -> tuple[str, str]:
    """Extract the title and the readable body text of an HTML document.

    Malformed markup is tolerated the way browsers do (the parser recovers from any error).

    Args:
        html: The decoded page.
        max_chars: Parsing ends once the text holds more than this (the caller cuts it anyway).
        stop: Set by another thread to end the work early; checked between pieces of the page.

    Returns:
        (title, text): the <title> with whitespace collapsed ("" if absent) and the body text.

    Raises:
        Stopped: `stop` was set.
    """
    extractor = _TextExtractor()
    parser = etree.HTMLParser(target=extractor, recover=True, no_network=True, huge_tree=True, remove_pis=True)
    for at in range(0, len(html), _PIECE):
        if stop is not None and stop.is_set():
            raise Stopped
        parser.feed(html[at : at + _PIECE])
        if extractor.length > max_chars or extractor.elements > _MAX_ELEMENTS:
            break
    if html:
        parser.close()
    title = _WHITESPACE.sub(" ", "".join(extractor.title_parts)).strip()
    return title, extractor.text()
