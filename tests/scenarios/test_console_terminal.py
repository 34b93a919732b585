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
from tests.scenarios.conftest import script_tool_turns

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


@pytest.mark.parametrize("call_ids", ["per_reply", "none"])
async def test_every_tool_turn_shows_its_own_message_the_status_line_and_the_answer(
    terminal_bot: TerminalBot, llm: OpenAIDouble, call_ids: str
) -> None:
    """Servers that send `call_1` on every turn (or no id) once lost the second and later tool turns: the text
    before the tool and the answer arrived merged in one message, with no status line."""
    turns = script_tool_turns(llm, call_ids)
    shown = 0
    for turn in turns:
        terminal_bot.type(turn.question)
        await terminal_bot.expect(re.escape(turn.answer) + "\n")
        text = terminal_bot.text[shown:]
        before, status, answer = (
            text.index(part) for part in (f"bot › {turn.before}", "Using calculator…", turn.answer)
        )
        assert before < status < answer, text  # the text before the tool, the status line, then the answer
        assert text.index(f"bot › {turn.answer}") == answer - len("bot › "), text  # as a message of its own
        shown = len(terminal_bot.text)
    assert llm.pending == 0


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
