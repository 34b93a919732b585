"""The console channel: a local chat in the terminal, or one answer per input line when piped.

On a terminal the reply is redrawn in place as it grows (the console's "edit") and a tool shows as a status line.
With stdin or stdout piped nothing can be redrawn, so the registry's piped profile makes the handler print each
reply once, whole, at the end: the same no-edit fallback path a platform without edits takes.

EOF ends the session (exit 0) after the reply in progress. Ctrl-C during a reply stops that reply; a second
Ctrl-C, or one at the prompt, exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from channels.capabilities import LiveMode, Profile, resolve
from channels.errors import MessageGone
from channels.inbound import Incoming
from channels.surface import ReplySurface

Responder = Callable[[Incoming, ReplySurface], Coroutine[Any, Any, None]]
"""What answers a line: `bot.runtime.Runtime.answer`."""

_PROMPT = "\x1b[1myou ›\x1b[0m "
_BOT = "\x1b[1;36mbot ›\x1b[0m "
_BOT_WIDTH = len("bot › ")
_DIM, _RESET = "\x1b[2m", "\x1b[0m"
_UP_AND_CLEAR = "\x1b[1A\r\x1b[2K"
_EXIT_INTERRUPTED = 130


class TerminalSurface:
    """Draws a reply's messages on a terminal; only the newest message can still change."""

    def __init__(self, out: TextIO, profile: Profile) -> None:
        self.profile = profile
        self._out = out
        self._ref = 0
        self._text = ""
        self._line_open = False  # the cursor sits at the end of the newest message
        self._status = False

    def measure(self, text: str) -> int:
        return len(text)

    async def send(self, text: str, *, final: bool, plain: bool = False) -> int:
        self.end_line()
        self._ref += 1
        self._text = text
        self._write(_BOT + text)
        self._line_open = True
        return self._ref

    async def edit(self, ref: int, text: str, *, final: bool, plain: bool = False) -> None:
        if ref != self._ref or not self._line_open:
            raise MessageGone("only the newest message can be redrawn")
        if text.startswith(self._text):
            self._write(text[len(self._text) :])
        else:
            self._write(self._erase(self._text) + _BOT + text)
        self._text = text

    async def status(self, text: str | None) -> None:
        if self._status:
            self._write(_UP_AND_CLEAR)
            self._status = False
        if text is not None:
            self.end_line()
            self._write(f"{_DIM}  ⚙ {text}{_RESET}\n")
            self._status = True

    async def close(self) -> None:
        await self.status(None)
        self.end_line()

    def address(self) -> None:
        return None

    def end_line(self) -> None:
        """Move below the newest message, so nothing else is written into it."""
        if self._line_open:
            self._write("\n")
            self._line_open = False

    def _erase(self, text: str) -> str:
        """Escape codes that move back to the start of the newest message and clear everything below it."""
        width = max(1, shutil.get_terminal_size().columns)
        rows = sum(max(1, -(-len(line) // width)) for line in (" " * _BOT_WIDTH + text).split("\n"))
        return "\r" + ("\x1b[1A" * (rows - 1)) + "\x1b[J"

    def _write(self, data: str) -> None:
        self._out.write(data)
        self._out.flush()


class PipedSurface:
    """Prints each message once, whole: the final-only surface."""

    def __init__(self, out: TextIO, profile: Profile) -> None:
        self.profile = profile
        self._out = out
        self._sent = 0

    def measure(self, text: str) -> int:
        return len(text)

    async def send(self, text: str, *, final: bool, plain: bool = False) -> int:
        self._out.write(text + "\n")
        self._out.flush()
        self._sent += 1
        return self._sent

    async def edit(self, ref: int, text: str, *, final: bool, plain: bool = False) -> None:
        raise RuntimeError("a piped console cannot edit; its profile says so")

    async def close(self) -> None:
        pass

    def address(self) -> None:
        return None


class ConsoleChannel:
    """Reads lines from stdin and answers each one in turn.

    Args:
        name: The conversation name; memory is kept per name (`console:<name>`).
        mode: STREAM_MODE (None = auto).
        interval: STREAM_EDIT_INTERVAL.
        banner: Printed once at start (to stderr when piped, so stdout holds only answers).
    """

    def __init__(
        self,
        *,
        name: str = "local",
        mode: LiveMode | None = None,
        interval: float | None = None,
        banner: str = "",
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._err = stderr or sys.stderr
        self.interactive = self._in.isatty() and self._out.isatty()
        self.profile = resolve("console", "terminal" if self.interactive else "piped", mode=mode, interval=interval)
        self._conversation = f"console:{name}"
        self.banner = banner
        self._reply: asyncio.Task[None] | None = None
        self._interrupted = False
        self._exit: asyncio.Event | None = None

    async def run(self, answer: Responder) -> int:
        """Answer lines until EOF or Ctrl-C. Returns the process exit code."""
        loop = asyncio.get_running_loop()
        self._exit = asyncio.Event()
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(target=self._read_lines, args=(loop, lines), daemon=True, name="console-stdin").start()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._on_interrupt)
        if self.banner:
            print(self.banner, file=self._out if self.interactive else self._err, flush=True)
        while True:
            if self.interactive:
                self._out.write(_PROMPT)
                self._out.flush()
            line = await self._next_line(lines)
            if line is None:
                return _EXIT_INTERRUPTED if self._exit.is_set() else 0
            if not line.strip():
                continue
            surface = (
                TerminalSurface(self._out, self.profile) if self.interactive else PipedSurface(self._out, self.profile)
            )
            incoming = Incoming(self._conversation, line.strip(), user_id="console", user_name="you")
            self._interrupted = False
            self._reply = asyncio.create_task(answer(incoming, surface))
            await asyncio.wait([self._reply])
            if not self._reply.cancelled() and self._reply.exception() is not None:
                raise self._reply.exception()  # type: ignore[misc]
            self._reply = None
            if self._exit.is_set():
                return _EXIT_INTERRUPTED

    async def _next_line(self, lines: asyncio.Queue[str | None]) -> str | None:
        """The next input line; None at EOF or when the user asked to exit."""
        assert self._exit is not None
        getter = asyncio.ensure_future(lines.get())
        exiting = asyncio.ensure_future(self._exit.wait())
        await asyncio.wait([getter, exiting], return_when=asyncio.FIRST_COMPLETED)
        exiting.cancel()
        if not getter.done():
            getter.cancel()
            if self.interactive:
                self._out.write("\n")
            return None
        return getter.result()

    def _on_interrupt(self) -> None:
        assert self._exit is not None
        if self._reply is not None and not self._reply.done() and not self._interrupted:
            self._interrupted = True
            self._reply.cancel()
        else:
            self._exit.set()
            if self._reply is not None:
                self._reply.cancel()

    def _read_lines(self, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
        """Blocking reads in a daemon thread, so a pending read never holds up exit."""
        try:
            for line in self._in:
                loop.call_soon_threadsafe(lines.put_nowait, line)
        except (OSError, ValueError):
            pass
        with contextlib.suppress(RuntimeError):  # the loop may already be closed at exit
            loop.call_soon_threadsafe(lines.put_nowait, None)
