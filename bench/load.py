"""N conversations ask at once: does every word arrive, how fast, and without being rate-limited?

Run: `python -m bench.load` (100 conversations) or `python -m bench.load -n 1000`; `--groups F` makes a fraction F
of the conversations groups (edit streaming at 20 messages/minute) instead of private chats (drafts); `--chunk C`
streams C characters per chunk at the same ~25 tokens/s (default 4, one token a chunk as OpenAI sends them): the
OpenAI SDK's parsing of each chunk is most of the bot's CPU, so larger chunks measure how the Telegram budget is
spent when the CPU is not what holds the answers back.

How: this process runs the Bot API double with Telegram's limits (about 1 message/s per private chat with bursts
of 3, 20/min per group, 30/s per bot, 429 + retry_after) and the OpenAI-compatible double streaming every answer
at ~25 tokens/s (4-character chunks every 0.04 s). The bot runs as its own process (`python -m bot telegram`), so
its CPU time and peak memory are its own (/proc), and its event-loop lag is the line its lag monitor logs when it
stops. Every user sends one question at the same moment; the run ends when every chat shows the whole answer.

`--replicas N` runs N bot processes in replica mode (webhook, behind the round-robin balancer of the replica tests)
on the Redis and Postgres of `LIVEBOT_TEST_REDIS_URL` and `LIVEBOT_TEST_DATABASE_URL` (a schema of its own,
dropped after; the bench bot's keys in Redis are deleted first); CPU and memory are the sum over the replicas,
the loop lag is each replica's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

from tests.agent.test_postgres import free_port
from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.replicas import SECRET, RoundRobin

TOKEN = "123456:LOAD-token-for-the-double-0123456789"
ROOT = Path(__file__).resolve().parent.parent
SHOWN = ("sendMessageDraft", "sendMessage", "editMessageText")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_kib(pid: int, field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else float("nan")


@contextlib.asynccontextmanager
async def replica_mode(replicas: int) -> AsyncIterator[list[dict[str, str]]]:
    """The settings of each replica (none: one process polling), with Redis cleared of the bench bot's keys and
    a Postgres schema of the run's own."""
    if replicas == 0:
        yield [{}]
        return
    import psycopg
    import redis.asyncio as redis

    redis_url, database_url = os.environ["LIVEBOT_TEST_REDIS_URL"], os.environ["LIVEBOT_TEST_DATABASE_URL"]
    async with redis.Redis.from_url(redis_url) as client:
        bot_id = TOKEN.split(":")[0]
        for pattern in (f"livebot:telegram:{bot_id}:*", f"livebot:rate:telegram:{bot_id}:*"):
            async for key in client.scan_iter(match=pattern):
                await client.delete(key)
    schema = f"bench_{os.getpid()}"
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        shared = {
            "REDIS_URL": redis_url,
            "DATABASE_URL": f"{database_url}{'&' if '?' in database_url else '?'}options=-csearch_path%3D{schema}",
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
        }
        yield [{**shared, "TELEGRAM_WEBHOOK_PORT": str(free_port())} for _ in range(replicas)]
    finally:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def run(n: int, groups: float, words: int, chunk: int, timeout: float, replicas: int = 0) -> None:
    answer = " ".join(f"word{i}" for i in range(words))
    with tempfile.TemporaryDirectory() as data:
        async with (
            OpenAIDouble() as llm,
            TelegramDouble(token=TOKEN, bot_username="livebot_load") as tg,
            replica_mode(replicas) as modes,
            contextlib.AsyncExitStack() as stack,
        ):
            llm.script(*[Text(answer, chunk_size=chunk, delay=0.01 * chunk) for _ in range(n)])
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TELEGRAM_", "LLM_"))},
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE_URL": tg.root,
                "OPENAI_BASE_URL": llm.base_url,
                "OPENAI_API_KEY": "sk-load",
                "LLM_MODEL": llm.model,  # the start-up model check stops a bot whose model the server does not serve
                "LOG_LEVEL": "INFO",
                "PYTHONPATH": str(ROOT),
            }
            balancer = RoundRobin()
            if replicas:
                await stack.enter_async_context(balancer.serving([(mode, Path(data)) for mode in modes]))
            bots = []
            for i, mode in enumerate(modes):
                (Path(data) / str(i)).mkdir()
                url = {"TELEGRAM_WEBHOOK_URL": balancer.url} if replicas else {}
                bots.append(
                    await asyncio.create_subprocess_exec(
                        *(sys.executable, "-m", "bot", "telegram"),
                        env={**env, **mode, **url, "BOT_DATA_DIR": str(Path(data) / str(i))},
                        cwd=data,
                        stderr=asyncio.subprocess.PIPE,
                    )
                )
            logs = [asyncio.create_task(bot.stderr.read()) for bot in bots]  # type: ignore[union-attr]
            set_webhooks = lambda: len([c for c in tg.calls if c.method == "setWebhook" and c.ok])  # noqa: E731
            await tg.wait_for(lambda: set_webhooks() >= replicas if replicas else tg.waiting_polls, timeout=120)
            cpu_before = sum(cpu_seconds(bot.pid) for bot in bots)
            rss_before = sum(rss_kib(bot.pid, "VmRSS") for bot in bots)
            chats, asked = [], {}
            group_count = round(n * groups)
            for i in range(n):
                user = tg.add_user(f"User{i}", username=f"user{i}")
                chat = tg.add_group(f"Group{i}") if i < group_count else tg.private_chat(user)
                chats.append((chat, user))
            started = time.monotonic()
            for chat, user in chats:
                prefix = "@livebot_load " if chat.id < 0 else ""
                asked[chat.id] = time.monotonic()
                tg.user_message(chat, user, f"{prefix}tell me a story")
            done = lambda: sum(tg.visible_texts(chat) == [answer] for chat, _ in chats)  # noqa: E731
            with contextlib.suppress(TimeoutError, AssertionError):
                await tg.wait_for(lambda: done() == n, timeout=timeout)
            elapsed = time.monotonic() - started
            cpu = sum(cpu_seconds(bot.pid) for bot in bots) - cpu_before
            peak = sum(rss_kib(bot.pid, "VmHWM") for bot in bots)
            for bot in bots:
                bot.send_signal(signal.SIGTERM)
            for bot in bots:
                await bot.wait()
            lags = [
                re.search(r"event loop lag: p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms", (await log).decode())
                for log in logs
            ]

    first = []
    calls = 0
    for chat, _ in chats:
        mine = [c for c in tg.calls if c.chat_id == chat.id]
        calls += len(mine)
        shown = [c.at for c in mine if c.method in SHOWN and c.ok]
        if shown:
            first.append(shown[0] - asked[chat.id])
    kinds = f"{n - group_count} private, {group_count} group" if group_count else f"{n} private"
    print(f"conversations            {n} ({kinds}), answers of {words} words at ~25 tokens/s, {chunk} chars a chunk")
    if replicas:
        print(f"replicas                 {replicas} (webhook behind a round-robin balancer, Redis and Postgres)")
    print(f"complete (every word)    {done()}/{n} in {elapsed:.1f} s")
    print(f"first visible text       p50 {pct(first, 50):.2f} s, p95 {pct(first, 95):.2f} s, max {max(first):.2f} s")
    by_method = Counter(c.method for c in tg.calls if c.chat_id is not None)
    per_method = ", ".join(f"{method} {count / n:.2f}" for method, count in by_method.most_common())
    print(f"API calls per reply      {calls / n:.1f} ({per_method})")
    print(f"rate-limited calls       {len(tg.rate_limited)}")
    print(f"calls inside retry_after {len(tg.calls_inside_retry_after)}")
    if tg.rate_limited:
        by_method = Counter(c.method for c in tg.rate_limited)
        by_scope = Counter(v.scope.split(":")[0] for v in tg.calls_inside_retry_after)
        print(f"  429s by method {dict(by_method)}; calls inside a wait by scope {dict(by_scope)}")
    print(f"bot CPU per reply        {cpu / n * 1000:.1f} ms ({cpu:.1f} s in all)")
    print(
        f"bot peak RSS             {peak / 1024:.0f} MiB ({(peak - rss_before) / 1024 / n:.2f} MiB per conversation "
        f"above the idle {rss_before / 1024:.0f} MiB)"
    )
    for i, lag in enumerate(lags):
        if lag:
            who = f" (replica {i + 1})" if replicas else ""
            print(f"event-loop lag           p50 {lag[1]} ms, p99 {lag[2]} ms, max {lag[3]} ms{who}")
    print(f"(median of all first-visible times: {statistics.median(first):.2f} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="conversations (default 100)")
    parser.add_argument("--groups", type=float, default=0.0, help="fraction of conversations that are groups")
    parser.add_argument("--words", type=int, default=80, help="words per answer (default 80)")
    parser.add_argument("--chunk", type=int, default=4, help="characters per streamed chunk (default 4)")
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    parser.add_argument("--replicas", type=int, default=0, help="bot processes in replica mode (default: one, no)")
    args = parser.parse_args()
    if args.replicas and not all(map(os.environ.get, ("LIVEBOT_TEST_REDIS_URL", "LIVEBOT_TEST_DATABASE_URL"))):
        parser.error("--replicas needs LIVEBOT_TEST_REDIS_URL and LIVEBOT_TEST_DATABASE_URL (a Redis and a Postgres)")
    asyncio.run(run(args.n, args.groups, args.words, args.chunk, args.timeout, args.replicas))
