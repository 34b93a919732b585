"""Text the console writes: never a raw control sequence, and Markdown rendered for a terminal.

Model text is hostile like any input: an OSC 0 sequence retitles the window, OSC 52 writes the user's clipboard,
CSI 2J clears the screen. Every character that a terminal acts on instead of showing (C0 and C1 controls, DEL)
is replaced by a visible stand-in before anything reaches the terminal, piped or not; newlines and tabs stay.
"""

from __future__ import annotations

import io
import re

from rich.console import Console
from rich.markdown import Markdown

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _stand_in(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control picture": ␛ for ESC, ␇ for BEL
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\x{code:02x}"  # C1 controls have no pictures


def safe_text(text: str) -> str:
    """`text` with every terminal control character made visible and harmless (newlines and tabs kept)."""
    return _CONTROLS.sub(_stand_in, text.replace("\r\n", "\n"))


def render_markdown(text: str, width: int) -> str:
    """`text` (Markdown, possibly cut mid-way) as lines of ANSI-styled text that fit `width` columns.

    rich wraps at words, renders tables, and highlights code blocks; an unclosed fence or emphasis renders as
    far as it goes, so a partial answer is safe to show.
    """
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=max(20, width), force_terminal=True, color_system="256", highlight=False, soft_wrap=False
    )
    console.print(Markdown(safe_text(text), code_theme="monokai", hyperlinks=False))
    return buffer.getvalue().rstrip("\n")
