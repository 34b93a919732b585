"""The loop-lag monitor notices a blocking call."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.health import watch_loop_lag


async def test_a_blocking_call_shows_as_lag_and_a_stall_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.health")
    async with watch_loop_lag() as lag:
        await asyncio.sleep(0.12)
        time.sleep(0.3)  # noqa: ASYNC251 - the blocking call a careless handler would make
        await asyncio.sleep(0.12)
    assert max(lag.samples) >= 0.25
    assert "stalled" in caplog.text and "p99" in caplog.text
