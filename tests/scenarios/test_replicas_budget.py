"""One rate budget for all replicas: a 429 that one replica got holds back every replica's calls to that chat
until the retry_after has passed (the gate is in Redis, `channels.shared_budget`)."""

from __future__ import annotations

from pathlib import Path

from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.replicas import replicas, webhook_replicas, webhooks_set


async def test_a_retry_after_one_replica_got_is_honoured_by_the_other(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("First answer, after the wait."), Text("Second answer, from the other replica."))
    tg.fail_next("sendMessageDraft", chat_id=dm.id, retry_after=4)  # the first reply's first draft: wait 4 s
    envs = webhook_replicas(tg, llm, tmp_path, redis_url, postgres_url, 2, STREAM_MODE="draft")
    async with replicas(tg, envs, up=lambda: webhooks_set(tg, 2)):
        tg.user_message(dm, alice, "first")  # to replica 0 (the webhook's address)
        await tg.wait_for(lambda: tg.rate_limited, timeout=30)
        assert tg.hub.webhook is not None
        tg.hub.webhook.url = f"http://127.0.0.1:{envs[1][0]['TELEGRAM_WEBHOOK_PORT']}/telegram"  # the balancer's turn
        tg.user_message(dm, alice, "second")  # to replica 1, which got no 429 itself
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2, timeout=60)
    assert sorted(tg.visible_texts(dm)) == ["First answer, after the wait.", "Second answer, from the other replica."]
    assert tg.calls_inside_retry_after == []
