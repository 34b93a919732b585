"""Running the real bot as a subprocess, with settings that point it at the doubles the test started."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from langchain_core.tools import BaseTool

from agent.thread import open_agent_thread
from bot.settings import Settings
from bot.telegram_app import TelegramBot, serve_telegram
from media.store import FileStore
from tests.doubles.openai_server import OpenAIDouble, Text, ToolCalls
from tests.doubles.slack_api import SlackDouble
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.slack_scene import SECRET as SLACK_SECRET
from tests.scenarios.slack_scene import TOKEN as SLACK_TOKEN
from tests.scenarios.slack_scene import SlackScene, clean_environment, free_port, running_scene
from tools import default_tools

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-token-for-the-double-0123456789"
_OWN_SETTINGS = (
    *("OPENAI_", "LLM_", "TELEGRAM_", "SLACK_", "STREAM_", "BOT_", "DATABASE_URL", "REDIS_URL", "METRICS_"),
    "LOG_LEVEL",
    *("MCP_CONFIG", "SEARXNG_", "BRAVE_", "TAVILY_"),
)


@dataclass
class Finished:
    code: int
    out: str
    err: str


def bot_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a bot process: none of the developer's own settings, data in `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_SETTINGS)}
    env.update({"BOT_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT), "DEMO_TOKEN_DELAY": "0", **settings})
    return env


async def run_bot(args: list[str], *, stdin: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> Finished:
    """Run `python -m bot ARGS` with piped stdin and wait for it to exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout)
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


def telegram_env(tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a `python -m bot telegram` that talks to the two doubles."""
    return bot_env(
        tmp_path,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=tg.root,
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_API_KEY="sk-test-key-for-the-double",
        LLM_MODEL=llm.model,
        **settings,
    )


@asynccontextmanager
async def telegram_process(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, **settings: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m bot telegram` against the doubles, yielded once it polls; killed on exit if it still runs."""
    env = telegram_env(tg, llm, tmp_path, **settings)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "telegram", env=env, cwd=tmp_path, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await tg.wait_for(lambda: tg.waiting_polls, timeout=90)  # polling: the bot is up
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@asynccontextmanager
async def slack_process(
    slack: SlackDouble, llm: OpenAIDouble, tmp_path: Path, **settings: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`python -m bot slack` in HTTP mode against the doubles, yielded with its events URL once it listens;
    killed on exit if it still runs."""
    port = free_port()
    own = {
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_API_KEY": "sk-test-" + "x" * 24,
        "LLM_MODEL": llm.model,
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "SLACK_API_URL": slack.base_url,
        "SLACK_LISTEN": "127.0.0.1",
        "SLACK_PORT": str(port),
    }
    env = bot_env(tmp_path, **{**own, **settings})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "slack", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    drain: asyncio.Task[bytes] | None = None
    try:
        async with asyncio.timeout(90):
            while b"listening at" not in (line := await process.stderr.readline()):
                assert line, "the bot exited before listening"
        drain = asyncio.create_task(process.stderr.read())  # a full pipe would block the bot's log
        yield process, f"http://127.0.0.1:{port}/slack/events"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if drain is not None:
            await drain


async def recorded_text(data: Path, text: str, timeout: float = 30) -> None:
    """Wait until a reply in flight is recorded in BOT_DATA_DIR `data` as showing `text` (its Markdown): then a
    crash loses nothing of what the user saw. (The record is written on its own cadence, which no platform call
    announces, so this looks at the file every 50 ms.)"""
    async with asyncio.timeout(timeout):
        while True:
            with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(data / "state.sqlite")) as db:
                screens = [json.loads(row[0]) for row in db.execute("SELECT screen FROM inflight_replies")]
                if any(screen["text"] == text for screen in screens):
                    return
            await asyncio.sleep(0.05)


@dataclass(frozen=True)
class ToolTurn:
    """One turn of `script_tool_turns`: what the user asks, the text before the tool, the answer after it."""

    question: str
    before: str
    answer: str


def script_tool_turns(llm: OpenAIDouble, call_ids: str, turns: int = 3) -> list[ToolTurn]:
    """Script `turns` turns that each use the calculator, from a server naming its calls the `call_ids` way.

    Servers that number calls per response ("per_reply") send `call_1` on every turn; some send none ("none").
    """
    llm.call_ids = call_ids  # type: ignore[assignment]
    scripted = []
    for n in range(1, turns + 1):
        turn = ToolTurn(
            f"what is {n}+{n}?", f"Let me work out {n}+{n} with a tool.", f"The tool says {n}+{n} = {2 * n}."
        )
        llm.script(ToolCalls([("calculator", {"expression": f"{n}+{n}"})], text_before=turn.before), Text(turn.answer))
        scripted.append(turn)
    return scripted


@pytest.fixture
async def llm() -> AsyncIterator[OpenAIDouble]:
    async with OpenAIDouble() as double:
        yield double


@pytest.fixture
def model_env(tmp_path: Path, llm: OpenAIDouble) -> dict[str, str]:
    """Settings for a bot that talks to the OpenAI double."""
    return bot_env(tmp_path, OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-test-" + "x" * 24, LLM_MODEL=llm.model)


@pytest.fixture
async def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SlackScene]:
    """The Slack bot in HTTP mode with its doubles (see slack_scene), none of the developer's own settings."""
    clean_environment(monkeypatch)
    async with running_scene(tmp_path) as running:
        yield running


@pytest.fixture
async def tg() -> AsyncIterator[TelegramDouble]:
    async with TelegramDouble(token=TOKEN, bot_username="livebot_test") as double:
        yield double


def telegram_settings(tg: TelegramDouble, llm: OpenAIDouble, data: Path, **settings: Any) -> Settings:
    """Settings for a Telegram bot that talks to the two doubles."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=TOKEN,
        telegram_api_base_url=tg.root,
        openai_api_key="sk-test-key-for-the-double",
        openai_base_url=llm.base_url,
        llm_model=llm.model,
        bot_data_dir=data,
        **settings,
    )


@asynccontextmanager
async def running(
    tg: TelegramDouble, llm: OpenAIDouble, data: Path, *, tools: Sequence[BaseTool] = (), **settings: Any
) -> AsyncIterator[TelegramBot]:
    """The Telegram bot, in this process, for the duration of the block."""
    config = telegram_settings(tg, llm, data, **settings)
    files = FileStore(config.agent_config().files_dir)
    async with (
        open_agent_thread(config.agent_config(), [*default_tools(files=files), *tools]) as agent,
        serve_telegram(config, agent) as bot,
    ):
        yield bot


def _server(variable: str) -> str:
    """The URL of a test server in `variable`; the test is skipped without it (`.ci/run` starts both and sets them)."""
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"{variable} is not set (.ci/run starts PostgreSQL and Redis and sets it)")
    return url


def _worker_database(url: str) -> str:
    """`url` with the database number moved on by this pytest-xdist worker's number (gw1 uses 0 + 1), so that
    workers running side by side each empty a database of their own."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) + int(worker.removeprefix("gw"))
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """LIVEBOT_TEST_REDIS_URL (`.ci/run` starts a Redis server and sets it), emptied before the test; a database of
    the worker's own when pytest-xdist runs the tests."""
    url = _worker_database(_server("LIVEBOT_TEST_REDIS_URL"))
    import redis.asyncio as redis

    async with redis.Redis.from_url(url) as client:
        await client.flushdb()
    yield url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """LIVEBOT_TEST_DATABASE_URL with a schema of the test's own (dropped after it), so runs never meet."""
    url = _server("LIVEBOT_TEST_DATABASE_URL")
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
