"""CPU cost of the StreamingHandler per emitted token, for replies of 10k, 100k and 1M tokens.

Run: `python -m bench.handler_overhead` (add `--quick` for 10k and 100k only).

Each reply is emitted token by token (5-character tokens), yielding to the event loop after every token as the
agent's stream does, into a handler whose surface returns at once. Two profiles: an unlimited console-like one
(edits every 0.05 s, one ever-growing message) and a Telegram-like one (4,096-character messages, edits every
1.1 s, so the answer is cut into many messages). CPU seconds are the process's (time.process_time). Linear
growth shows as a constant µs/token column; a quadratic buffer would multiply it by ~10 per row.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bot.streaming import StreamingHandler
from channels.capabilities import LiveMode, Profile

PROFILES = {
    "console-like (no limit, 0.05 s)": Profile(key="bench.console", edit=True, interval=0.05, mode=LiveMode.EDIT),
    "telegram-like (4096, 1.1 s)": Profile(
        key="bench.telegram", edit=True, max_chars=4096, interval=1.1, mode=LiveMode.EDIT
    ),
}


class InstantSurface:
    """Accepts every call at once and counts them."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.calls = 0
        self.messages = 0
        self.chars_final = 0

    def measure(self, text: str) -> int:
        return len(text)

    async def send(self, text: str, *, final: bool, plain: bool = False) -> int:
        self.calls += 1
        self.messages += 1
        if final:
            self.chars_final += len(text)
        return self.messages

    async def edit(self, ref: int, text: str, *, final: bool, plain: bool = False) -> None:
        self.calls += 1
        if final:
            self.chars_final += len(text)

    async def close(self) -> None:
        pass

    def address(self) -> None:
        return None


async def one_reply(profile: Profile, tokens: int) -> tuple[float, float, InstantSurface]:
    surface = InstantSurface(profile)
    handler = StreamingHandler(surface)
    token = "word "
    wall, cpu = time.perf_counter(), time.process_time()
    await handler.start()
    for _ in range(tokens):
        handler.emit(token)
        await asyncio.sleep(0)
    await handler.stop()
    return time.process_time() - cpu, time.perf_counter() - wall, surface


async def main(sizes: list[int]) -> None:
    print(f"{'profile':34} {'tokens':>9} {'cpu s':>8} {'wall s':>8} {'µs/token':>9} {'calls':>7} {'msgs':>6}")
    for name, profile in PROFILES.items():
        for size in sizes:
            cpu, wall, surface = await one_reply(profile, size)
            print(
                f"{name:34} {size:>9,} {cpu:>8.2f} {wall:>8.2f} {cpu / size * 1e6:>9.2f} "
                f"{surface.calls:>7,} {surface.messages:>6,}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 10k and 100k tokens")
    args = parser.parse_args()
    asyncio.run(main([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]))
