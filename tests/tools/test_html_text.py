"""HTML to text: what the model reads of a page."""

from __future__ import annotations

import threading
import time

import pytest

from tools._html_text import Stopped, html_to_text


def test_structure_and_whitespace() -> None:
    title, text = html_to_text(
        "<title>T</title><h2>Head</h2><p>a  <i>b</i>\n c&nbsp;&amp; d</p><div>x<br>y</div>"
        "<table><tr><th>k</th><td>v</td></tr><tr><td>w</td></tr></table>"
    )
    assert title == "T"
    assert text == "Head\n\na b c & d\n\nx\ny\n\nk v\nw"


def test_pre_keeps_its_layout() -> None:
    _, text = html_to_text("<p>code:</p><pre>def f():\n    return 1</pre><p>after</p>")
    assert text == "code:\n\ndef f():\n    return 1\n\nafter"


def test_unclosed_head_does_not_hide_the_page() -> None:
    # </head> is optional in HTML; a converter that skipped <head> would return nothing here.
    title, text = html_to_text("<html><head><title>Sloppy</title><body><p>visible</p>")
    assert (title, text) == ("Sloppy", "visible")


def test_svg_title_is_not_the_page_title() -> None:
    title, text = html_to_text("<body><svg><title>icon</title><text>drawn</text></svg><p>words</p></body>")
    assert (title, text) == ("", "words")


def test_non_content_is_dropped() -> None:
    html = (
        "<style>.a{}</style><script>x()</script><noscript>js</noscript>"
        "<template><p>tpl</p></template><p>kept</p></script>"
    )
    assert html_to_text(html) == ("", "kept")


def test_empty_document() -> None:
    assert html_to_text("") == ("", "")


def test_parsing_a_crafted_page_costs_little_cpu() -> None:
    started = time.thread_time()
    _, text = html_to_text("<p>start</p>" + "<a " * 300_000 + "end")
    assert time.thread_time() - started < 1.0
    assert text.startswith("start")


def test_a_stop_request_ends_the_parse() -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        html_to_text("<p>x</p>" * 100_000, stop=stop)
