"""Three replicas behind a round-robin balancer, under load: 300 private chats ask at once, their updates spread
over the replicas. Every answer arrives whole, once, and the bot's Telegram budget (30 calls a second, 1 a second
per chat) is kept by the three together: no call is rate-limited and none lands inside a retry_after. Then an
update delivered again, to the other two replicas, is answered once (the replicas claim update ids in Redis)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.webhooks import TELEGRAM_SECRET_HEADER
from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.replicas import SECRET, RoundRobin, replicas, webhook_replicas, webhooks_set

ANSWER = " ".join(f"word{i}" for i in range(12))


async def test_three_hundred_conversations_over_three_replicas_are_never_rate_limited_and_answered_once(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    n = 300
    llm.script(*[Text(ANSWER, chunk_size=40, delay=0.05) for _ in range(n)], Text("The next question's answer."))
    users = [tg.add_user(f"User{i}", username=f"user{i}") for i in range(n)]
    chats = [tg.private_chat(user) for user in users]
    balancer = RoundRobin()
    envs = webhook_replicas(tg, llm, tmp_path, redis_url, postgres_url, 3, url=balancer.url)
    async with balancer.serving(envs), replicas(tg, envs, up=lambda: webhooks_set(tg, 3)):
        for chat, user in zip(chats, users, strict=True):
            tg.user_message(chat, user, "tell me a story")
        await tg.wait_for(lambda: all(tg.visible_texts(chat) == [ANSWER] for chat in chats), timeout=300)
        assert sorted(balancer.sent) == sorted(i % 3 for i in range(n))  # each replica took a third in
        finals = [c.chat_id for c in tg.calls if c.method == "sendMessage" and c.ok]
        assert sorted(finals) == sorted(chat.id for chat in chats)  # none starved, none answered twice
        assert tg.rate_limited == [] and tg.calls_inside_retry_after == []
        assert not any(tg.active_drafts(chat) for chat in chats)

        update = tg.hub.log[0]  # the first chat's question, which the first replica took in
        async with aiohttp.ClientSession() as session:
            for env, _ in envs[1:]:  # Telegram retries it: to the other two replicas
                url = f"http://127.0.0.1:{env['TELEGRAM_WEBHOOK_PORT']}/telegram"
                async with session.post(url, json=update, headers={TELEGRAM_SECRET_HEADER: SECRET}) as response:
                    assert response.status == 200
        tg.user_message(chats[0], users[0], "and a new question")  # answered after the duplicates were dropped
        await tg.wait_for(lambda: len(tg.visible_texts(chats[0])) == 2, timeout=60)
    assert tg.visible_texts(chats[0]) == [ANSWER, "The next question's answer."]
    assert len(llm.requests) == n + 1
