"""Running the console bot in a pseudo-terminal and reading its screen the way a user sees it.

The bot's output goes through `pyte`, a VT100 terminal emulator, so a test reads the screen after every cursor
move and redraw, not the raw stream: text that was drawn and then erased is not "on screen". The raw stream is kept
too, for what must never be written at all (a traceback).
"""

from __future__ import annotations

import asyncio
import codecs
import fcntl
import os
import pty
import re
import signal
import struct
import sys
import termios
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pyte

COLUMNS, ROWS = 100, 60


class TerminalBot:
    """`python -m bot console` with a pseudo-terminal as stdin, stdout and stderr, as a user runs it."""

    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self._master = master
        self.raw = ""  # everything written, escape codes included
        self._screen = pyte.Screen(COLUMNS, ROWS)
        self._screen.write_process_input = self._answer  # replies (prompt_toolkit asks where the cursor is)
        self._stream = pyte.Stream(self._screen)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def screen(self) -> str:
        """What the terminal shows now, one line per row, trailing blanks and blank rows at the end dropped."""
        return "\n".join(line.rstrip() for line in self._screen.display).rstrip("\n")

    @property
    def cursor_column(self) -> int:
        return self._screen.cursor.x

    async def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Read output until `pattern` (a regex) is on screen; fail with the screen if it does not come."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (found := re.search(pattern, self.screen)):
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self._read(remaining):
                raise AssertionError(f"{pattern!r} not on screen; it shows:\n{self.screen}")
        return found

    async def idle(self, timeout: float = 30) -> None:
        """Wait until no reply is in progress: the empty input line is the last line and says nothing about stopping
        one (mid-redraw, the last line is something else)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.screen.rsplit("\n", 1)[-1] != "you ›":
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self._read(remaining):
                raise AssertionError(f"a reply is still in progress; the screen:\n{self.screen}")

    async def ever_shown(self, pattern: str, timeout: float = 30) -> None:
        """Read output until `pattern` was written at some moment (it may be gone from the screen since); a line
        break counts as a space, since the console wraps long lines at words."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not re.search(pattern, self._stream_text().replace("\n", " ")):
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self._read(remaining):
                raise AssertionError(f"{pattern!r} never shown; the screen:\n{self.screen}")

    async def exited(self, timeout: float = 20) -> int:
        """Read the rest of the output and wait for the process to exit; its exit status."""
        code = await asyncio.wait_for(self.process.wait(), timeout)
        while await self._read(1):
            pass
        return code

    def written_since(self, offset: int) -> str:
        """What was written after `offset` characters of `raw`, without escape codes."""
        return _without_escapes(self.raw[offset:])

    def type(self, text: str) -> None:
        """Type `text` and press Enter."""
        self.press(text + "\r")

    def press(self, keys: str) -> None:
        os.write(self._master, keys.encode())

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def _answer(self, data: str) -> None:
        os.write(self._master, data.encode())

    def _stream_text(self) -> str:
        return _without_escapes(self.raw)

    async def _read(self, timeout: float) -> bool:
        """Read what the bot wrote within `timeout` seconds; False when the terminal closed or nothing came."""
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(self._master, lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, timeout)
            chunk = os.read(self._master, 65536)
        except (OSError, TimeoutError):
            return False
        finally:
            loop.remove_reader(self._master)
        if not chunk:
            return False
        text = self._decoder.decode(chunk)
        self.raw += text
        self._stream.feed(text.replace("\ufe0f", ""))  # pyte 0.8 drops the rest of a line after U+FE0F
        return True


def _without_escapes(text: str) -> str:
    return re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r", "", text)


@asynccontextmanager
async def terminal_bot(env: dict[str, str], cwd: Path, *args: str) -> AsyncIterator[TerminalBot]:
    """The console bot on a pseudo-terminal of COLUMNS x ROWS, yielded once its input line is up."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    # The bot reads its size from the pseudo-terminal, as in a user's shell: COLUMNS and LINES (which a
    # pytest-xdist worker has, set to 80 x 24) would override it.
    env = {**{k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}, "TERM": "xterm-256color"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console", *args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd
    )
    os.close(slave)
    bot = TerminalBot(process, master)
    try:
        await bot.expect("you ›", timeout=90)  # a loaded 2-core machine takes over 20 s to import the bot
        yield bot
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        os.close(master)
