"""Replicas as processes: several `python -m bot telegram` sharing a Redis and a Postgres, against the doubles."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from tests.doubles.openai_server import OpenAIDouble
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import TOKEN, bot_env

SECRET = "replica-webhook-secret-0123456789"


def replica_env(
    tg: TelegramDouble, llm: OpenAIDouble, data: Path, redis_url: str, postgres_url: str, **settings: str
) -> dict[str, str]:
    """The environment of one replica: its own data folder, the shared Redis and Postgres, the doubles."""
    return bot_env(
        data,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=tg.root,
        OPENAI_BASE_URL=llm.base_url,
        OPENAI_API_KEY="sk-test-key-for-the-double",
        LLM_MODEL=llm.model,
        REDIS_URL=redis_url,
        DATABASE_URL=postgres_url,
        **settings,
    )


async def start(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """`python -m bot telegram` with `env`; its log goes to cwd/bot.log (read it when a test fails)."""
    cwd.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a test's set-up
    with open(cwd / "bot.log", "wb") as log:  # noqa: ASYNC230 - a test's set-up
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "telegram", env=env, cwd=cwd, stdout=log, stderr=log
        )


@asynccontextmanager
async def replica(
    tg: TelegramDouble, env: dict[str, str], cwd: Path, *, up: Callable[[], object], timeout: float = 90
) -> AsyncIterator[asyncio.subprocess.Process]:
    """One replica, yielded once `up()` holds; killed on exit if it still runs."""
    process = await start(env, cwd)
    try:
        try:
            await tg.wait_for(lambda: up() or process.returncode is not None, timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"replica in {cwd} not up: {(cwd / 'bot.log').read_text()[-3000:]}") from None
        assert process.returncode is None, (cwd / "bot.log").read_text()[-3000:]
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
