"""The console channel: a chat in the terminal, or plain text when piped or with `--plain`.

Every line goes through the same conversation runtime as the other channels (`Conversations`): a line typed while
a reply is written waits for it, several are answered as one follow-up turn, `/stop` (or Ctrl-C) stops the reply.
Each reply prints the question(s) it answers first, so the screen reads question, answer, question, answer.

On a terminal, the terminal UI (`channels.console.terminal`) renders the Markdown and keeps the input line at the
bottom. Piped or `--plain`, each answer is printed once, whole, as plain text, after a "you ›" line repeating the
question when stdin is not a terminal (a terminal has shown what was typed already). With piped stdin the lines
are answered one by one, as a script expects, instead of being merged.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TextIO

from channels.capabilities import LiveMode, resolve
from channels.commands import STOP, command_of
from channels.console.files import read_line
from channels.console.surfaces import PICTURES, PlainSurface, TerminalSurface
from channels.console.terminal import EndOfInput, Interrupted, TerminalScreen
from channels.console.text import safe_text
from channels.inbound import Incoming
from channels.surface import ReplySurface

EXIT_INTERRUPTED = 130
YES = frozenset({"y", "yes"})
NO = frozenset({"n", "no"})
"""The answers to a request to approve a tool call (any other line is a new message, which denies it)."""


class Conversations(Protocol):
    """What the console needs of the conversation runtime (`bot.conversations.Conversations`)."""

    def submit(self, incoming: Incoming, surface: Callable[[], ReplySurface]) -> None: ...

    def stop(self, key: str) -> bool: ...

    async def answer_approval(self, key: str, approve: bool, by: str, surface: Callable[[], ReplySurface]) -> bool: ...

    async def drain(self) -> None: ...


class ConsoleChannel:
    """Reads what the user types and hands it to the conversation runtime.

    Args:
        name: The conversation name; memory is kept per name (`console:<name>`).
        mode: STREAM_MODE (None = auto).
        interval: STREAM_EDIT_INTERVAL.
        plain: `--plain`: plain text even on a terminal.
        history: Where the terminal UI keeps the input history.
        pictures: Where pictures the bot sends (charts) are saved.
    """

    def __init__(
        self,
        *,
        name: str = "local",
        mode: LiveMode | None = None,
        interval: float | None = None,
        plain: bool = False,
        history: Path | None = None,
        pictures: Path = PICTURES,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._err = stderr or sys.stderr
        self._echo = not self._in.isatty()
        self.interactive = not plain and self._in.isatty() and self._out.isatty()
        self.profile = resolve("console", "terminal" if self.interactive else "piped", mode=mode, interval=interval)
        self._conversation = f"console:{name}"
        self._history = history
        self._pictures = pictures
        self._waiting: list[tuple[int, str]] = []  # lines typed, not answered yet (their reply prints them first)
        self._typed = 0
        self._conversations: Conversations | None = None
        self._after_reply: Callable[[], str | None] = lambda: None
        self._leaving = False
        self._screen: TerminalScreen | None = None

    async def run(
        self, conversations: Conversations, *, banner: str = "", after_reply: Callable[[], str | None] = lambda: None
    ) -> int:
        """Chat until end of input or Ctrl-C. Returns the exit status (0, or 130 after Ctrl-C).

        Args:
            conversations: The conversation runtime.
            banner: Lines shown once at the start (on stderr when not interactive, so stdout holds the chat).
            after_reply: Asked after each reply for a line to show (where the log is, once something was logged).
        """
        self._conversations = conversations
        self._after_reply = after_reply
        if self.interactive:
            return await self._run_terminal(banner)
        return await self._run_plain(banner)

    # -- on a terminal -------------------------------------------------------------------------------------

    async def _run_terminal(self, banner: str) -> int:
        screen = TerminalScreen(self._history, on_interrupt=self._stop_reply, after_reply=self._after_reply)
        self._screen = screen
        if banner:
            width = shutil.get_terminal_size().columns
            await screen.write("\n".join(textwrap.fill(line, width) for line in safe_text(banner).split("\n")))
        while True:
            try:
                line = await screen.read()
            except Interrupted:
                self._stop_reply()
                return EXIT_INTERRUPTED
            except EndOfInput:
                await self._drain()  # the reply in progress is finished (and written out), then the chat ends
                return 0
            if line.strip():
                await self._submit(line.strip())

    # -- piped or --plain ----------------------------------------------------------------------------------

    async def _run_plain(self, banner: str) -> int:
        loop = asyncio.get_running_loop()
        if banner:
            print(banner, file=self._err if self._echo or not self._out.isatty() else self._out, flush=True)
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(target=self._read_lines, args=(loop, lines), daemon=True, name="console-stdin").start()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._on_sigint, lines)
        try:
            while (line := await lines.get()) is not None:
                if line.strip():
                    await self._submit(line.strip())
                if self._echo:  # a script's lines: each answered on its own, in order
                    await self._drain()
            if not self._leaving:
                await self._drain()
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
        if note := self._after_reply():
            print(safe_text(note), file=self._err, flush=True)
        return EXIT_INTERRUPTED if self._leaving else 0

    def _on_sigint(self, lines: asyncio.Queue[str | None]) -> None:
        if not self._stop_reply():
            self._leaving = True
            lines.put_nowait(None)

    def _read_lines(self, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
        """Blocking reads in a daemon thread, so a pending read never holds up exit."""
        try:
            for line in self._in:
                loop.call_soon_threadsafe(lines.put_nowait, line)
        except (OSError, ValueError):
            pass
        with contextlib.suppress(RuntimeError):  # the loop may already be closed at exit
            loop.call_soon_threadsafe(lines.put_nowait, None)

    # -- shared --------------------------------------------------------------------------------------------

    async def _submit(self, text: str) -> None:
        """Hand a line to the runtime; its reply prints it (and the lines merged with it) before the answer."""
        assert self._conversations is not None
        if command_of(text) is STOP and self._stop_reply():
            return  # the reply stopped; the follow-ups waiting for it are dropped with it
        try:
            question, files = read_line(text)
        except ValueError as problem:  # "/attach" without a file: the user's to fix, no turn
            print(safe_text(str(problem)), file=self._err, flush=True)
            return
        self._typed += 1
        number = self._typed
        self._waiting.append((number, text))
        self._show_waiting()
        answer = text.lower()
        if (answer in YES or answer in NO) and await self._conversations.answer_approval(
            self._conversation, answer in YES, "you", lambda: self._surface(number)
        ):
            return
        incoming = Incoming(self._conversation, question, user_id="console", user_name="you", attachments=files)
        self._conversations.submit(incoming, lambda: self._surface(number))

    @property
    def conversation(self) -> str:
        """The conversation's key (`console:<name>`)."""
        return self._conversation

    def surface(self) -> ReplySurface:
        """A surface for a reply that answers no line (an approval that expired)."""
        return self._surface(0)

    def _surface(self, number: int) -> ReplySurface:
        """The surface of the reply to line `number` (and to the lines before it that it answers too)."""
        preface = [text for n, text in self._waiting if n <= number]
        self._waiting = [(n, text) for n, text in self._waiting if n > number]
        self._show_waiting()
        if self._screen is not None:
            self._screen.started()
            return TerminalSurface(self._screen, self.profile, preface, self._pictures)
        return PlainSurface(self._out, self.profile, preface if self._echo else [], self._pictures)

    def _stop_reply(self) -> bool:
        """Stop the reply being written (Ctrl-C, /stop); the lines waiting for it are dropped. False: none was."""
        assert self._conversations is not None
        if not self._conversations.stop(self._conversation):
            return False
        self._waiting.clear()
        self._show_waiting()
        return True

    def _show_waiting(self) -> None:
        if self._screen is not None:
            self._screen.waiting = [text for _, text in self._waiting]

    async def _drain(self) -> None:
        assert self._conversations is not None
        await self._conversations.drain()
