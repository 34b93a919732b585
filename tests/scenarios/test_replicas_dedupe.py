"""Exactly once across replicas: an update delivered twice, to the same replica or to another, is answered once
(the replicas claim update ids in Redis)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.webhooks import TELEGRAM_SECRET_HEADER
from tests.agent.test_postgres import free_port
from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.replicas import SECRET, replica, replica_env


async def test_an_update_delivered_to_two_replicas_is_answered_once(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("Answered once."), Text("The second question's answer."))
    ports = free_port(), free_port()
    url = f"http://127.0.0.1:{ports[0]}/telegram"  # Telegram posts to replica 0 (the load balancer's choice)
    envs = [
        replica_env(
            tg,
            llm,
            tmp_path / name,
            redis_url,
            postgres_url,
            TELEGRAM_WEBHOOK_URL=url,
            TELEGRAM_WEBHOOK_SECRET=SECRET,
            TELEGRAM_WEBHOOK_LISTEN="127.0.0.1",
            TELEGRAM_WEBHOOK_PORT=str(port),
        )
        for name, port in zip("ab", ports, strict=True)
    ]

    def webhooks_set(count: int) -> bool:
        return len([call for call in tg.calls if call.method == "setWebhook" and call.status == 200]) >= count

    async with (
        replica(tg, envs[0], tmp_path / "a", up=lambda: webhooks_set(1)),
        replica(tg, envs[1], tmp_path / "b", up=lambda: webhooks_set(2)),
    ):
        tg.user_message(dm, alice, "hello")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Answered once."], timeout=30)
        (update,) = tg.hub.log
        async with aiohttp.ClientSession() as session:
            for port in (ports[1], ports[0]):  # a retry to the other replica, and one to the same
                async with session.post(
                    f"http://127.0.0.1:{port}/telegram", json=update, headers={TELEGRAM_SECRET_HEADER: SECRET}
                ) as response:
                    assert response.status == 200
        tg.user_message(dm, alice, "and a new question")  # answered after the duplicates were dropped
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2, timeout=30)
    assert tg.visible_texts(dm) == ["Answered once.", "The second question's answer."]
    assert len(llm.requests) == 2
