"""The HTTP intakes are never open: Telegram's webhook needs its secret, bodies are capped before they are read,
and a malformed body with the right secret (or a valid Slack signature) gets a 4xx, never a 500."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from bot.webhooks import MAX_BODY_BYTES, TELEGRAM_SECRET_HEADER
from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.slack_events import post_event
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import TOKEN, bot_env, run_bot, running
from tests.scenarios.slack_scene import SECRET, clean_environment, free_port, running_scene

HUGE = 90 * 1024 * 1024
SECRET_TOKEN = "s3cret-webhook-token"


async def status_before_the_body(url: str, headers: dict[str, str], length: int) -> int:
    """POST announcing a `length`-byte body but send only 64 kB of it: the status the server answers anyway.

    A server that read the body before answering would wait for the rest (and the test would time out).
    """
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {length}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + b"x" * 65536)
    try:
        status_line = await asyncio.wait_for(reader.readline(), 20)
    finally:
        writer.close()
    return int(status_line.split()[1])


async def test_webhook_url_without_a_secret_stops_start_up_with_one_line(tmp_path: Path) -> None:
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_WEBHOOK_URL="https://bot.example.com/telegram")
    done = await run_bot(["telegram"], stdin="", env=env, cwd=tmp_path)
    assert done.code == 2
    assert done.err.strip().count("\n") == 0 and "TELEGRAM_WEBHOOK_SECRET" in done.err


async def test_telegram_webhook_caps_bodies_and_answers_malformed_updates_with_400(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("Still here."))
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    webhook = {
        "telegram_webhook_url": url,
        "telegram_webhook_secret": SECRET_TOKEN,
        "telegram_webhook_listen": "127.0.0.1",
        "telegram_webhook_port": port,
    }
    json_type = {"Content-Type": "application/json"}
    async with running(tg, llm, tmp_path, **webhook):
        assert await status_before_the_body(url, json_type, HUGE) == 403  # no secret: refused unread
        assert await status_before_the_body(url, {**json_type, TELEGRAM_SECRET_HEADER: SECRET_TOKEN}, HUGE) == 413
        async with aiohttp.ClientSession() as http:
            for body in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"update_id": "x", "message": 5}'):
                headers = {**json_type, TELEGRAM_SECRET_HEADER: SECRET_TOKEN}
                async with http.post(url, data=body, headers=headers) as response:
                    assert response.status == 400, body
        tg.user_message(dm, alice, "are you alive?")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Still here."])


def signed(body: bytes, timestamp: str) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


async def test_slack_http_mode_caps_bodies_and_answers_bad_requests_with_4xx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch)
    async with running_scene(tmp_path) as scene:
        url = scene.bot.url
        assert url is not None
        now = str(int(time.time()))
        async with aiohttp.ClientSession() as http:
            async with http.post(url, data=b"{}", headers=signed(b"{}", "soon")) as response:
                assert response.status == 401  # a non-numeric timestamp
            form = "application/x-www-form-urlencoded"
            bad = ((b"{not json", "application/json"), (b"payload=%7Bbroken", form), (b"[1]", "application/json"))
            for body, kind in bad:
                async with http.post(url, data=body, headers={**signed(body, now), "Content-Type": kind}) as response:
                    assert response.status == 400, body
        big = {**signed(b"", now), "Content-Type": "application/json"}
        assert await status_before_the_body(url, big, MAX_BODY_BYTES + 1) == 413
        scene.llm.script(Text("Still here."))
        reply = await post_event(url, scene.slack.envelope(scene.dm("are you alive?")), SECRET)
        assert reply.status == 200
        await scene.replied()
        assert scene.slack.messages("D0ALICE")[-1].text == "Still here."
