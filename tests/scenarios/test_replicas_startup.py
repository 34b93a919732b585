"""Replicas start at the same moment: three processes setting up one fresh Postgres together all come up (every
table set-up, the checkpointer's migrations and the state store's schemas, takes the one set-up lock,
`agent.memory.setup_lock`, one process at a time)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from agent.memory import open_checkpointer
from bot.approvals import open_approvals
from bot.inflight import SCHEMA
from bot.outbox import open_outbox
from bot.store import open_store
from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.replicas import replicas, webhook_replicas, webhooks_set
from tests.scenarios.test_metrics import get


async def test_three_replicas_starting_together_on_a_fresh_postgres_all_come_up(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("Up and answering."))
    envs = webhook_replicas(tg, llm, tmp_path, redis_url, postgres_url, 3)
    async with replicas(tg, envs, up=lambda: webhooks_set(tg, 3)):  # all three at once, each setting up
        for env, _ in envs:  # each is connected to Telegram, Postgres and Redis
            assert await get(int(env["METRICS_PORT"]), "/readyz") == (200, "ready\n")
        tg.user_message(dm, alice, "are you there?")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Up and answering."], timeout=30)


async def test_every_table_set_up_takes_the_one_lock_so_three_at_once_never_deadlock(
    tmp_path: Path, postgres_url: str
) -> None:
    async def replica(n: int) -> None:
        data = tmp_path / str(n)
        async with contextlib.AsyncExitStack() as stack:
            # One replica sets up its state store first while the others set up their memory (whose migrations
            # create an index CONCURRENTLY, which waits for every open transaction), and the other way round.
            if n == 0:
                store = await stack.enter_async_context(open_store(data, postgres_url))
                await store.migrate(SCHEMA)
            await stack.enter_async_context(open_checkpointer(data, postgres_url))
            if n != 0:
                store = await stack.enter_async_context(open_store(data, postgres_url))
                await store.migrate(SCHEMA)
            outbox = await open_outbox(store, data)
            await outbox.put("telegram", {"chat_id": n}, f"from {n}")
            await open_approvals(store, data, "telegram", 60)

    await asyncio.wait_for(asyncio.gather(*(replica(n) for n in range(3))), 120)
    async with open_store(tmp_path, postgres_url) as store:
        assert (await (await open_outbox(store, tmp_path)).figures("telegram"))[0] == 3
