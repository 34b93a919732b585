"""Set-up when replicas start together on one Postgres: every table set-up of livebot (the conversation memory's
checkpointer and the bot's state store) takes the one set-up lock, so three at once all start."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from agent.memory import open_checkpointer
from bot.approvals import open_approvals
from bot.inflight import SCHEMA
from bot.outbox import open_outbox
from bot.store import open_store

POSTGRES = os.environ.get("LIVEBOT_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not POSTGRES, reason="LIVEBOT_TEST_DATABASE_URL is not set")


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """LIVEBOT_TEST_DATABASE_URL with an empty schema of the test's own (dropped after it)."""
    assert POSTGRES is not None
    schema = f"test_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(POSTGRES, autocommit=True) as conn:
        await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES}{'&' if '?' in POSTGRES else '?'}options=-csearch_path%3D{schema}"
    finally:
        async with await psycopg.AsyncConnection.connect(POSTGRES, autocommit=True) as conn:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def test_three_replicas_setting_up_one_empty_database_at_once_all_start(tmp_path: Path, database: str) -> None:
    async def replica(n: int) -> None:
        data = tmp_path / str(n)
        async with contextlib.AsyncExitStack() as stack:
            # One replica sets up its state store first while the others set up their memory (whose migrations
            # create an index CONCURRENTLY, which waits for every open transaction), and the other way round.
            if n == 0:
                store = await stack.enter_async_context(open_store(data, database))
                await store.migrate(SCHEMA)
            await stack.enter_async_context(open_checkpointer(data, database))
            if n != 0:
                store = await stack.enter_async_context(open_store(data, database))
                await store.migrate(SCHEMA)
            outbox = await open_outbox(store, data)
            await outbox.put("telegram", {"chat_id": n}, f"from {n}")
            await open_approvals(store, data, "telegram", 60)

    await asyncio.wait_for(asyncio.gather(*(replica(n) for n in range(3))), 120)
    async with open_store(tmp_path, database) as store:
        assert (await (await open_outbox(store, tmp_path)).figures("telegram"))[0] == 3
