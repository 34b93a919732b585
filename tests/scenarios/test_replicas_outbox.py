"""The outbox in Postgres (DATABASE_URL): every replica's courier delivers from one table, each entry once, also
when every replica was killed and started again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.outbox import open_outbox
from bot.store import open_store
from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.replicas import replicas, webhook_replicas, webhooks_set


async def outbox_holds(tmp_path: Path, postgres_url: str, entries: int) -> None:
    """Wait until the shared outbox holds `entries` waiting entries."""
    async with open_store(tmp_path, postgres_url) as store:
        outbox = await open_outbox(store, tmp_path)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while (await outbox.figures("telegram"))[0] != entries:
            assert loop.time() < deadline, f"the outbox never held {entries} entries"
            await asyncio.sleep(0.1)


async def test_two_couriers_on_one_table_deliver_each_entry_once(tmp_path: Path, postgres_url: str) -> None:
    delivered: list[tuple[str, str]] = []

    def courier_of(name: str) -> Any:
        async def deliver(address: dict[str, Any], text: str) -> None:
            await asyncio.sleep(0.01)  # a platform call takes a while: the other courier runs meanwhile
            delivered.append((name, text))

        return deliver

    async with open_store(tmp_path / "a", postgres_url) as one, open_store(tmp_path / "b", postgres_url) as two:
        a, b = await open_outbox(one, tmp_path / "a"), await open_outbox(two, tmp_path / "b")
        for n in range(30):
            await (a if n % 2 else b).put("telegram", {"chat_id": n}, f"entry {n}")
        assert (await a.figures("telegram"))[0] == 30  # one table: each sees every entry
        couriers = [
            asyncio.create_task(box.courier("telegram", courier_of(name))) for name, box in (("a", a), ("b", b))
        ]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(delivered) < 30:
            assert loop.time() < deadline, delivered
            await asyncio.sleep(0.05)
        await asyncio.gather(a.stop(couriers[0]), b.stop(couriers[1]))
        assert (await b.figures("telegram"))[0] == 0
    assert sorted(text for _, text in delivered) == sorted(f"entry {n}" for n in range(30))  # each once
    assert {name for name, _ in delivered} == {"a", "b"}  # both took their share


async def test_a_final_left_in_the_outbox_by_killed_replicas_is_delivered_once_after_they_restart(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("Kept for later, delivered once."))
    outage = tg.fail_next("sendMessage", chat_id=dm.id, status=502, times=1000)  # Telegram cannot take it
    envs = webhook_replicas(tg, llm, tmp_path, redis_url, postgres_url, 2, FINAL_PATIENCE="1")
    async with replicas(tg, envs, up=lambda: webhooks_set(tg, 2)) as first:
        tg.user_message(dm, alice, "hello")
        # The final was refused past FINAL_PATIENCE: it goes to the outbox, and a courier tries it.
        await outbox_holds(tmp_path, postgres_url, 1)
        for process in first:
            process.kill()
            await process.wait()
    outage.fired = outage.times  # Telegram is back
    async with replicas(tg, envs, up=lambda: webhooks_set(tg, 4)):
        await tg.wait_for(lambda: tg.visible_texts(dm), timeout=60)
        await outbox_holds(tmp_path, postgres_url, 0)  # the delivery is recorded
    assert tg.visible_texts(dm) == ["Kept for later, delivered once."]
    assert len(llm.requests) == 1
