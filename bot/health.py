"""Event-loop lag: how late the loop runs a callback it was asked to run now.

Every update of every reply shares one event loop, so a blocking call anywhere shows up as lag for everyone. The
monitor wakes every `PERIOD` seconds, measures how late it woke, warns about stalls as they happen, and logs the
distribution when the bot stops (bench/load.py reads that line).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.metrics import LOOP_LAG

log = logging.getLogger(__name__)

PERIOD = 0.05
STALL = 0.25
"""A lag worth a warning: users would notice a pause this long."""


class LoopLag:
    """Samples the running loop's lag until stopped."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def percentile(self, p: float) -> float:
        """The `p`-th percentile of the lag in seconds (0 with no samples)."""
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(PERIOD)
            lag = max(0.0, loop.time() - before - PERIOD)
            self.samples.append(lag)
            LOOP_LAG.observe(lag)
            if lag > STALL:
                log.warning("event loop stalled for %.0f ms", lag * 1000)


@asynccontextmanager
async def watch_loop_lag() -> AsyncIterator[LoopLag]:
    """Measure the loop's lag for the duration of the block, then log its p50/p99/max."""
    monitor = LoopLag()
    task = asyncio.create_task(monitor.run(), name="loop-lag")
    try:
        yield monitor
    finally:
        task.cancel()
        log.info(
            "event loop lag: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d samples",
            monitor.percentile(50) * 1000,
            monitor.percentile(99) * 1000,
            max(monitor.samples, default=0.0) * 1000,
            len(monitor.samples),
        )
