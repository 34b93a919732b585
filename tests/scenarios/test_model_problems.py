"""A model that cannot answer, as a user meets it: one line at start-up naming the setting to fix, a notice naming
the real cause in the reply, never a traceback, and servers that refuse to start on a wrong setting."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.doubles.openai_server import Error, OpenAIDouble
from tests.scenarios.conftest import TOKEN, bot_env, run_bot
from tests.scenarios.terminal import terminal_bot


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Case:
    name: str
    start_up: str  # a regex for the start-up line
    notice: str | None  # the notice a reply ends with (None: the reply waits, see the silent case)
    fatal: bool


CASES = [
    Case(
        "unreachable",
        r"cannot reach the model server at OPENAI_BASE_URL \(http://127\.0\.0\.1:\d+/v1\)",
        "Could not connect to the model server",
        True,
    ),
    Case("key refused", r"refused OPENAI_API_KEY \(HTTP 401\)", "The model server rejected the API key.", True),
    Case(
        "unknown model",
        r"does not serve LLM_MODEL=no-such-model \(it serves: double-model\)",
        "The model server does not know this model (check LLM_MODEL).",
        True,
    ),
    Case(
        "server error",
        r"OPENAI_BASE_URL \(http://127\.0\.0\.1:\d+/v1\) answered HTTP 500",
        "The model server had an error (HTTP 500).",
        False,
    ),
    Case("silent", r"did not answer within 1 s", None, False),
]


@asynccontextmanager
async def failing_model(case: Case, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """The settings of a bot whose model fails as `case` says."""
    async with OpenAIDouble() as llm:
        settings = {
            "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "sk-wrong-key-0123456789",
            "LLM_MODEL": llm.model,
        }
        if case.name == "unreachable":
            settings["OPENAI_BASE_URL"] = f"http://127.0.0.1:{closed_port()}/v1"
        elif case.name == "key refused":
            llm.api_key = "sk-the-right-key-0123456789"
        elif case.name == "unknown model":
            settings["LLM_MODEL"] = "no-such-model"
            # (the double serves any model name a test asks for; this is what OpenAI answers to an unknown one)
            llm.script(
                Error(404, "The model `no-such-model` does not exist", "invalid_request_error", "model_not_found")
            )
        elif case.name == "server error":
            llm.outage = 500
        else:
            llm.silent = True
        yield bot_env(tmp_path, MODEL_CHECK_TIMEOUT="1", **settings)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_the_console_names_the_problem_at_start_and_in_the_reply_without_a_traceback(
    case: Case, tmp_path: Path
) -> None:
    async with failing_model(case, tmp_path) as env, terminal_bot(env, tmp_path) as bot:
        await bot.ever_shown(case.start_up)  # (read from the stream: the line may wrap on screen)
        bot.type("/help")  # the console started anyway: commands work
        await bot.expect("forgets this conversation")
        await bot.idle()  # the help's reply is over, so the next "stops it" hint is the question's
        bot.type("hello?")
        if case.notice is not None:
            await bot.expect(re.escape(f"⚠ {case.notice}"))
        else:
            await bot.expect("Ctrl-C or /stop stops it")  # the reply started
            bot.press("\x03")
            await bot.expect("Stopped")
        await bot.ever_shown(r"\(problems were logged to .*livebot\.log\)")
        bot.press("\x04")
        assert await bot.exited() == 0
    assert "Traceback" not in bot.raw
    assert "Traceback" in (tmp_path / "data" / "livebot.log").read_text() or case.notice is None


@pytest.mark.parametrize(
    ("case", "channel"),
    [*((case, "telegram") for case in CASES if case.fatal), (CASES[0], "slack")],
    ids=lambda value: value.name if isinstance(value, Case) else value,
)
async def test_a_server_with_a_wrong_model_setting_exits_2_with_one_line(
    case: Case, channel: str, tmp_path: Path
) -> None:
    async with failing_model(case, tmp_path) as env:
        env |= {"TELEGRAM_BOT_TOKEN": TOKEN, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_APP_TOKEN": "xapp-test-token"}
        done = await asyncio.wait_for(run_bot([channel], stdin="", env=env, cwd=tmp_path), 60)
    assert done.code == 2
    lines = [line for line in done.err.splitlines() if not line[:4].isdigit()]  # (log lines start with the date)
    assert len(lines) == 1 and lines[0].startswith("livebot: ")
    assert re.search(case.start_up, lines[0])
    assert "Traceback" not in done.err


async def test_the_piped_console_says_the_problem_on_stderr_and_still_answers_commands(tmp_path: Path) -> None:
    env = bot_env(tmp_path, OPENAI_BASE_URL=f"http://127.0.0.1:{closed_port()}/v1", LLM_MODEL="m")
    done = await run_bot(["console"], stdin="/help\nhi\n", env=env, cwd=tmp_path)
    assert "cannot reach the model server at OPENAI_BASE_URL" in done.err
    assert "forgets this conversation" in done.out
    assert "⚠️ Could not connect to the model server" in done.out
    assert done.code == 1
    assert "Traceback" not in done.out + done.err
