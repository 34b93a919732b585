"""Replicas as processes: several `python -m bot telegram` sharing a Redis and a Postgres, against the doubles."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import psycopg
import redis.asyncio as redis
from aiohttp import web

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
    tg: TelegramDouble,
    llm: OpenAIDouble,
    tmp_path: Path,
    redis_url: str,
    postgres_url: str,
    n: int,
    *,
    url: str | None = None,
    **settings: str,
) -> list[tuple[dict[str, str], Path]]:
    """`n` replicas in webhook mode, each on a port of its own; Telegram posts to `url` (by default the first's)."""
    ports = [free_port() for _ in range(n)]
    return [
        (
            replica_env(
                tg,
                llm,
                tmp_path / f"replica{i}",
                redis_url,
                postgres_url,
                TELEGRAM_WEBHOOK_URL=url or f"http://127.0.0.1:{ports[0]}/telegram",
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


class RoundRobin:
    """A small load balancer in front of the replicas' webhooks: each POST goes to the next replica in turn, and
    one that refuses the connection (it died) is skipped, as a balancer's health check would skip it.

    Attributes:
        url: Where Telegram posts (TELEGRAM_WEBHOOK_URL of every replica).
        sent: For each request, the index of the replica that answered it.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/telegram"
        self.sent: list[int] = []
        self.ports: list[int] = []
        self._turn = 0

    @asynccontextmanager
    async def serving(self, envs: list[tuple[dict[str, str], Path]]) -> AsyncIterator[RoundRobin]:
        """Balance over the replicas of `envs` for the duration of the block."""
        self.ports = [int(env["TELEGRAM_WEBHOOK_PORT"]) for env, _ in envs]
        app = web.Application()
        app.router.add_post("/telegram", self._forward)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        async with aiohttp.ClientSession() as self._session:
            try:
                yield self
            finally:
                await runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        for _ in self.ports:
            index = self._turn % len(self.ports)
            self._turn += 1
            try:
                async with self._session.post(
                    f"http://127.0.0.1:{self.ports[index]}/telegram", data=body, headers=headers
                ) as response:
                    self.sent.append(index)
                    return web.Response(status=response.status, body=await response.read())
            except aiohttp.ClientConnectionError:
                continue
        return web.Response(status=502)


async def queued(redis_url: str, chat: int) -> int:
    """How many messages of the Telegram chat `chat` wait in its queue in Redis."""
    async with redis.Redis.from_url(redis_url) as client:
        keys = [key async for key in client.scan_iter(match=f"livebot:telegram:*:conv:telegram:{chat}:queue")]
        return sum([await client.llen(key) for key in keys])


async def wait_queued(redis_url: str, chat: int, count: int, timeout: float = 30) -> None:
    """Wait until `count` messages of `chat` wait in Redis (they landed on a replica that does not answer them)."""
    async with asyncio.timeout(timeout):
        while True:
            if await queued(redis_url, chat) >= count:
                return
            await asyncio.sleep(0.05)


async def wait_shutting_down(env: dict[str, str], timeout: float = 60) -> None:
    """Wait until the replica of `env` says on /readyz that it shuts down (or no longer answers): the load
    balancer sends it nothing more."""
    url = f"http://127.0.0.1:{env['METRICS_PORT']}/readyz"
    # A connection per look: one kept alive is not answered while the replica shuts its servers down.
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        asyncio.timeout(timeout),
        aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=5)) as session,
    ):
        while True:
            try:
                async with session.get(url) as response:
                    if response.status != 200:
                        return
            except aiohttp.ClientConnectionError:
                return
            except TimeoutError:
                pass
            await asyncio.sleep(0.05)


async def recorded_in_postgres(postgres_url: str, text: str, timeout: float = 30) -> None:
    """Wait until a reply in flight is recorded in Postgres as showing `text` (see conftest.recorded_text)."""
    async with asyncio.timeout(timeout):
        while True:
            async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
                with contextlib.suppress(psycopg.Error):
                    rows = await (await db.execute("SELECT screen FROM inflight_replies")).fetchall()
                    if any(json.loads(row[0])["text"] == text for row in rows):
                        return
            await asyncio.sleep(0.05)


async def none_in_flight(postgres_url: str, timeout: float = 30) -> None:
    """Wait until no reply is recorded in flight in Postgres: the replies shown are over, also for a takeover."""
    async with asyncio.timeout(timeout):
        while True:
            async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
                with contextlib.suppress(psycopg.Error):
                    if not await (await db.execute("SELECT id FROM inflight_replies")).fetchall():
                        return
            await asyncio.sleep(0.05)


async def let_go(redis_url: str, chat: int, timeout: float = 30) -> None:
    """Wait until no replica holds the conversation of the Telegram chat `chat` (its last turn is over)."""
    async with redis.Redis.from_url(redis_url) as client, asyncio.timeout(timeout):
        pattern = f"livebot:telegram:*:conv:telegram:{chat}:lease"
        while True:
            if not [key async for key in client.scan_iter(match=pattern)]:
                return
            await asyncio.sleep(0.05)
