"""The worst CPU per call found for what hostile text costs: rendering and cutting model text, parsing and
decoding fetched pages.

Run: `python -m bench.worst_case` (`--samples N` mixed inputs besides one per unit, default 300).

Rendering and cutting: every unit of `tests/channels/adversarial.py` alone, then N seeded mixes of up to four
units (sometimes after a first line of thousands of backticks), as

- Telegram render: `render` of a 4,096-character text;
- Telegram cut: one `split_to_fit` of a ~12,000-character answer into a 4,096-unit message (Telegram's measure,
  which renders each candidate it is asked about, and its ceiling, as the StreamingHandler cuts);
- Slack cut: one `split_to_fit` of a ~36,000-character answer into a 12,000-character message.

Fetching: `html_to_text` of 1 MiB pages made of one markup unit repeated (each call as `web_fetch` makes it,
with its text limit: pages of text stop early, pages of bare tags are the expensive ones), and `read_body` of
gzip and deflate bombs that decode to 256 MiB, under the default 1 MiB cap.

CPU is the calling thread's (`time.thread_time`), the least of three runs per input, so other processes on a
busy machine inflate it little. Each line prints the worst input found and its cost; the target for rendering
and cutting is 20 ms per call.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import zlib
from collections.abc import AsyncIterator
from functools import partial

import httpx

from channels.splitting import split_to_fit
from channels.telegram.render import ceiling, measure, render
from tests.channels.adversarial import UNITS, cpu
from tools._body import read_body
from tools._html_text import html_to_text
from tools.web_fetch import DEFAULT_LIMITS

TELEGRAM, SLACK, WINDOW = 4096, 12_000, 4
HTML_UNITS = ("<a ", "<a b='", "<a b=c ", "<div>", "<b><i>", "<table><tr><td>", "<li>a", "<p>x", "<!--", "&#", "&amp")


def fill(units: list[str], size: int) -> str:
    share = size // len(units)
    return "".join((unit * (share // len(unit) + 1))[:share] for unit in units)


def texts(samples: int) -> list[tuple[str, list[str], str]]:
    """(description, units, backtick line) for each unit alone and for `samples` seeded mixes."""
    rng = random.Random(10)
    cases = [(repr(unit), [unit], "") for unit in UNITS]
    for _ in range(samples):
        units = rng.sample(UNITS, rng.randint(1, 4))
        ticks = "`" * rng.randint(3, 8000) + "\n" if rng.random() < 0.25 else ""
        label = " + ".join(map(repr, units)) + (f" after {len(ticks) - 1} backticks" if ticks else "")
        cases.append((label, units, ticks))
    return cases


def text_bounds(samples: int) -> None:
    worst: dict[str, tuple[float, str]] = {}

    def record(kind: str, seconds: float, label: str) -> None:
        if seconds > worst.get(kind, (-1.0, ""))[0]:
            worst[kind] = (seconds, label)

    for label, units, ticks in texts(samples):
        message = (ticks + fill(units, TELEGRAM))[:TELEGRAM]
        # a render that is sent builds its entities too
        record("Telegram render (4,096 chars)", cpu(lambda message=message: render(message).entities), label)
        answer = ticks + fill(units, 3 * TELEGRAM)
        if measure(answer) > TELEGRAM or len(answer) > TELEGRAM * WINDOW:
            cut = partial(split_to_fit, answer, measure, TELEGRAM, window=TELEGRAM * WINDOW, ceiling=ceiling)
            record("Telegram cut (4,096-unit message)", cpu(cut), label)
        answer = ticks + fill(units, 3 * SLACK)
        if len(answer) > SLACK:
            cut = partial(split_to_fit, answer, len, SLACK, window=SLACK * WINDOW)
            record("Slack cut (12,000-char message)", cpu(cut), label)
    print(f"rendering and cutting: {len(texts(samples))} inputs, worst CPU per call (target 20 ms)")
    for kind, (seconds, label) in worst.items():
        print(f"  {kind:36} {seconds * 1000:7.1f} ms   {label}")


async def _bomb(encoding: str) -> float:
    wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = b" " * (1024 * 1024)
    body = b"".join(packer.compress(block) for _ in range(256)) + packer.flush()

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(body), 65_536):
            yield body[at : at + 65_536]

    best = float("inf")
    for _ in range(3):
        response = httpx.Response(200, headers={"content-encoding": encoding}, content=chunks())
        started = time.thread_time()
        await read_body(response, DEFAULT_LIMITS.max_bytes)
        best = min(best, time.thread_time() - started)
    return best


def fetch_bounds() -> None:
    size = DEFAULT_LIMITS.max_bytes
    print(f"fetching: worst CPU per call ({size // 1024} KiB cap)")
    limit = DEFAULT_LIMITS.max_chars
    parses = {
        unit: cpu(lambda unit=unit: html_to_text(unit * (size // len(unit)), max_chars=limit)) for unit in HTML_UNITS
    }
    unit, seconds = max(parses.items(), key=lambda item: item[1])
    print(f"  {'html_to_text of a 1 MiB page':36} {seconds * 1000:7.1f} ms   {unit!r} repeated")
    for encoding in ("gzip", "deflate"):
        seconds = asyncio.run(_bomb(encoding))
        print(f"  {'read_body of a 256 MiB ' + encoding + ' bomb':36} {seconds * 1000:7.1f} ms   cut at the cap")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=300, help="mixed inputs besides one per unit")
    args = parser.parse_args()
    text_bounds(args.samples)
    fetch_bounds()


if __name__ == "__main__":
    main()
