"""Telegram's long polling with replicas: exactly one polls, the other stands by and takes over within seconds
when the poller is killed; never two getUpdates at once (the double, like Telegram, ends a concurrent one with
409)."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.replicas import none_in_flight, replica_env, replicas

POLLING = "telegram: polling"


def polling_replicas(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> list[tuple[dict[str, str], Path]]:
    """Two replicas without a webhook (each polls while it holds the lease)."""
    return [(replica_env(tg, llm, tmp_path / name, redis_url, postgres_url), tmp_path / name) for name in "ab"]


def both_listening(tg: TelegramDouble) -> bool:
    """Both replicas set the command menu (they listen), and one of them polls."""
    return len(tg.calls_to("setMyCommands")) == 2 and tg.waiting_polls == 1


def conflicts(tg: TelegramDouble) -> list[object]:
    """getUpdates answered 409 to a client still listening: two pollers at once."""
    return [c for c in tg.calls if c.method == "getUpdates" and c.status == 409 and not c.client_gone]


async def test_one_replica_polls_and_another_takes_over_when_it_is_killed(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("Answered by the poller."), Text("Answered after the takeover."))
    envs = polling_replicas(tg, llm, tmp_path, redis_url, postgres_url)
    async with replicas(tg, envs, up=lambda: both_listening(tg)) as processes:
        tg.user_message(dm, alice, "hello")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Answered by the poller."], timeout=30)
        logs = [(cwd / "bot.log").read_text() for _, cwd in envs]
        assert [POLLING in log for log in logs].count(True) == 1  # one poller, one standing by
        poller = processes[[POLLING in log for log in logs].index(True)]
        standby_log = envs[[POLLING in log for log in logs].index(False)][1] / "bot.log"

        await none_in_flight(postgres_url)  # a kill in its last ms would leave its record to mark
        poller.send_signal(signal.SIGKILL)
        await poller.wait()
        tg.user_message(dm, alice, "still there?")  # waits in Telegram's queue for the next poller
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2, timeout=60)
        assert POLLING in standby_log.read_text()
        assert "took over polling" in standby_log.read_text()
    assert tg.visible_texts(dm) == ["Answered by the poller.", "Answered after the takeover."]
    assert conflicts(tg) == []


async def test_a_poller_stopped_gracefully_hands_over_to_the_standby(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("After the rolling deploy."))
    envs = polling_replicas(tg, llm, tmp_path, redis_url, postgres_url)
    async with replicas(tg, envs, up=lambda: both_listening(tg)) as processes:
        logs = [(cwd / "bot.log").read_text() for _, cwd in envs]
        poller = processes[[POLLING in log for log in logs].index(True)]
        poller.send_signal(signal.SIGTERM)
        assert await poller.wait() == 0
        tg.user_message(dm, alice, "hello")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["After the rolling deploy."], timeout=30)
    assert conflicts(tg) == []
