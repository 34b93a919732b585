"""Private chats in Telegram: drafts with Bot API 10.3's stop button, and TELEGRAM_PRIVATE_STREAM=edit.

The real python-telegram-bot Application against the Bot API double; the user presses the stop button the draft
shows, and the bot must stop that reply exactly as /stop does."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.runtime import STOPPED_MARK
from tests.doubles.openai_server import Hang, OpenAIDouble, Text
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import running

STOPPED = STOPPED_MARK.replace("_", "")  # as rendered: the italics become an entity
PATIENCE = 15.0
"""Seconds a condition may take on a busy machine; the waits end as soon as it holds."""


async def test_private_chat_drafts_offer_a_stop_button_that_stays_after_the_press(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    answer = Text(" ".join(f"word{i}" for i in range(40)), chunk_size=3, delay=0.01)
    llm.script(answer)
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "count")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [answer.text], timeout=PATIENCE)
    drafts = tg.calls_to("sendMessageDraft", dm)
    assert drafts and all(call.ok for call in drafts)
    assert all((call.params["can_stop"], call.params["keep_on_stop"]) == (True, True) for call in drafts)


async def test_the_stop_button_of_a_draft_stops_the_reply_like_the_stop_command(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    thinking = "I am thinking about this at great length"
    llm.script(Hang(thinking), Text("never asked for"))
    async with running(tg, llm, tmp_path) as bot:
        tg.user_message(dm, alice, "think")
        await tg.wait_for(lambda: any(d.text for d in tg.active_drafts(dm)), timeout=PATIENCE)
        tg.user_message(dm, alice, "and then this")  # a follow-up waiting behind the reply
        shown = tg.active_drafts(dm)[-1].text
        tg.stop_draft(dm)
        await asyncio.wait_for(llm.disconnected.wait(), PATIENCE)  # the model's stream is closed
        await tg.wait_for(lambda: any(STOPPED in text for text in tg.visible_texts(dm)), timeout=PATIENCE)
        await asyncio.wait_for(bot.conversations.drain(), PATIENCE)
    [final] = tg.visible_texts(dm)
    kept = final.removesuffix(f"\n\n{STOPPED}")
    assert kept != final and kept.startswith(shown) and thinking.startswith(kept)  # the text so far, then the mark
    assert tg.active_drafts(dm) == []  # the kept draft gave way to the final message
    assert len(llm.requests) == 1  # the follow-up was dropped, as /stop drops it


async def test_a_stop_press_on_a_draft_of_a_finished_reply_stops_nothing(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    bob = tg.add_user("Bob", username="bob")
    dm, other = tg.private_chat(alice), tg.private_chat(bob)
    llm.script(Text("The first answer."), Hang("A second answer that is still being written"))
    async with running(tg, llm, tmp_path) as bot:
        tg.user_message(dm, alice, "first")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["The first answer."], timeout=PATIENCE)
        finished = tg.drafts(dm)[0].draft_id
        tg.user_message(dm, alice, "second")
        await tg.wait_for(lambda: any(d.text for d in tg.active_drafts(dm)), timeout=PATIENCE)
        tg.push_update("stopped_message_generation", {"chat": dm.to_api(), "draft_id": finished})
        tg.user_message(other, bob, "/help")  # updates are handled in order: once this is answered, so was that
        await tg.wait_for(lambda: tg.visible_texts(other), timeout=PATIENCE)
        assert not llm.disconnected.is_set()  # the second reply's model stream goes on
        assert tg.visible_texts(dm) == ["The first answer."] and tg.active_drafts(dm)
        tg.user_message(dm, alice, "/stop")  # had the stale press stopped it, this would find nothing to stop
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) >= 2, timeout=PATIENCE)
        await asyncio.wait_for(bot.conversations.drain(), PATIENCE)
    [_, second] = tg.visible_texts(dm)
    assert second.startswith("A second") and second.endswith(STOPPED)


async def test_private_stream_edit_streams_by_edits_with_the_stop_button(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    answer = Text(" ".join(f"word{i}" for i in range(60)), chunk_size=2, delay=0.02)
    llm.script(answer, Hang("Streaming until the button is pressed"))
    async with running(tg, llm, tmp_path, telegram_private_stream="edit"):
        tg.user_message(dm, alice, "count")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [answer.text], timeout=PATIENCE)
        tg.user_message(dm, alice, "go on")
        await tg.wait_for(lambda: len(tg.bot_messages(dm)) == 2, timeout=PATIENCE)
        second = tg.bot_messages(dm)[1]
        tg.press_button(dm, second.message_id, alice, "stop")
        await tg.wait_for(lambda: STOPPED in tg.message(dm, second.message_id).text, timeout=PATIENCE)
    first = tg.bot_messages(dm)[0]
    assert tg.calls_to("sendMessageDraft", dm) == []
    assert first.edit_count >= 1 and first.reply_markup is None  # it grew in place; the final edit took the button
    assert tg.calls_to("sendMessage", dm)[0].params["reply_markup"]["inline_keyboard"][0][0]["text"] == "⏹ Stop"
    assert tg.message(dm, second.message_id).reply_markup is None
