"""One conversation per surface: how fast the first words show, how fast the final text lands, how many calls.

Run: `python -m bench.latency` (options: `--replies N`, `--words N`).

Each surface gets the same answer from the OpenAI-compatible double (tests/doubles), streamed at ~25 tokens/s
(one 4-character chunk every 0.04 s), through the real bot code and the real platform library over HTTP on
127.0.0.1:
- Telegram private chat (drafts) and Telegram group (edits): the real python-telegram-bot Application against
  the Bot API double with its default limits;
- Slack thread (native stream; and with streaming refused, post + update) and Slack DM (a message in the
  Messages tab, answered natively in its thread): the real Bolt app in HTTP mode, signed events, against the
  Slack Web API double;
- console on a terminal: the runtime and the terminal surface writing to an in-memory screen.
Times are measured on one monotonic clock: the model double's time of the first / last content token it sent, and
the platform double's time of the first call that made text visible (draft, message, stream) / the last call that
changed the text. "calls" counts every platform call of a reply (typing and status included); the gaps are
between live updates, to compare with the profile's interval.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig
from agent.thread import open_agent_thread
from bot.runtime import Runtime
from bot.settings import Settings
from bot.slack_app import serve_slack
from bot.telegram_app import serve_telegram
from channels.capabilities import resolve
from channels.console.surfaces import TerminalSurface
from channels.console.text import render_markdown
from channels.inbound import Incoming
from tests.doubles.openai_server import OpenAIDouble, Text
from tests.doubles.slack_api import SlackDouble
from tests.doubles.slack_events import app_mention, dm_message, post_event
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.slack_scene import free_port
from tools import default_tools

TOKEN = "123456:BENCH-token-for-the-double-0123456789"
VISIBLE = ("sendMessageDraft", "sendMessage", "editMessageText")
SLACK_TOKEN = "xoxb-bench-token"
SLACK_SECRET = "bench-signing-secret"
SLACK_VISIBLE = ("chat.startStream", "chat.postMessage", "chat.appendStream", "chat.stopStream", "chat.update")


@dataclass
class Reply:
    first_visible: float  # seconds from the first model token
    final: float  # seconds from the last model token to the final text
    calls: int
    rate_limited: int
    gaps: list[float]  # seconds between consecutive live updates


def answer(words: int, n: int) -> Text:
    """A distinct answer per reply, so one reply's text is never mistaken for the next one's."""
    return Text(" ".join(f"r{n}w{i}" for i in range(words)), chunk_size=4, delay=0.04)


async def telegram(kind: str, replies: int, words: int) -> list[Reply]:
    results = []
    with tempfile.TemporaryDirectory() as data:
        async with OpenAIDouble() as llm, TelegramDouble(token=TOKEN, bot_username="livebot_bench") as tg:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                telegram_bot_token=TOKEN,
                telegram_api_base_url=tg.root,
                openai_api_key="sk-bench",
                openai_base_url=llm.base_url,
                bot_data_dir=Path(data),
            )
            user = tg.add_user("Alice", username="alice")
            chat = tg.private_chat(user) if kind == "private" else tg.add_group("Team")
            prefix = "" if kind == "private" else "@livebot_bench "
            async with (
                open_agent_thread(settings.agent_config(), default_tools()) as agent,
                serve_telegram(settings, agent),
            ):
                for n in range(replies):
                    text = answer(words, n)
                    llm.script(text)
                    start = len(tg.calls)
                    tg.user_message(chat, user, f"{prefix}question {n}")
                    await tg.wait_for(lambda t=text: tg.visible_texts(chat)[-1:] == [t.text], timeout=120)
                    await asyncio.sleep(0.5)  # let trailing calls (typing, status cleanup) land before counting
                    calls = [c for c in tg.calls[start:] if c.chat_id == chat.id]
                    shown = [c.at for c in calls if c.method in VISIBLE and c.ok]
                    rate_limited = sum(1 for c in calls if c.status == 429)
                    results.append(figures(shown, llm.token_times[-1], len(calls), rate_limited))
    return results


async def slack(kind: str, replies: int, words: int) -> list[Reply]:
    results = []
    with tempfile.TemporaryDirectory() as data:
        async with OpenAIDouble() as llm, SlackDouble(token=SLACK_TOKEN) as double:
            if kind == "refused":
                double.refuse_streaming = "feature_not_enabled"
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                slack_bot_token=SLACK_TOKEN,
                slack_signing_secret=SLACK_SECRET,
                slack_api_url=double.base_url,
                slack_listen="127.0.0.1",
                slack_port=free_port(),
                openai_api_key="sk-bench",
                openai_base_url=llm.base_url,
                bot_data_dir=Path(data),
            )
            async with (
                open_agent_thread(settings.agent_config(), default_tools()) as agent,
                serve_slack(settings, agent) as bot,
            ):
                assert bot.url is not None
                for n in range(replies):
                    llm.script(answer(words, n))
                    start = len(double.calls)
                    if kind == "dm":
                        event = dm_message(f"question {n}")
                    else:
                        event = app_mention(f"question {n}", bot_user_id=double.identity.bot_user_id)
                    await post_event(bot.url, double.envelope(event), SLACK_SECRET)
                    await asyncio.wait_for(bot.conversations.drain(), 120)
                    calls = double.calls[start:]
                    shown = [c.time for c in calls if c.method in SLACK_VISIBLE and c.ok]
                    rate_limited = sum(1 for c in calls if c.status == 429)
                    results.append(figures(shown, llm.token_times[-1], len(calls), rate_limited))
    return results


class Screen:
    """The terminal UI's drawing, without a terminal: each redraw renders the Markdown as the real one does and
    notes when it happened."""

    def __init__(self) -> None:
        self.writes: list[float] = []

    def show(self, markdown: str | None) -> None:
        if markdown:
            render_markdown(markdown, 100)
        self.writes.append(time.monotonic())

    def status(self, text: str | None) -> None:
        pass

    async def commit(self, markdown: str) -> None:
        render_markdown(markdown, 100)
        self.writes.append(time.monotonic())

    async def say(self, lines: list[str]) -> None:
        pass

    async def done(self) -> None:
        pass


async def console(replies: int, words: int) -> list[Reply]:
    results = []
    with tempfile.TemporaryDirectory() as data:
        async with OpenAIDouble() as llm:
            config = AgentConfig(api_key="sk-bench", base_url=llm.base_url, data_dir=Path(data))
            async with open_agent_thread(config, default_tools()) as agent:
                runtime = Runtime(agent)
                for n in range(replies):
                    llm.script(answer(words, n))
                    screen = Screen()
                    surface = TerminalSurface(screen, resolve("console", "terminal"))
                    await runtime.answer(Incoming("console:bench", f"question {n}", "bench"), surface)
                    tokens = llm.token_times[-1]
                    writes = [t for t in screen.writes if t >= tokens[0]]
                    results.append(figures(writes, tokens, len(writes), 0))
    return results


def figures(shown: list[float], tokens: list[float], calls: int, rate_limited: int) -> Reply:
    """One reply's figures from the times its text changed on screen (the last one final) and its token times."""
    return Reply(shown[0] - tokens[0], shown[-1] - tokens[-1], calls, rate_limited, _gaps(shown[:-1]))


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def report(name: str, interval: float, results: list[Reply]) -> None:
    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    gaps = [g for r in results for g in r.gaps]
    print(
        f"{name:24} {med([r.first_visible for r in results]):>10.3f} {med([r.final for r in results]):>10.3f} "
        f"{med([r.calls for r in results]):>8.1f} {sum(r.rate_limited for r in results):>6} "
        f"{interval:>8.2f} {med(gaps):>8.2f} {min(gaps, default=float('nan')):>8.2f}"
    )


async def main(replies: int, words: int) -> None:
    surfaces: list[tuple[str, float, Callable[[], Awaitable[list[Reply]]]]] = [
        ("telegram private (draft)", resolve("telegram", "private").update_interval,
         lambda: telegram("private", replies, words)),
        ("telegram group (edit)", resolve("telegram", "group").update_interval,
         lambda: telegram("group", replies, words)),
        ("slack thread (native)", resolve("slack", "thread").update_interval, lambda: slack("thread", replies, words)),
        ("slack thread (refused)", resolve("slack", "thread").update_interval,
         lambda: slack("refused", replies, words)),
        ("slack dm (native)", resolve("slack", "thread").update_interval, lambda: slack("dm", replies, words)),
        ("console terminal", resolve("console", "terminal").update_interval, lambda: console(replies, words)),
    ]  # fmt: skip
    print(f"{replies} replies of {words} words per surface, streamed at ~25 tokens/s; medians, seconds")
    print(
        f"{'surface':24} {'1st vis':>10} {'final':>10} {'calls':>8} {'429s':>6} {'interval':>8} "
        f"{'med gap':>8} {'min gap':>8}"
    )
    for name, interval, run in surfaces:
        report(name, interval, await run())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=3)
    parser.add_argument("--words", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(main(args.replies, args.words))
