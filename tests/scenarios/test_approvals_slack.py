"""Approval before a tool acts, on Slack: the request is a message of blocks with Approve / Deny buttons (handled
through Bolt as block_actions), the asker decides, the request then says what was decided and by whom, and the
answer continues below it. The tool is a real FastMCP server's marked `require_approval`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.agent_setup import open_bot_agent
from bot.channel import ApprovalOutcome
from bot.slack_app import serve_slack
from channels.slack.surface import APPROVE_ACTION, DENY_ACTION
from tests.doubles.openai_server import OpenAIDouble, Text, ToolCalls
from tests.doubles.slack_api import SlackDouble, SlackMessage
from tests.doubles.slack_events import interaction_form, post_event
from tests.scenarios.slack_scene import SECRET, TOKEN, SlackScene, clean_environment, running_scene, slack_settings
from tests.scenarios.test_mcp import stdio, tool_answer, write_config

REQUEST = "Approval needed"


def gated_config(tmp_path: Path) -> str:
    return write_config(tmp_path, double=stdio(tools=["echo"], require_approval=["echo"]))


def has_buttons(message: SlackMessage) -> bool:
    actions = [e.get("action_id") for block in message.blocks for e in block.get("elements") or []]
    return APPROVE_ACTION in actions and DENY_ACTION in actions


async def the_request(slack: SlackDouble, event: dict[str, Any]) -> SlackMessage:
    thread = event.get("thread_ts") or event["ts"]
    found: list[SlackMessage] = []

    def shown() -> bool:
        found[:] = [m for m in slack.messages(event["channel"], thread) if REQUEST in m.text and has_buttons(m)]
        return bool(found)

    await slack.wait_for(shown, timeout=60)
    return found[0]


async def test_approve_runs_the_tool_and_an_outsider_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch)
    async with running_scene(tmp_path, mcp_config=gated_config(tmp_path)) as scene:
        scene.llm.script(
            ToolCalls([("echo", {"text": "hi"})], text_before="Let me ask the server."), Text("The server said hi.")
        )
        mention = scene.mention("echo hi", user="U0ALICE")
        await scene.post(mention)
        request = await the_request(scene.slack, mention)
        assert scene.thread(mention)[0].text == "Let me ask the server."  # final, above the request
        assert "double: echo" in request.text and len(scene.llm.requests) == 1

        await scene.press(request, APPROVE_ACTION, user="U0BOB", value=None)
        await scene.slack.wait_for(lambda: bool(scene.slack.workspace.ephemerals))
        [note] = scene.slack.workspace.ephemerals
        assert (note.user, note.text) == ("U0BOB", ApprovalOutcome.NOT_YOURS.value)
        assert has_buttons(scene.slack.message(request.channel, request.ts)) and len(scene.llm.requests) == 1

        await scene.press(scene.slack.message(request.channel, request.ts), APPROVE_ACTION, user="U0ALICE")
        await scene.slack.wait_for(lambda: scene.thread(mention)[-1].text == "The server said hi.", timeout=60)
        await scene.replied()
        settled = scene.slack.message(request.channel, request.ts)
        assert settled.text.endswith("✅ Approved by u0alice.") and not has_buttons(settled)
        assert len(scene.thread(mention)) == 3 and scene.streaming() == []
        assert tool_answer(scene.llm.requests[1]) == "double echoes: hi"


async def test_deny_tells_the_model_the_user_declined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)
    async with running_scene(tmp_path, mcp_config=gated_config(tmp_path), stream_mode="edit") as scene:
        scene.llm.script(ToolCalls([("echo", {"text": "hi"})]), Text("All right, no echo."))
        mention = scene.mention("echo hi", user="U0ALICE")
        await scene.post(mention)
        request = await the_request(scene.slack, mention)
        await scene.press(request, DENY_ACTION, user="U0ALICE")
        await scene.slack.wait_for(lambda: scene.thread(mention)[-1].text == "All right, no echo.", timeout=60)
        assert scene.slack.message(request.channel, request.ts).text.endswith("❌ Denied by u0alice.")
        declined = tool_answer(scene.llm.requests[1])
        assert "User rejected the tool call for `echo`" in declined and "pressed Deny" in declined


async def test_a_press_after_a_restart_still_resumes_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)
    async with OpenAIDouble() as llm, SlackDouble(token=TOKEN) as slack:
        config = slack_settings(tmp_path, llm, slack.base_url, mcp_config=gated_config(tmp_path))
        llm.script(ToolCalls([("echo", {"text": "hi"})]), Text("Back after the restart: it said hi."))
        async with open_bot_agent(config) as agent, serve_slack(config, agent) as bot:
            scene = SlackScene(slack, llm, bot)
            mention = scene.mention("echo hi", user="U0ALICE")
            await scene.post(mention)
            request = await the_request(slack, mention)
        # A new bot: a new agent (checkpoint read from disk), a new approvals store, a new Bolt app.
        async with open_bot_agent(config) as agent, serve_slack(config, agent) as bot:
            assert bot.url is not None
            payload = slack.button_press(request, APPROVE_ACTION, user="U0ALICE")
            await post_event(bot.url, interaction_form(payload), SECRET)
            await slack.wait_for(lambda: slack.messages(request.channel, mention["ts"])[-1].text.startswith("Back"), 60)
            await asyncio.wait_for(bot.conversations.drain(), 30)
        assert slack.message(request.channel, request.ts).text.endswith("✅ Approved by u0alice.")
        assert tool_answer(llm.requests[1]) == "double echoes: hi"
