"""Telegram albums with replicas: two replicas behind a round-robin balancer get the photos of one album in turn,
and the album is answered as one turn, as one process answers it: in a group, the mention on the first photo
makes the others count, an album nobody addressed is ignored, and an outsider's album gets no refusal unless it
addressed the bot; in a private chat every album is a question. With Redis away, a replica collects the album
itself."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.shared_albums import SharedAlbums
from channels.telegram.albums import QUIET
from tests.agent.test_postgres import free_port
from tests.doubles.openai_server import OpenAIDouble, Text, image_parts, text_parts
from tests.doubles.telegram_api import TelegramDouble
from tests.media.samples import jpeg
from tests.scenarios.conftest import running
from tests.scenarios.replicas import RoundRobin, replicas, webhook_replicas, webhooks_set

THREE = "Three photos, one answer."
TWO = "Two photos, one answer."


async def test_an_albums_photos_spread_over_replicas_are_answered_as_one_turn(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    mallory = tg.add_user("Mallory", username="mallory")  # not on the allowlist
    group = tg.add_group("Team")
    dm = tg.private_chat(alice)
    llm.script(Text(THREE), Text(TWO))
    balancer = RoundRobin()
    envs = webhook_replicas(
        tg, llm, tmp_path, redis_url, postgres_url, 2, url=balancer.url, TELEGRAM_ALLOWED_USERS="alice"
    )
    async with balancer.serving(envs), replicas(tg, envs, up=lambda: webhooks_set(tg, 2)):
        for color in ("red", "blue"):  # photos shared in the group, not for the bot: no reply, no refusal
            tg.user_file(group, mallory, photo=jpeg(320, 240, color=color), media_group_id="mallory")
            tg.user_file(group, alice, photo=jpeg(320, 240, color=color), media_group_id="holiday")
        first = tg.user_file(
            group, alice, photo=jpeg(800, 600), caption="@livebot_test which is brightest?", media_group_id="asked"
        )
        tg.user_file(group, alice, photo=jpeg(800, 600, color="white"), media_group_id="asked")
        tg.user_file(group, alice, photo=jpeg(800, 600, color="gray"), media_group_id="asked")
        await tg.wait_for(lambda: THREE in tg.visible_texts(group), timeout=90)
        asked = balancer.sent[-3:]
        assert len(set(asked)) == 2  # the album's photos landed on both replicas

        tg.user_file(dm, alice, photo=jpeg(640, 480), caption="And these two?", media_group_id="private")
        tg.user_file(dm, alice, photo=jpeg(640, 480, color="black"), media_group_id="private")
        await tg.wait_for(lambda: tg.visible_texts(dm), timeout=90)

    assert tg.visible_texts(group) == [THREE]  # one answer; nothing for the other albums
    assert tg.bot_messages(group)[0].reply_to_message_id == first.message_id  # replying to the album's first
    assert tg.visible_texts(dm) == [TWO]
    group_turn, private_turn = llm.requests  # one model request per album that asked
    assert len(image_parts(group_turn)) == 3
    assert any("which is brightest?" in text for text in text_parts(group_turn))
    assert len(image_parts(private_turn)) == 2
    assert any("And these two?" in text for text in text_parts(private_turn))


async def test_with_redis_away_a_replica_collects_an_album_itself(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    llm.script(Text(TWO))
    async with (
        redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", retry=Retry(NoBackoff(), 0)) as away,  # (no one)
        running(tg, llm, tmp_path) as bot,
    ):
        bot.shared_albums = SharedAlbums(away, "livebot:telegram:away", bot.fetcher, lambda items: None, quiet=QUIET)
        with caplog.at_level(logging.WARNING, logger="bot.telegram_app"):
            tg.user_file(group, alice, photo=jpeg(640, 480), caption="@livebot_test compare", media_group_id="a")
            tg.user_file(group, alice, photo=jpeg(640, 480, color="black"), media_group_id="a")
            await tg.wait_for(lambda: tg.visible_texts(group), timeout=60)
    assert tg.visible_texts(group) == [TWO]
    (turn,) = llm.requests
    assert len(image_parts(turn)) == 2  # the later photo, with no mention, counted: the album was collected here
    assert any("cannot collect album a in Redis" in r.getMessage() for r in caplog.records)
