"""Many conversations at once, through the real channels against the doubles' rate limits: Slack budgets per
workspace, and a Telegram burst larger than the bot's budget. What users see: every answer whole, no 429."""

from __future__ import annotations

from pathlib import Path

from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import running
from tests.scenarios.slack_scene import CHANNEL, SlackScene

ANSWER = " ".join(f"word{i}" for i in range(60))


async def test_ten_conversations_streaming_in_one_workspace_stay_within_its_tiers(scene: SlackScene) -> None:
    scene.llm.script(*[Text(ANSWER, chunk_size=8, delay=0.05) for _ in range(10)])  # ~3 s each, all at once
    mentions = [scene.mention(f"question {n}", channel=CHANNEL, user=f"U0USER{n}") for n in range(5)]
    dms = [scene.dm(f"question {n}", channel=f"D0USER{n}", user=f"U0DM{n}") for n in range(5)]
    for event in [*mentions, *dms]:
        assert (await scene.post(event)).status == 200
    await scene.replied(timeout=120)

    for mention in mentions:
        assert [m.text for m in scene.thread(mention)] == [ANSWER]
    for dm in dms:
        assert [m.text for m in scene.slack.messages(dm["channel"])] == [ANSWER]
    assert scene.slack.rate_limited == []  # the workspace's tiers are shared by all ten, and kept
    assert scene.slack.calls_inside_retry_after == []
    assert scene.streaming() == []


async def test_a_telegram_burst_beyond_the_bot_budget_answers_everyone_once(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    n = 160  # more first previews than the bot's 25 calls a second serve within the preview horizon
    llm.script(*[Text(ANSWER, chunk_size=20, delay=0.02) for _ in range(n)])
    users = [tg.add_user(f"User{i}", username=f"user{i}") for i in range(n)]
    chats = [tg.private_chat(user) for user in users]
    async with running(tg, llm, tmp_path):
        for chat, user in zip(chats, users, strict=True):
            tg.user_message(chat, user, "tell me a story")
        await tg.wait_for(lambda: all(tg.visible_texts(chat) == [ANSWER] for chat in chats), timeout=240)

    finals = [c.chat_id for c in tg.calls if c.method == "sendMessage" and c.ok]
    assert sorted(finals) == sorted(chat.id for chat in chats)  # no reply starved, none answered twice
    assert tg.rate_limited == [] and tg.calls_inside_retry_after == []
    previews = {c.chat_id for c in tg.calls if c.method == "sendMessageDraft" and c.ok}
    assert chats[0].id in previews  # the first replies, before the line grew, still showed previews
