"""Starting the Slack bot: Socket Mode without Slack (a loopback Socket Mode endpoint in front of the Web API
double), and the one-line stops for settings the chosen mode lacks or Slack refuses."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from agent.thread import open_agent_thread
from bot.runtime import STOPPED_MARK
from bot.settings import SettingsError
from bot.slack_app import serve_slack
from channels.slack.surface import STOP_ACTION
from tests.doubles.openai_server import Hang, OpenAIDouble, Text
from tests.doubles.slack_api import SlackDouble
from tests.doubles.slack_events import app_mention, dm_message, post_event
from tests.doubles.slack_socket import SocketModeDouble
from tests.scenarios.conftest import bot_env, run_bot, slack_process
from tests.scenarios.slack_scene import CHANNEL, DM, SECRET, TOKEN, clean_environment, slack_settings
from tools import default_tools

APP_TOKEN = "xapp-1-A0LIVEBOT-socket-mode-test"


@pytest.fixture(autouse=True)
def _no_own_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)


async def test_socket_mode_connects_acknowledges_and_answers(tmp_path: Path) -> None:
    async with (
        OpenAIDouble() as llm,
        SlackDouble(token=TOKEN) as slack,
        SocketModeDouble(slack, app_token=APP_TOKEN) as socket,
    ):
        llm.script(Text("Hello over Socket Mode."), Text("Hello again."))
        # No signing secret: Socket Mode is authenticated by the app-level token.
        config = slack_settings(tmp_path, llm, socket.base_url, slack_app_token=APP_TOKEN, slack_signing_secret=None)
        async with (
            open_agent_thread(config.agent_config(), default_tools()) as agent,
            serve_slack(config, agent) as bot,
        ):
            assert bot.url is None  # no HTTP server in Socket Mode
            await socket.wait_connected()
            mention = app_mention("hi", bot_user_id=slack.identity.bot_user_id)
            envelope_id = await socket.send_event(slack.envelope(mention))
            await socket.wait_acked(envelope_id)
            await socket.send_event(slack.envelope(mention, event_id="Ev0SAME"))
            retried = await socket.send_event(slack.envelope(mention, event_id="Ev0SAME"), retry_attempt=1)
            await socket.wait_acked(retried)
            await asyncio.wait_for(bot.conversations.drain(), 10)

    assert socket.opened_with == [APP_TOKEN]
    assert [m.text for m in slack.messages(CHANNEL, mention["ts"])] == ["Hello over Socket Mode.", "Hello again."]
    # The first mention, and Ev0SAME once: its retry was acknowledged, not answered (nor merged into a follow-up).
    assert [request["messages"][-1]["content"] for request in llm.requests] == ["hi", "hi"]


async def test_socket_mode_delivers_the_stop_button_press(tmp_path: Path) -> None:
    async with (
        OpenAIDouble() as llm,
        SlackDouble(token=TOKEN) as slack,
        SocketModeDouble(slack, app_token=APP_TOKEN) as socket,
    ):
        llm.script(Hang("Streaming until someone presses the button"))
        slack.refuse_streaming = "feature_not_enabled"  # the post + update fallback carries the Stop button
        config = slack_settings(tmp_path, llm, socket.base_url, slack_app_token=APP_TOKEN, slack_signing_secret=None)
        async with (
            open_agent_thread(config.agent_config(), default_tools()) as agent,
            serve_slack(config, agent) as bot,
        ):
            await socket.wait_connected()
            await socket.send_event(slack.envelope(dm_message("go")))
            await slack.wait_for(lambda: bool(slack.messages(DM)))
            pressed = await socket.send_interactive(slack.button_press(slack.messages(DM)[0], STOP_ACTION))
            await socket.wait_acked(pressed)
            await asyncio.wait_for(llm.disconnected.wait(), 2)
            await asyncio.wait_for(bot.conversations.drain(), 10)

    [message] = slack.messages(DM)
    assert message.text.endswith(STOPPED_MARK)
    assert [block["type"] for block in message.blocks] == ["markdown", "context_actions"]  # Stop gave way to 👍/👎


async def test_refused_app_token_stops_start_up_with_one_line(tmp_path: Path) -> None:
    async with (
        OpenAIDouble() as llm,
        SlackDouble(token=TOKEN) as slack,
        SocketModeDouble(slack, app_token="xapp-1-the-right-one") as socket,
    ):
        config = slack_settings(tmp_path, llm, socket.base_url, slack_app_token=APP_TOKEN)
        async with open_agent_thread(config.agent_config(), default_tools()) as agent:
            with pytest.raises(SettingsError, match=r"^SLACK_APP_TOKEN was refused by Slack \(invalid_auth\)$"):
                async with serve_slack(config, agent):
                    pass


async def test_refused_bot_token_stops_start_up_with_one_line(tmp_path: Path) -> None:
    async with OpenAIDouble() as llm, SlackDouble(token="xoxb-another-token") as slack:
        config = slack_settings(tmp_path, llm, slack.base_url)
        async with open_agent_thread(config.agent_config(), default_tools()) as agent:
            with pytest.raises(SettingsError, match=r"^SLACK_BOT_TOKEN was refused by Slack \(invalid_auth\)$"):
                async with serve_slack(config, agent):
                    pass


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": TOKEN}, "SLACK_SIGNING_SECRET"),  # HTTP mode
        ({"SLACK_BOT_TOKEN": TOKEN, "SLACK_APP_TOKEN": "xoxb-not-an-app-token"}, "SLACK_APP_TOKEN"),
    ],
)
async def test_missing_setting_for_the_mode_stops_start_up_with_one_line(
    tmp_path: Path, settings: dict[str, str], named: str
) -> None:
    done = await run_bot(["slack"], stdin="", env=bot_env(tmp_path, **settings), cwd=tmp_path)
    assert done.code == 2
    assert done.err.count("\n") == 1 and named in done.err and "Traceback" not in done.err


async def test_python_m_bot_slack_serves_http_mode_until_sigterm(tmp_path: Path) -> None:
    async with OpenAIDouble() as llm, SlackDouble(token=TOKEN) as slack:
        llm.script(Text("Hello from the process."))
        api = slack.base_url.rstrip("/")  # the trailing slash is added by the bot
        async with slack_process(slack, llm, tmp_path, SLACK_API_URL=api) as (process, url):
            mention = app_mention("hi", bot_user_id=slack.identity.bot_user_id)
            reply = await post_event(url, slack.envelope(mention), SECRET)
            assert reply.status == 200
            await slack.wait_for(lambda: [m.stream for m in slack.messages(CHANNEL, mention["ts"])] == ["stopped"])
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 60) == 0
    assert slack.messages(CHANNEL, mention["ts"])[0].text == "Hello from the process."
