"""The conversation runtime through the Telegram channel: one reply at a time, follow-ups, /stop and the Stop
button, a stop during a tool, the per-user limit, and SIGTERM in the middle of a reply."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from langchain_core.tools import tool

from bot.conversations import NOTHING_TO_STOP, TOO_FAST
from bot.runtime import STOPPED_MARK
from tests.doubles.openai_server import Hang, OpenAIDouble, Text, ToolCalls
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import running, telegram_process

STOPPED = STOPPED_MARK.replace("_", "")  # as rendered: the italics become an entity


async def test_messages_sent_while_a_reply_streams_are_answered_after_it_as_one_turn(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("A slow first answer that takes its time.", chunk_size=2, delay=0.03), Text("Both noted."))
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "first")
        await tg.wait_for(lambda: tg.drafts(dm))  # the first reply is streaming
        tg.user_message(dm, alice, "second")
        tg.user_message(dm, alice, "third")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2, timeout=20)
    assert tg.visible_texts(dm) == ["A slow first answer that takes its time.", "Both noted."]
    assert len(llm.requests) == 2  # never two model streams at once, and one follow-up turn
    follow_up = llm.requests[1]["messages"]
    assert follow_up[-2]["content"] == "A slow first answer that takes its time."  # it began after the first ended
    assert follow_up[-1]["content"] == "second\n\nthird"


async def test_stop_command_closes_the_model_stream_and_finalises_the_message(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    llm.script(Hang("I am thinking about this at great length"))
    async with running(tg, llm, tmp_path):
        tg.user_message(group, alice, "@livebot_test think")
        await tg.wait_for(lambda: tg.bot_messages(group))
        assert tg.bot_messages(group)[0].reply_markup is not None  # the Stop button while it streams
        tg.user_message(group, alice, "/stop")
        await asyncio.wait_for(llm.disconnected.wait(), 2)  # the model's HTTP stream is closed within 2 s
        await tg.wait_for(lambda: STOPPED in tg.visible_texts(group)[0])
        (message,) = tg.bot_messages(group)
        kept = message.text.removesuffix(f"\n\n{STOPPED}")
        # the text that had reached the bot when /stop came (at least what was shown), then the mark
        assert kept != message.text and kept.startswith(message.history[0])
        assert "I am thinking about this at great length".startswith(kept)
        assert message.reply_markup is None  # the button is gone from the final message
        tg.user_message(group, alice, "/stop")
        await tg.wait_for(lambda: tg.visible_texts(group)[-1] == NOTHING_TO_STOP)


async def test_stop_button_stops_the_reply(tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    llm.script(Hang("Streaming until someone presses the button"))
    async with running(tg, llm, tmp_path):
        tg.user_message(group, alice, "@livebot_test go")
        await tg.wait_for(lambda: tg.bot_messages(group))
        tg.press_button(group, tg.bot_messages(group)[0].message_id, alice, "stop")
        await asyncio.wait_for(llm.disconnected.wait(), 2)
        await tg.wait_for(lambda: tg.bot_messages(group)[0].reply_markup is None)
    assert STOPPED in tg.visible_texts(group)[0]
    assert tg.callback_queries and all(q.answered for q in tg.callback_queries.values())


@tool
async def slow_lookup(query: str) -> str:
    """Look something up in a very slow archive."""
    await asyncio.sleep(60)
    return "found"


async def test_a_reply_stopped_during_a_tool_leaves_a_history_the_model_accepts(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(ToolCalls([("slow_lookup", {"query": "x"})], text_before="Looking it up."), Text("Fine, asking anew."))
    async with running(tg, llm, tmp_path, tools=[slow_lookup]):
        tg.user_message(dm, alice, "look it up")
        await tg.wait_for(lambda: any("slow_lookup" in d.text for d in tg.drafts(dm)))  # the tool is running
        tg.user_message(dm, alice, "/stop")
        await tg.wait_for(lambda: any(STOPPED in text for text in tg.visible_texts(dm)))
        tg.user_message(dm, alice, "try again")
        await tg.wait_for(lambda: tg.visible_texts(dm)[-1:] == ["Fine, asking anew."])
    # the double rejects an assistant tool call without its result, as OpenAI does: the second turn was accepted
    tool_results = [m for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert len(tool_results) == 1


async def test_a_user_over_the_per_minute_limit_gets_a_polite_note_and_no_model_run(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("One answer."))
    async with running(tg, llm, tmp_path, user_runs_per_minute=1):
        tg.user_message(dm, alice, "one")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["One answer."])
        tg.user_message(dm, alice, "two")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["One answer.", TOO_FAST])
    assert len(llm.requests) == 1


async def test_sigterm_during_a_reply_finalises_it_with_a_notice_and_exits_zero(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Hang("Half an answer, and then"))
    async with telegram_process(tg, llm, tmp_path, SHUTDOWN_GRACE="1") as process:
        tg.user_message(dm, alice, "tell me")
        await tg.wait_for(lambda: any("Half an answer" in d.text for d in tg.drafts(dm)), timeout=60)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    (text,) = tg.visible_texts(dm)  # a real message, not a draft left behind
    assert text.startswith("Half an answer, and then") and "restarting" in text


async def test_a_stop_button_left_by_a_killed_bot_goes_when_pressed_after_the_restart(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    llm.script(Hang("Streaming when the power goes"))
    async with telegram_process(tg, llm, tmp_path) as process:
        tg.user_message(group, alice, "@livebot_test go")
        (message,) = await tg.wait_for(lambda: tg.bot_messages(group), timeout=60)
        process.kill()  # no goodbye: the message keeps its Stop button
        await process.wait()
    assert tg.bot_messages(group)[0].reply_markup is not None
    async with running(tg, llm, tmp_path):
        press = tg.press_button(group, message.message_id, alice, "stop")
        await tg.wait_for(lambda: tg.bot_messages(group)[0].reply_markup is None)
        await tg.wait_for(lambda: press.answered)
    assert press.answer is not None and press.answer.get("text") == "Nothing to stop."


async def test_a_final_the_platform_refuses_is_delivered_later_from_the_outbox(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("Delivered in the end."))
    tg.fail_next("sendMessage", chat_id=dm.id, status=502, times=2)
    async with running(tg, llm, tmp_path, final_patience=1):
        tg.user_message(dm, alice, "hello")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Delivered in the end."], timeout=20)
    assert tg.unfired_faults == []
    sent = [c for c in tg.calls_to("sendMessage", dm) if c.ok]
    assert len(sent) == 1  # never twice


async def test_the_outbox_survives_a_restart_and_delivers_once(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("Worth the wait."))
    outage = tg.fail_next("sendMessage", chat_id=dm.id, status=502, times=1000)
    async with running(tg, llm, tmp_path, final_patience=1):
        tg.user_message(dm, alice, "hello")
        await tg.wait_for(lambda: outage.fired >= 3, timeout=20)  # the reply and the courier both failed
    assert tg.visible_texts(dm) == []
    outage.times = outage.fired  # the platform is back
    async with running(tg, llm, tmp_path, final_patience=1):
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Worth the wait."], timeout=20)
    async with running(tg, llm, tmp_path, final_patience=1):  # a third start sends nothing again
        await tg.wait_for(lambda: tg.waiting_polls, timeout=20)
    assert len([c for c in tg.calls_to("sendMessage", dm) if c.ok]) == 1
