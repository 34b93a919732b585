"""Replicas as processes: several `python -m bot telegram` sharing a Redis and a Postgres, against the doubles."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from tests.agent.test_postgres import free_port
from tests.doubles.openai_server import OpenAIDouble
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import telegram_env

SECRET = "replica-webhook-secret-0123456789"


def replica_env(
    tg: TelegramDouble, llm: OpenAIDouble, data: Path, redis_url: str, postgres_url: str, **settings: str
) -> dict[str, str]:
    """The environment of one replica: its own data folder, the shared Redis and Postgres, the doubles."""
    return telegram_env(tg, llm, data, REDIS_URL=redis_url, DATABASE_URL=postgres_url, **settings)


async def start(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """`python -m bot telegram` with `env`; its log goes to cwd/bot.log (read it when a test fails)."""
    cwd.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a test's set-up
    with open(cwd / "bot.log", "ab") as log:  # noqa: ASYNC230 - a test's set-up
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "telegram", env=env, cwd=cwd, stdout=log, stderr=log
        )


@asynccontextmanager
async def replicas(
    tg: TelegramDouble, envs: list[tuple[dict[str, str], Path]], *, up: Callable[[], object], timeout: float = 120
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Replicas started together (as a deploy starts them), yielded once `up()` holds; killed on exit."""
    processes = [await start(env, cwd) for env, cwd in envs]

    def logs() -> str:
        return "\n".join(f"--- {cwd}\n{(cwd / 'bot.log').read_text()[-2000:]}" for _, cwd in envs)

    try:
        try:
            await tg.wait_for(lambda: up() or any(p.returncode is not None for p in processes), timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"replicas not up:\n{logs()}") from None
        assert all(process.returncode is None for process in processes), logs()
        yield processes
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


def webhook_replicas(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str, n: int, **settings: str
) -> list[tuple[dict[str, str], Path]]:
    """`n` replicas in webhook mode, each on a port of its own; Telegram posts to the first (`ports[0]`)."""
    ports = [free_port() for _ in range(n)]
    return [
        (
            replica_env(
                tg,
                llm,
                tmp_path / f"replica{i}",
                redis_url,
                postgres_url,
                TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{ports[0]}/telegram",
                TELEGRAM_WEBHOOK_SECRET=SECRET,
                TELEGRAM_WEBHOOK_LISTEN="127.0.0.1",
                TELEGRAM_WEBHOOK_PORT=str(port),
                METRICS_PORT=str(free_port()),
                METRICS_LISTEN="127.0.0.1",
                **settings,
            ),
            tmp_path / f"replica{i}",
        )
        for i, port in enumerate(ports)
    ]


def webhooks_set(tg: TelegramDouble, count: int) -> bool:
    """Whether setWebhook succeeded `count` times (each replica calls it once it listens)."""
    return len([call for call in tg.calls if call.method == "setWebhook" and call.status == 200]) >= count
