"""The console bot on a terminal (a pseudo-terminal read through a terminal emulator), as a user sees it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.doubles.openai_server import Hang, Held, OpenAIDouble, Text, ToolCalls
from tests.scenarios.conftest import bot_env, script_tool_turns
from tests.scenarios.terminal import TerminalBot, terminal_bot


@pytest.fixture
async def bot(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> AsyncIterator[TerminalBot]:
    async with terminal_bot(model_env, tmp_path) as running:
        yield running


async def test_the_reply_grows_in_place_and_tools_show_a_status_line(bot: TerminalBot, llm: OpenAIDouble) -> None:
    llm.script(
        ToolCalls([("calculator", {"expression": "2**10"})], text_before="Computing."),
        Text("Two to the tenth is 1024.", chunk_size=2, delay=0.01),
    )
    bot.type("what is 2 to the tenth?")
    await bot.expect("bot › Two to the tenth is 1024.")
    await bot.idle()
    await bot.ever_shown("⚙ Using calculator…")  # shown while the tool ran
    screen = bot.screen
    assert "Using calculator" not in screen  # and gone once the answer came
    assert screen.index("you › what is 2 to the tenth?") < screen.index("bot › Computing.")
    assert screen.index("bot › Computing.") < screen.index("bot › Two to the tenth")  # two messages
    assert screen.count("Two to the tenth is 1024.") == 1


@pytest.mark.parametrize("call_ids", ["per_reply", "none"])
async def test_every_tool_turn_shows_its_own_message_the_status_line_and_the_answer(
    bot: TerminalBot, llm: OpenAIDouble, call_ids: str
) -> None:
    """Servers that send `call_1` on every turn (or no id) once lost the second and later tool turns: the text
    before the tool and the answer arrived merged in one message, with no status line."""
    for turn in script_tool_turns(llm, call_ids):
        written = len(bot.raw)
        bot.type(turn.question)
        await bot.expect(re.escape(f"bot › {turn.answer}"))
        await bot.idle()
        screen = bot.screen
        asked, before, answer = (screen.index(part) for part in (turn.question, turn.before, f"bot › {turn.answer}"))
        assert asked < before < answer, screen  # the text before the tool and the answer: two messages
        assert f"bot › {turn.before}" in screen, screen
        assert "Using calculator…" in bot.written_since(written)  # the status line showed during this turn
    assert llm.pending == 0


async def test_markdown_is_rendered_not_shown_raw_and_wraps_at_words(bot: TerminalBot, llm: OpenAIDouble) -> None:
    llm.script(
        Text(
            "## Result\n\nThe answer is **four** and `x` is _small_.\n\n"
            "| name | value |\n|---|---|\n| alpha | 1 |\n| beta | 2 |\n\n"
            "```python\nprint('hi')\n```\n\n" + " ".join(f"word{n}" for n in range(60)),
            chunk_size=7,
        )
    )
    bot.type("show me some formatting")
    await bot.expect("beta")
    await bot.expect("word59")
    await bot.idle()
    screen = bot.screen
    assert "The answer is four and x is small." in screen
    for raw in ("**", "##", "`", "|---", "```", "_small_"):
        assert raw not in screen, raw
    assert "alpha" in screen and "────" in screen  # a table drawn with lines
    assert "print('hi')" in screen
    wrapped = [line for line in screen.split("\n") if "word" in line]
    assert len(wrapped) > 1 and all(line.endswith(tuple(f"word{n}" for n in range(60))) for line in wrapped)


async def test_lines_typed_during_a_reply_stay_out_of_it_and_are_answered_as_one_turn(
    bot: TerminalBot, llm: OpenAIDouble
) -> None:
    release = asyncio.Event()
    llm.script(
        Held("The first answer is written slowly.", after_chars=16, release=release), Text("One answer to both.")
    )
    bot.type("first question")
    await bot.expect("The first answer")
    bot.type("second thing")
    bot.type("third thing")
    await bot.expect("(?s)The first answer.*you › second thing.*you › third thing")  # waiting under the reply
    release.set()
    await bot.expect("bot › One answer to both.")
    await bot.idle()
    screen = bot.screen.split("\n")
    assert "bot › The first answer is written slowly." in screen  # not a letter typed inside it
    order = [line for line in screen if line.startswith(("you ›", "bot ›")) and line != "you ›"]
    assert order == [
        "you › first question",
        "bot › The first answer is written slowly.",
        "you › second thing",
        "you › third thing",
        "bot › One answer to both.",
    ]
    assert len(llm.requests) == 2  # one follow-up turn, with both lines
    assert llm.requests[1]["messages"][-1] == {"role": "user", "content": "second thing\n\nthird thing"}


async def test_slash_stop_stops_the_reply(bot: TerminalBot, llm: OpenAIDouble) -> None:
    llm.script(Hang("I will think about this for a very long"), Text("Still here."))
    bot.type("think hard")
    await bot.expect("for a very long")
    await bot.expect("Ctrl-C or /stop stops it")  # the input line says how
    bot.type("/stop")
    await bot.expect("Stopped")
    await asyncio.wait_for(llm.disconnected.wait(), 10)  # the model's stream was closed
    assert len(llm.requests) == 1  # /stop went to no model
    bot.type("are you there?")
    await bot.expect("Still here.")


async def test_ctrl_c_or_sigint_stops_the_reply_and_ctrl_c_at_the_prompt_exits(
    bot: TerminalBot, llm: OpenAIDouble
) -> None:
    llm.script(Hang("I will think about this for a very long"), Hang("Thinking out loud"), Text("Still here."))
    bot.type("think hard")
    await bot.expect("for a very long")
    bot.press("\x03")
    await bot.expect("Stopped")
    await asyncio.wait_for(llm.disconnected.wait(), 10)
    llm.disconnected.clear()
    bot.type("think again")
    await bot.expect("Thinking out loud")
    bot.interrupt()  # SIGINT from outside the terminal does the same
    await bot.expect("(?s)Stopped.*Stopped")
    await asyncio.wait_for(llm.disconnected.wait(), 10)
    bot.type("are you there?")
    await bot.expect("Still here.")  # the stopped turn did not break the conversation
    await bot.idle()
    bot.press("\x03")
    assert await bot.exited() == 130


async def test_ctrl_d_exits_zero_and_leaves_a_clean_line(bot: TerminalBot) -> None:
    bot.press("\x04")
    assert await bot.exited() == 0
    assert bot.cursor_column == 0  # the shell's prompt starts on a line of its own


async def test_arrow_keys_edit_the_line_and_recall_history(bot: TerminalBot, llm: OpenAIDouble) -> None:
    llm.script(Text("First."), Text("Second."))
    bot.type("helo")
    await bot.expect("bot › First.")
    bot.press("\x1b[A")  # ↑: the previous line comes back
    bot.press("\x1b[D\x1b[D")  # ←←: the cursor moves into it
    bot.type("l")
    await bot.expect("bot › Second.")
    assert llm.requests[1]["messages"][-1]["content"] == "hello"
    assert "^[[" not in bot.screen


async def test_the_demo_shows_the_status_line_the_asked_timezone_memory_and_reset(tmp_path: Path) -> None:
    env = bot_env(tmp_path, DEMO_TOKEN_DELAY="0.001")  # streams (so its tools take a second), yet quickly
    async with terminal_bot(env, tmp_path) as bot:
        bot.type("what is 6*7")
        await bot.expect("⚙ Using calculator…")  # on screen while the tool runs
        await bot.expect(r"6\*7 = 42")
        assert "Using calculator" not in bot.screen
        bot.type("what time is it in Tokyo?")
        await bot.expect("Asia/Tokyo")
        bot.type("my name is Ada")
        await bot.expect("Nice to meet you, Ada")
        bot.type("what's my name?")
        await bot.expect("Your name is Ada")
        bot.type("/reset")
        await bot.expect("I forgot this conversation")
        bot.type("what's my name?")
        await bot.expect("haven't told me your name")
        await bot.idle()
    # Said in the first answer of each conversation (the one /reset started is new), not in every answer.
    assert bot.screen.count("This is livebot's offline demo model") == 2
