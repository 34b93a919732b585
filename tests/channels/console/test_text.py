"""What the console writes: model text can never drive the terminal, and Markdown is rendered, not shown raw."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from channels.console.text import render_markdown, safe_text

HOSTILE = {
    "OSC 0 (window title)": "\x1b]0;owned\x07",
    "OSC 52 (clipboard write)": "\x1b]52;c;cm0gLXJmIH4=\x07",
    "CSI 2J (clear screen)": "\x1b[2J\x1b[H",
    "C1 CSI": "\x9b2J",
    "OSC with ST": "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",
    "bell and backspace": "\x07\x08\x08\x08",
    "carriage return overwrite": "safe\rEVIL",
}


def test_control_sequences_are_shown_harmlessly() -> None:
    for name, sequence in HOSTILE.items():
        shown = safe_text(f"before {sequence} after")
        assert not any(ord(c) < 0x20 and c not in "\n\t" for c in shown), name
        assert not any(0x7F <= ord(c) <= 0x9F for c in shown), name
        assert shown.startswith("before ") and shown.endswith(" after"), name
    assert safe_text("\x1b]0;owned\x07") == "␛]0;owned␇"  # visible, so the user sees something was there


@given(st.text())
def test_no_input_gets_a_control_character_through_even_rendered(text: str) -> None:
    for out in (safe_text(text), render_markdown(text, 60)):
        stripped = out.replace("\x1b[", "")  # rendering adds its own SGR styles, and only those
        assert not any((ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in stripped)


def test_markdown_is_rendered_and_wrapped_at_words() -> None:
    out = render_markdown("A **bold** claim and `code` " + "word " * 30, 40)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert "**" not in plain and "`" not in plain and "bold claim" in plain
    assert all(len(line.rstrip()) <= 40 and not line.rstrip().endswith("wor") for line in plain.split("\n"))
