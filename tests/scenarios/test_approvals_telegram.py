"""Approval before a tool acts, on Telegram: the text before the tool is final, then a request with Approve / Deny
buttons (an inline keyboard); the asker (or a group admin) decides, the request then says what was decided and by
whom, and the answer after it is a new message. The tool is a real FastMCP server's marked `require_approval`
(tests/doubles/mcp_server.py); the bot runs in this process, or as a process that is restarted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bot.agent_setup import open_bot_agent
from bot.channel import ApprovalOutcome
from bot.telegram_app import TelegramBot, serve_telegram
from tests.doubles.openai_server import OpenAIDouble, Text, ToolCalls
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.telegram_world import Chat, StoredMessage
from tests.scenarios.conftest import telegram_process, telegram_settings
from tests.scenarios.test_mcp import stdio, tool_answer, write_config

REQUEST = "Approval needed"


def gated_config(tmp_path: Path) -> str:
    return write_config(tmp_path, double=stdio(tools=["echo"], require_approval=["echo"]))


@asynccontextmanager
async def running(tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, **settings: Any) -> AsyncIterator[TelegramBot]:
    config = telegram_settings(tg, llm, tmp_path / "data", mcp_config=gated_config(tmp_path), **settings)
    async with open_bot_agent(config) as agent, serve_telegram(config, agent) as bot:
        yield bot


def buttons(message: StoredMessage) -> dict[str, str]:
    """The message's inline buttons: label -> callback data."""
    rows = (message.reply_markup or {}).get("inline_keyboard", [])
    return {button["text"]: button["callback_data"] for row in rows for button in row}


async def the_request(tg: TelegramDouble, chat: Chat) -> StoredMessage:
    """The bot's request for approval, once it shows its buttons."""
    return await tg.wait_for(
        lambda: next((m for m in tg.bot_messages(chat) if REQUEST in (m.text or "") and buttons(m)), None), timeout=60
    )


async def test_approve_runs_the_tool_and_the_answer_follows_in_a_new_message(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    llm.script(ToolCalls([("echo", {"text": "hi"})], text_before="Let me ask the server."), Text("The server said hi."))
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "echo hi")
        request = await the_request(tg, dm)
        assert tg.visible_texts(dm)[0] == "Let me ask the server."  # final before the buttons appear
        assert set(buttons(request)) == {"✅ Approve", "❌ Deny"}
        assert all(len(data.encode()) <= 64 for data in buttons(request).values())
        assert "double: echo" in (request.text or "") and '"text": "hi"' in (request.text or "")
        assert len(llm.requests) == 1  # the tool has not run: the model waits for its result

        press = tg.press_button(dm, request.message_id, alice, buttons(request)["✅ Approve"])
        await tg.wait_for(lambda: tg.visible_texts(dm)[-1] == "The server said hi.", timeout=60)
    assert press.answer is not None and press.answer.get("text") == ApprovalOutcome.APPROVED.value
    texts = tg.visible_texts(dm)
    assert len(texts) == 3 and texts[1].endswith("✅ Approved by Alice.") and REQUEST in texts[1]
    assert tg.message(dm, request.message_id).reply_markup is None  # the buttons are gone
    assert tool_answer(llm.requests[1]) == "double echoes: hi"


async def test_in_a_group_an_outsider_is_refused_and_the_asker_denies(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice, bob = tg.add_user("Alice"), tg.add_user("Bob")
    group = tg.add_group("Team")
    llm.script(ToolCalls([("echo", {"text": "hi"})]), Text("Fine, I did not ask the server."))
    async with running(tg, llm, tmp_path):
        tg.user_message(group, alice, "@livebot_test echo hi")
        request = await the_request(tg, group)
        press = tg.press_button(group, request.message_id, bob, buttons(request)["✅ Approve"])
        await tg.wait_for(lambda: press.answered)
        assert press.answer is not None and press.answer.get("text") == ApprovalOutcome.NOT_YOURS.value
        assert buttons(tg.message(group, request.message_id)) and len(llm.requests) == 1  # nothing happened

        tg.press_button(group, request.message_id, alice, buttons(request)["❌ Deny"])
        await tg.wait_for(lambda: tg.visible_texts(group)[-1] == "Fine, I did not ask the server.", timeout=60)
    assert (tg.message(group, request.message_id).text or "").endswith("❌ Denied by Alice.")
    declined = tool_answer(llm.requests[1])
    assert "User rejected the tool call for `echo`" in declined and "pressed Deny" in declined


async def test_no_answer_within_the_timeout_denies_the_call(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    llm.script(ToolCalls([("echo", {"text": "hi"})]), Text("Nobody approved, so no echo."))
    async with running(tg, llm, tmp_path, approval_timeout=1):
        tg.user_message(dm, alice, "echo hi")
        request = await the_request(tg, dm)
        await tg.wait_for(lambda: tg.visible_texts(dm)[-1] == "Nobody approved, so no echo.", timeout=60)
    assert (tg.message(dm, request.message_id).text or "").endswith("⌛ No answer within 1 s: denied.")
    assert tg.message(dm, request.message_id).reply_markup is None
    assert "no one approved it within 1 s" in tool_answer(llm.requests[1])


async def test_a_press_after_a_restart_still_resumes_the_run(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    llm.script(ToolCalls([("echo", {"text": "hi"})], text_before="Asking."), Text("It said hi, after the restart."))
    settings = {"MCP_CONFIG": gated_config(tmp_path)}
    async with telegram_process(tg, llm, tmp_path, **settings) as first:
        tg.user_message(dm, alice, "echo hi")
        request = await the_request(tg, dm)
        first.kill()  # no goodbye: the run is only in the checkpoint, the request only on disk
        await first.wait()
    async with telegram_process(tg, llm, tmp_path, **settings):
        press = tg.press_button(dm, request.message_id, alice, buttons(request)["✅ Approve"])
        await tg.wait_for(lambda: tg.visible_texts(dm)[-1] == "It said hi, after the restart.", timeout=90)
    assert press.answer is not None and press.answer.get("text") == ApprovalOutcome.APPROVED.value
    assert (tg.message(dm, request.message_id).text or "").endswith("✅ Approved by Alice.")
    assert tool_answer(llm.requests[1]) == "double echoes: hi"


async def test_a_message_sent_before_the_pause_denies_the_request_then_is_answered(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    release = asyncio.Event()
    llm.script(
        ToolCalls([("echo", {"text": "hi"})], text_before="Thinking about it.", release=release),
        Text("Without the echo, then."),
        Text("And the weather is fine."),
    )
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "echo hi")
        await tg.wait_for(lambda: any("Thinking" in draft.text for draft in tg.drafts(dm)), timeout=60)
        tg.user_message(dm, alice, "and the weather?")  # queued behind the reply, which has not paused yet
        await tg.wait_for(lambda: len(tg.updates) >= 2 and not tg.pending_updates, timeout=30)
        release.set()
        await tg.wait_for(lambda: tg.visible_texts(dm)[-1:] == ["And the weather is fine."], timeout=60)
    texts = tg.visible_texts(dm)
    assert texts[0] == "Thinking about it." and texts[1].endswith("❌ Denied: a new message came instead.")
    assert texts[2:] == ["Without the echo, then.", "And the weather is fine."]
    assert "they wrote a new message instead" in tool_answer(llm.requests[1])
    assert llm.requests[2]["messages"][-1]["content"] == "and the weather?"
