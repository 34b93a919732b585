"""The Slack bot, one conversation per surface: how fast the first words show, how fast the final text lands, how
many Web API calls a reply makes.

Run: `python -m bench.slack_latency` (options: `--replies N`, `--words N`).

The real bot (Bolt in HTTP mode, signed events over loopback HTTP) against the Slack Web API double and the
OpenAI-compatible double, which streams the same answer as bench.latency (~25 tokens/s). Times are on one
monotonic clock: the model double's first / last content token, and the Slack double's first call that made text
visible (startStream or postMessage) / the last call that changed the text.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from agent.thread import open_agent_thread
from bench.latency import Reply, _gaps, answer, report
from bot.settings import Settings
from bot.slack_app import serve_slack
from channels.capabilities import resolve
from tests.doubles.openai_server import OpenAIDouble
from tests.doubles.slack_api import SlackDouble
from tests.doubles.slack_events import app_mention, dm_message, post_event
from tests.scenarios.slack_scene import free_port
from tools import default_tools

TOKEN = "xoxb-bench-token"
SECRET = "bench-signing-secret"
VISIBLE = ("chat.startStream", "chat.postMessage", "chat.appendStream", "chat.stopStream", "chat.update")


async def slack(kind: str, replies: int, words: int) -> list[Reply]:
    results = []
    with tempfile.TemporaryDirectory() as data:
        async with OpenAIDouble() as llm, SlackDouble(token=TOKEN) as double:
            if kind == "refused":
                double.refuse_streaming = "feature_not_enabled"
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                slack_bot_token=TOKEN,
                slack_signing_secret=SECRET,
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
                    await post_event(bot.url, double.envelope(event), SECRET)
                    await asyncio.wait_for(bot.conversations.drain(), 120)
                    calls = double.calls[start:]
                    shown = [c.time for c in calls if c.method in VISIBLE and c.ok]
                    tokens = llm.token_times[-1]
                    results.append(
                        Reply(
                            first_visible=shown[0] - tokens[0],
                            final=shown[-1] - tokens[-1],
                            calls=len(calls),
                            rate_limited=sum(1 for c in calls if c.status == 429),
                            gaps=_gaps(shown[:-1]),
                        )
                    )
    return results


async def main(replies: int, words: int) -> None:
    print(f"{replies} replies of {words} words per surface, streamed at ~25 tokens/s; medians, seconds")
    print(
        f"{'surface':24} {'1st vis':>10} {'final':>10} {'calls':>8} {'429s':>6} {'interval':>8} "
        f"{'med gap':>8} {'min gap':>8}"
    )
    thread, dm = resolve("slack", "thread").update_interval, resolve("slack", "dm").update_interval
    report("slack thread (native)", thread, await slack("thread", replies, words))
    report("slack thread (refused)", thread, await slack("refused", replies, words))
    report("slack dm (update)", dm, await slack("dm", replies, words))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=3)
    parser.add_argument("--words", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(main(args.replies, args.words))
