"""Exactly once across replicas: an update delivered twice, to the same replica or to another, is answered once
(the replicas claim update ids in Redis)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.webhooks import TELEGRAM_SECRET_HEADER
from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.replicas import SECRET, replicas, webhook_replicas, webhooks_set


async def test_an_update_delivered_to_two_replicas_is_answered_once(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("Answered once."), Text("The second question's answer."))
    envs = webhook_replicas(tg, llm, tmp_path, redis_url, postgres_url, 2)
    ports = [env["TELEGRAM_WEBHOOK_PORT"] for env, _ in envs]
    async with replicas(tg, envs, up=lambda: webhooks_set(tg, 2)):
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
