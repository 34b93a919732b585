"""Where conversations are remembered between runs and restarts.

A small factory so that the backend is chosen in one place: SQLite in the data directory today; Postgres
(DATABASE_URL, langgraph-checkpoint-postgres) is meant to become a second branch here, not a change elsewhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

SQLITE_FILE = "memory.sqlite"


@asynccontextmanager
async def open_checkpointer(data_dir: Path) -> AsyncIterator[BaseCheckpointSaver]:
    """Open the conversation store for the lifetime of the bot.

    Args:
        data_dir: BOT_DATA_DIR; created if missing. The store is `data_dir / "memory.sqlite"`.

    Yields:
        A checkpointer for `create_agent`; its connection is closed on exit.
    """
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(data_dir / SQLITE_FILE)) as saver:
        await saver.setup()
        yield saver
