"""The console bot on a terminal (a pseudo-terminal the test opens): live redraw, tool status, Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.doubles.openai_server import Hang, OpenAIDouble, Text, ToolCalls

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class TerminalBot:
    """`python -m bot console` with a pseudo-terminal as stdin and stdout, as a user runs it."""

    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self._master = master
        self.screen = ""  # everything written, escape codes included

    async def expect(self, pattern: str, timeout: float = 20) -> None:
        """Read output until `pattern` (a regex, matched against the text without escape codes) appears."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not re.search(pattern, self.text):
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} not shown; screen so far:\n{self.text}")
            try:
                chunk = await asyncio.wait_for(asyncio.to_thread(os.read, self._master, 4096), remaining)
            except OSError:  # the process closed the terminal
                raise AssertionError(f"{pattern!r} not shown before exit; screen:\n{self.text}") from None
            self.screen += chunk.decode(errors="replace")

    @property
    def text(self) -> str:
        return _ANSI.sub("", self.screen).replace("\r", "")

    def type(self, line: str) -> None:
        os.write(self._master, line.encode() + b"\r")

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)


@pytest.fixture
async def terminal_bot(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> AsyncIterator[TerminalBot]:
    master, slave = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console", stdin=slave, stdout=slave, stderr=slave, env=model_env, cwd=tmp_path
    )
    os.close(slave)
    bot = TerminalBot(process, master)
    await bot.expect("you ›")
    yield bot
    if process.returncode is None:
        process.kill()
        await process.wait()
    os.close(master)


async def test_the_reply_grows_in_place_and_tools_show_a_status_line(
    terminal_bot: TerminalBot, llm: OpenAIDouble
) -> None:
    llm.script(
        ToolCalls([("calculator", {"expression": "2**10"})], text_before="Computing."),
        Text("Two to the tenth is 1024.", chunk_size=2, delay=0.01),
    )
    terminal_bot.type("what is 2**10?")
    await terminal_bot.expect("Two to the tenth is 1024.\n")
    text = terminal_bot.text
    assert "Using calculator…" in text  # shown while the tool ran
    assert text.index("bot › Computing.") < text.index("bot › Two to the tenth")  # two messages
    assert text.count("Two to the tenth is 1024.") == 1  # grown by appending, not reprinted


async def test_ctrl_c_stops_the_reply_and_a_second_one_exits(terminal_bot: TerminalBot, llm: OpenAIDouble) -> None:
    llm.script(Hang("I will think about this for a very long"), Text("Still here."))
    terminal_bot.type("think hard")
    await terminal_bot.expect("for a very long")
    terminal_bot.interrupt()
    await terminal_bot.expect("Stopped")
    await asyncio.wait_for(llm.disconnected.wait(), 5)  # the model's stream was closed
    terminal_bot.type("are you there?")
    await terminal_bot.expect("Still here.")  # the stopped turn did not break the conversation
    await terminal_bot.expect("(?s)you ›.*you ›.*you ›")
    terminal_bot.interrupt()
    assert await asyncio.wait_for(terminal_bot.process.wait(), 10) == 130


async def test_eof_exits_zero(terminal_bot: TerminalBot) -> None:
    os.write(terminal_bot._master, b"\x04")  # Ctrl-D
    assert await asyncio.wait_for(terminal_bot.process.wait(), 10) == 0
