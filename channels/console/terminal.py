"""The console on a terminal: prompt_toolkit keeps the input line at the bottom, rich renders the Markdown.

The screen has two parts. Above, what is finished: questions and answers, written once and left to scroll. Below,
the live area that prompt_toolkit redraws in place (diffing, so nothing flickers): the reply being written
(rendered Markdown, the last screenful of it), the status line while a tool runs, the questions typed meanwhile
that wait for their answer, and the input line with line editing, history (BOT_DATA_DIR/console-history) and
multi-line input (Alt-Enter or Esc Enter for a new line, pasted newlines kept). Typing never lands inside an answer,
because the answer is not on the input line's row: prompt_toolkit owns the terminal while the chat runs.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.application import run_in_terminal
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

from channels.console.surfaces import BOT, INDENT, YOU
from channels.console.text import render_markdown, safe_text

_BOLD, _CYAN, _DIM, _RESET = "\x1b[1m", "\x1b[1;36m", "\x1b[2m", "\x1b[0m"
_INPUT_ROWS = 3
"""Rows of the live area kept for the input line and a little air: the reply shows its last screenful minus these."""


STOP_HINT = "(answering… Ctrl-C or /stop stops it)"


class Interrupted(Exception):
    """Ctrl-C with no reply to stop: the user wants to leave."""


class EndOfInput(Exception):
    """Ctrl-D on an empty input line."""


class TerminalScreen:
    """The terminal UI of one console session.

    Args:
        history: The file that keeps the input history across sessions (None: this session only).
        on_interrupt: Called on Ctrl-C (or SIGINT); returns True when it stopped a reply, False to leave.
        after_reply: Asked when a reply is over for a line to show under it (or None).
    """

    def __init__(
        self,
        history: Path | None,
        *,
        on_interrupt: Callable[[], bool],
        after_reply: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._on_interrupt = on_interrupt
        self._after_reply = after_reply
        self._reply: str | None = None
        self._reply_lines: list[str] = []
        self._status: str | None = None
        self.waiting: list[str] = []
        """Questions typed while a reply is written, shown under it until their own answer starts."""
        self._replies = 0
        if history is not None:
            history.parent.mkdir(parents=True, exist_ok=True)
        self._session: PromptSession[str] = PromptSession(
            history=FileHistory(str(history)) if history is not None else InMemoryHistory(),
            key_bindings=self._bindings(),
            erase_when_done=True,
            interrupt_exception=Interrupted,
            eof_exception=EndOfInput,
            prompt_continuation=lambda width, line, wrapped: " " * width,
            placeholder=lambda: ANSI(f"{_DIM}{STOP_HINT}{_RESET}") if self._replies else "",
        )

    async def read(self) -> str:
        """The next line the user enters.

        Raises:
            Interrupted: Ctrl-C with no reply to stop.
            EndOfInput: Ctrl-D on an empty line.
        """
        return await self._session.prompt_async(self._message)

    # -- what a reply surface draws (channels.console.surfaces.Screen) ---------------------------------------

    def show(self, markdown: str | None) -> None:
        self._reply = markdown
        self._reply_lines = _reply_lines(markdown, _columns()) if markdown else []
        self._redraw()

    def status(self, text: str | None) -> None:
        self._status = text
        self._redraw()

    async def commit(self, markdown: str) -> None:
        self._reply, self._reply_lines = None, []
        await self.write("\n".join(_reply_lines(markdown, _columns())))

    async def say(self, lines: list[str]) -> None:
        await self.write("\n".join(_you(line) for line in lines))

    def started(self) -> None:
        """A reply starts: until it is done, the empty input line says how to stop it."""
        self._replies += 1
        self._redraw()

    async def done(self) -> None:
        self._replies = max(0, self._replies - 1)
        self._redraw()
        if note := self._after_reply():
            await self.write(f"{_DIM}{safe_text(note)}{_RESET}")

    async def write(self, text: str) -> None:
        """Write lines (ANSI allowed, already made safe) above the live area, where they stay."""

        def put() -> None:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

        await run_in_terminal(put)

    # -- the live area -------------------------------------------------------------------------------------

    def _message(self) -> ANSI:
        """The live area above the input line, and the input line's prompt."""
        rows = max(4, shutil.get_terminal_size().lines)
        lines = list(self._reply_lines)
        if self._status:
            lines.append(f"{_DIM}  ⚙ {safe_text(self._status)}{_RESET}")
        lines.extend(f"{_DIM}{_you(line)}{_RESET}" for line in self.waiting)
        room = rows - _INPUT_ROWS
        if len(lines) > room:
            hidden = len(lines) - room + 1
            above = f"{_DIM}{INDENT}… {hidden} more lines above; the whole answer shows when it is done{_RESET}"
            lines = [above, *lines[hidden:]]
        lines.append(f"{_BOLD}{YOU}{_RESET}")
        return ANSI("\n".join(lines))

    def _redraw(self) -> None:
        app = self._session.app
        if app.is_running:
            app.invalidate()

    def _bindings(self) -> KeyBindings:
        bindings = KeyBindings()

        @bindings.add("c-c")
        @bindings.add("<sigint>")
        def _interrupt(event: KeyPressEvent) -> None:
            if not self._on_interrupt():
                event.app.exit(exception=Interrupted())

        @bindings.add("escape", "enter")
        def _new_line(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text("\n")

        return bindings


def _columns() -> int:
    return max(20, shutil.get_terminal_size().columns)


def _reply_lines(markdown: str, columns: int) -> list[str]:
    """A reply rendered under a "bot ›" label, wrapped to the terminal with a hanging indent."""
    rendered = render_markdown(markdown, columns - len(BOT) - 1).split("\n")
    return [f"{_CYAN}{BOT}{_RESET}{rendered[0]}", *(INDENT + line for line in rendered[1:])]


def _you(text: str) -> str:
    lines = safe_text(text).split("\n")
    return "\n".join([f"{_BOLD}{YOU}{_RESET}{lines[0]}", *(INDENT + line for line in lines[1:])])
