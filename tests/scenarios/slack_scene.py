"""The real Slack bot in-process: Bolt in HTTP mode on 127.0.0.1, the Slack double and the OpenAI double.

    async def test_something(scene: SlackScene) -> None:
        scene.llm.script(Text("Hello!"))
        await scene.post(scene.mention("hi"))
        await scene.replied()
        ...

`post` returns after the bot acknowledged the event, and the bot's listener runs before it acknowledges, so once
`post` returned the reply is queued; `replied` waits for every queued reply to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.agent_setup import open_bot_agent
from bot.settings import Settings
from bot.slack_app import SlackBot, serve_slack
from tests.doubles.openai_server import OpenAIDouble
from tests.doubles.slack_api import AppView, SlackDouble, SlackMessage
from tests.doubles.slack_events import EventReply, app_mention, dm_message, interaction_form, post_event

TOKEN = "xoxb-livebot-test"
SECRET = "signing-secret-for-tests"
CHANNEL = "C0GENERAL"
DM = "D0ALICE"
OWN_SETTINGS = (
    *("OPENAI_", "LLM_", "TELEGRAM_", "SLACK_", "STREAM_", "BOT_", "DATABASE_URL", "LOG_LEVEL"),
    *("MCP_CONFIG", "SEARXNG_", "BRAVE_", "TAVILY_"),
)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the developer's own livebot settings for one test, so only what the test passes applies."""
    for name in [name for name in os.environ if name.startswith(OWN_SETTINGS)]:
        monkeypatch.delenv(name)


def slack_settings(tmp_path: Path, llm: OpenAIDouble, api_url: str, **overrides: Any) -> Settings:
    """Settings for a bot in HTTP mode that talks to the doubles."""
    values: dict[str, Any] = {
        "openai_base_url": llm.base_url,
        "openai_api_key": "sk-test-" + "x" * 24,
        "llm_model": "m",
        "bot_data_dir": tmp_path / "data",
        "slack_bot_token": TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": api_url,
        "slack_listen": "127.0.0.1",
        "slack_port": free_port(),
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class SlackScene:
    """One running bot and the doubles around it."""

    slack: SlackDouble
    llm: OpenAIDouble
    bot: SlackBot

    def mention(self, question: str, **kwargs: Any) -> dict[str, Any]:
        """An app_mention of this bot in #general (or `channel=`)."""
        return app_mention(question, bot_user_id=self.slack.identity.bot_user_id, **kwargs)

    def dm(self, text: str, **kwargs: Any) -> dict[str, Any]:
        """A user's message in the DM with the bot."""
        return dm_message(text, **kwargs)

    async def post(self, event: dict[str, Any], *, event_id: str | None = None, **kwargs: Any) -> EventReply:
        """Deliver `event` as Slack does (signed, in an envelope); returns the bot's HTTP answer."""
        assert self.bot.url is not None
        return await post_event(self.bot.url, self.slack.envelope(event, event_id=event_id), SECRET, **kwargs)

    async def press(self, message: SlackMessage, action_id: str, **kwargs: Any) -> EventReply:
        """Press the button `action_id` on the bot's `message`, as Slack posts the interaction (signed form)."""
        assert self.bot.url is not None
        payload = self.slack.button_press(message, action_id, **kwargs)
        return await post_event(self.bot.url, interaction_form(payload), SECRET)

    async def replied(self, timeout: float = 10.0) -> None:
        """Wait until every reply the bot has queued is finished, and the calls made beside them (title, prompts)."""
        await asyncio.wait_for(self.bot.conversations.drain(), timeout)

    def thread(self, event: dict[str, Any]) -> list[SlackMessage]:
        """The bot's messages in the thread of `event` (a mention), in order."""
        return self.slack.messages(event["channel"], event.get("thread_ts") or event["ts"])

    def streaming(self) -> list[SlackMessage]:
        """Messages left in streaming state (there must never be any once a reply is over)."""
        return [message for message in self.slack.workspace.all_messages() if message.stream == "streaming"]


@contextlib.asynccontextmanager
async def running_scene(tmp_path: Path, *, view: AppView = "agent", **settings: Any) -> AsyncIterator[SlackScene]:
    """Start the doubles and the bot; `settings` override `slack_settings`' values; `view` is the app's manifest
    feature (agent_view for new apps, assistant_view for older ones)."""
    async with OpenAIDouble() as llm, SlackDouble(token=TOKEN, view=view) as slack:
        config = slack_settings(tmp_path, llm, slack.base_url, **settings)
        async with open_bot_agent(config) as agent, serve_slack(config, agent) as bot:  # the tools settings give
            yield SlackScene(slack, llm, bot)
