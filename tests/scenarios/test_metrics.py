"""METRICS_PORT: the real `python -m bot telegram` process serves /metrics, /healthz and /readyz, and the figures
follow what its users lived through (an answer, a model error, a 429), read as Prometheus would read them."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.agent.test_postgres import free_port
from tests.doubles.openai_server import Error, Held, OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import telegram_process

Figures = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(port: int) -> Figures:
    """/metrics, parsed by prometheus-client's own parser: (sample name, labels) -> value."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def figure(figures: Figures, name: str, **labels: str) -> float:
    return figures.get((name, frozenset(labels.items())), 0.0)


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


async def wait_for_figures(port: int, ready: Callable[[Figures], bool], timeout: float = 30) -> Figures:
    """Scrape until `ready` holds (a reply is counted right after its user sees the text)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ready(figures := await scrape(port)):
        assert loop.time() < deadline, f"the figures never got there: {figures}"
        await asyncio.sleep(0.1)
    return figures


async def test_metrics_health_and_readiness_of_a_running_bot(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    release = asyncio.Event()
    llm.script(
        Text("Hi there, Alice."),
        Error(400, "messages: this request is malformed", type="invalid_request_error"),
        Held("Finishing while the bot stops.", after_chars=9, release=release),
    )
    tg.fail_next("sendMessage", chat_id=dm.id, retry_after=1)  # the first answer's final waits out a 429
    port = free_port()
    settings = {"METRICS_PORT": str(port), "METRICS_LISTEN": "127.0.0.1", "SHUTDOWN_GRACE": "120"}
    async with telegram_process(tg, llm, tmp_path, **settings) as process:
        assert await get(port, "/healthz") == (200, "ok\n")
        assert await get(port, "/readyz") == (200, "ready\n")

        tg.user_message(dm, alice, "hello")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Hi there, Alice."], timeout=30)
        tg.user_message(dm, alice, "and now?")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2, timeout=30)

        def both_counted(f: Figures) -> bool:
            return figure(f, "livebot_replies_finished_total", platform="telegram", outcome="failed") == 1

        figures = await wait_for_figures(port, both_counted)
        calls = list(tg.calls)

        # SIGTERM during a reply: for the whole grace /readyz says so (also on a connection the balancer keeps
        # open), and /healthz and /metrics stay up.
        tg.user_message(dm, alice, "one more")
        await tg.wait_for(lambda: tg.active_drafts(dm), timeout=30)  # the answer is being written
        async with aiohttp.ClientSession() as balancer:  # one kept-alive connection, as a load balancer keeps
            async with balancer.get(f"http://127.0.0.1:{port}/readyz") as response:
                assert response.status == 200
            process.send_signal(signal.SIGTERM)
            while True:
                async with balancer.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 503:
                        assert await response.text() == "shutting down\n"
                        break
                await asyncio.sleep(0.05)
            assert await get(port, "/healthz") == (200, "ok\n")
            assert figure(await scrape(port), "livebot_conversations_in_flight", platform="telegram") == 1
            release.set()
        assert await asyncio.wait_for(process.wait(), 60) == 0
        assert tg.visible_texts(dm)[2] == "Finishing while the bot stops."

    telegram = {"platform": "telegram"}
    assert figure(figures, "livebot_replies_started_total", **telegram) == 2
    assert figure(figures, "livebot_replies_finished_total", **telegram, outcome="answered") == 1
    assert figure(figures, "livebot_replies_failed_total", **telegram, reason="model") == 1
    assert figure(figures, "livebot_model_errors_total", kind="bad_request") == 1
    assert figure(figures, "livebot_first_visible_seconds_count", **telegram) == 2
    assert figure(figures, "livebot_final_seconds_count", **telegram) == 2
    # The first final waited out the 429's retry_after: at least a second from start to final.
    assert figure(figures, "livebot_final_seconds_bucket", **telegram, le="0.5") <= 1
    sent = figure(figures, "livebot_platform_calls_total", **telegram, method="sendMessage")
    assert sent == len([c for c in calls if c.method == "sendMessage"])
    assert figure(figures, "livebot_platform_rate_limited_total", **telegram, method="sendMessage") == 1
    assert figure(figures, "livebot_platform_calls_total", **telegram, method="getUpdates") >= 1
    assert figure(figures, "livebot_conversations_in_flight", **telegram) == 0
    assert figure(figures, "livebot_outbox_depth", **telegram) == 0
    assert ("livebot_limiter_dropped_total", frozenset(telegram.items())) in figures
    assert figure(figures, "livebot_event_loop_lag_seconds_count") > 0
    assert figure(figures, "process_cpu_seconds_total") > 0
