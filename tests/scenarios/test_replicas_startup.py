"""Replicas start at the same moment: three processes setting up one fresh Postgres together all come up (the
checkpointer's migrations and the outbox's table are set up under an advisory lock, one process at a time)."""

from __future__ import annotations

from pathlib import Path

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
