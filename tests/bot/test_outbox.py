"""The outbox at shutdown: a delivery the platform took is recorded, so the next start does not send it again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.outbox import open_outbox


async def test_stopping_the_courier_mid_delivery_records_the_send(tmp_path: Path) -> None:
    sent: list[str] = []
    in_flight = asyncio.Event()
    release = asyncio.Event()

    async def deliver(address: dict[str, Any], text: str) -> None:
        in_flight.set()
        await release.wait()  # the platform is slow to answer while the bot shuts down
        sent.append(text)

    async with open_outbox(tmp_path) as outbox:
        await outbox.put("telegram", {"chat_id": 1}, "Worth the wait.")
        courier = asyncio.create_task(outbox.courier("telegram", deliver))
        await asyncio.wait_for(in_flight.wait(), 10)
        stopping = asyncio.create_task(outbox.stop(courier))
        await asyncio.sleep(0)  # the stop request is made while the send is in flight
        release.set()
        await asyncio.wait_for(stopping, 10)
        assert sent == ["Worth the wait."]
        assert (await outbox.figures("telegram"))[0] == 0  # recorded: a restart sends nothing again
