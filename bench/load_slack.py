"""N Slack conversations ask at once in one workspace: does every word arrive, how fast, within Slack's tiers?

Run: `python -m bench.load_slack` (50 conversations) or `python -m bench.load_slack -n 200`; `--mix threads`
(every conversation a thread with a native stream), `--mix dms` (top-level DMs: a post, then chat.update) or
`--mix mixed` (half each, the default); `--channels K` spreads the threads over K channels (default one per ten).

How: this process runs the Slack Web API double, metered per workspace like Slack (the tiers with bursts:
Tier 3 50/min, Tier 4 100/min; chat.postMessage about 1/s per channel and 300/min per workspace; 429 +
Retry-After), and the OpenAI-compatible double streaming every answer at ~25 tokens/s (4-character chunks
every 0.04 s). The bot runs as its own process (`python -m bot slack`, HTTP mode), and every user's event is
posted to it signed, at the same moment. The run ends when every conversation shows the whole answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

from bench.load import pct
from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.slack_api import SlackDouble
from tests.doubles.slack_events import app_mention, dm_message, post_event

TOKEN = "xoxb-load-token-for-the-double"
SECRET = "load-signing-secret"
ROOT = Path(__file__).resolve().parent.parent
UPDATES = ("chat.appendStream", "chat.update", "chat.stopStream")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_listening(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return


async def run(n: int, mix: str, channels: int, words: int, timeout: float) -> None:
    answer = " ".join(f"word{i}" for i in range(words))
    threads = {"threads": n, "dms": 0, "mixed": n // 2}[mix]
    channels = channels or max(1, threads // 10)
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        async with OpenAIDouble() as llm, SlackDouble(token=TOKEN) as slack:
            llm.script(*[Text(answer, chunk_size=4, delay=0.04) for _ in range(n)])
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLACK_", "LLM_", "STREAM_"))},
                "SLACK_BOT_TOKEN": TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack.base_url,
                "SLACK_LISTEN": "127.0.0.1",
                "SLACK_PORT": str(port),
                "OPENAI_BASE_URL": llm.base_url,
                "OPENAI_API_KEY": "sk-load",
                "BOT_DATA_DIR": data,
                "USER_RUNS_PER_MINUTE": str(n),
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(ROOT),
            }
            bot = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "slack", env=env, cwd=data)
            await wait_listening(port, 60)
            url = f"http://127.0.0.1:{port}/slack/events"
            who = slack.identity
            events = []
            for i in range(n):
                if i < threads:
                    channel = f"C0LOAD{i % channels:04d}"
                    event = app_mention("tell me a story", bot_user_id=who.bot_user_id, channel=channel, user=f"U0T{i}")
                else:
                    event = dm_message("tell me a story", channel=f"D0LOAD{i:04d}", user=f"U0D{i}")
                events.append(event)
            asked: dict[int, float] = {}
            started = time.monotonic()
            async with aiohttp.ClientSession() as session:

                async def ask(i: int) -> None:
                    asked[i] = time.monotonic()
                    await post_event(url, slack.envelope(events[i]), SECRET, session=session)

                await asyncio.gather(*(ask(i) for i in range(n)))

            def messages(i: int) -> list:
                event = events[i]
                if i < threads:
                    return slack.messages(event["channel"], event["ts"])
                return slack.messages(event["channel"])

            done = lambda: sum([m.text for m in messages(i)] == [answer] for i in range(n))  # noqa: E731
            with contextlib.suppress(TimeoutError):
                await slack.wait_for(lambda: done() == n, timeout=timeout)
            elapsed = time.monotonic() - started
            bot.send_signal(signal.SIGTERM)
            await bot.wait()

    first, last, gaps = [], [], []
    first_by_kind: dict[str, list[float]] = {"threads": [], "DMs": []}
    by_ts = {}
    for i in range(n):
        shown = messages(i)
        if shown:
            first.append(min(m.created_at for m in shown) - asked[i])
            first_by_kind["threads" if i < threads else "DMs"].append(first[-1])
        for m in shown:
            by_ts[(m.channel, m.ts)] = i
    updates: dict[int, list[float]] = {}
    for call in slack.calls:
        if call.ok and call.method in UPDATES:
            i = by_ts.get((str(call.params.get("channel")), str(call.params.get("ts"))))
            if i is not None:
                updates.setdefault(i, []).append(call.time)
    for i, times in updates.items():
        gaps.extend(b - a for a, b in itertools.pairwise(times))
        last.append(times[-1] - asked[i])
    kinds = f"{threads} threads in {channels} channels, {n - threads} DMs"
    print(f"conversations            {n} ({kinds}), answers of {words} words at ~25 tokens/s, one workspace")
    print(f"complete (every word)    {done()}/{n} in {elapsed:.1f} s")
    print(f"first visible text       p50 {pct(first, 50):.2f} s, p95 {pct(first, 95):.2f} s, max {max(first):.2f} s")
    for kind, times in first_by_kind.items():
        if times and threads not in (0, n):
            print(f"  {kind:<22} p50 {pct(times, 50):.2f} s, p95 {pct(times, 95):.2f} s")
    if last:
        print(f"last update              p50 {pct(last, 50):.2f} s, p95 {pct(last, 95):.2f} s, max {max(last):.2f} s")
    if gaps:
        print(f"update gaps (per reply)  median {statistics.median(gaps):.2f} s, p95 {pct(gaps, 95):.2f} s")
    else:
        print("update gaps (per reply)  none (every answer arrived in one message)")
    by_method = Counter(c.method for c in slack.calls if c.method != "auth.test")
    per_method = ", ".join(f"{method} {count / n:.2f}" for method, count in by_method.most_common())
    print(f"API calls per reply      {sum(by_method.values()) / n:.1f} ({per_method})")
    print(f"rate-limited calls       {len(slack.rate_limited)}")
    print(f"calls inside retry_after {len(slack.calls_inside_retry_after)}")
    if slack.rate_limited:
        print(f"  429s by method {dict(Counter(c.method for c in slack.rate_limited))}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="conversations (default 50)")
    parser.add_argument("--mix", choices=("threads", "dms", "mixed"), default="mixed", help="kinds of conversation")
    parser.add_argument("--channels", type=int, default=0, help="channels the threads are in (default n/10)")
    parser.add_argument("--words", type=int, default=80, help="words per answer (default 80)")
    parser.add_argument("--timeout", type=float, default=900, help="give up after this many seconds")
    args = parser.parse_args()
    asyncio.run(run(args.n, args.mix, args.channels, args.words, args.timeout))
