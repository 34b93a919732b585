"""The Telegram bot: the real python-telegram-bot Application over real HTTP against the Bot API double and the
OpenAI-compatible double, asserting what users in the chats see."""

from __future__ import annotations

import itertools
import socket
from collections import defaultdict
from pathlib import Path

import aiohttp
import pytest

from channels.telegram.inbound import NOT_ALLOWED
from channels.telegram.render import utf16_len
from tests.doubles.openai_server import Break, Hang, OpenAIDouble, Text, ToolCalls
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import bot_env, run_bot, running, script_tool_turns

MESSAGE_CALLS = ("sendMessage", "editMessageText")


def streamed(words: int, *, delay: float) -> Text:
    """An answer of `words` words streamed two characters at a time."""
    return Text(" ".join(f"word{i}" for i in range(words)), chunk_size=2, delay=delay)


async def test_private_chat_streams_drafts_then_sends_the_whole_answer(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    answer = streamed(60, delay=0.01)
    llm.script(answer)
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "count for me")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [answer.text], timeout=20)
    drafts = tg.drafts(dm)
    assert drafts and all(d.draft_id == drafts[0].draft_id != 0 for d in drafts)  # one animated draft
    assert len(drafts[0].history) >= 2  # previews while it was written
    calls = [c.method for c in tg.calls if c.chat_id == dm.id and c.method in (*MESSAGE_CALLS, "sendMessageDraft")]
    assert calls[-1] == "sendMessage" and "editMessageText" not in calls  # the draft is never the last word
    assert tg.rate_limited == []


async def test_the_command_menu_and_help_name_every_command(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "/help")
        await tg.wait_for(lambda: tg.visible_texts(dm))
    assert [c["command"] for c in tg.commands()] == ["start", "help", "reset", "stop", "tools"]
    (help_text,) = tg.visible_texts(dm)
    assert all(f"/{command}" in help_text for command in ("reset", "stop", "tools", "help"))
    assert llm.requests == []


async def test_group_streams_by_editing_at_the_group_pace_as_a_reply(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    answer = streamed(90, delay=0.01)  # about 4 s of streaming
    llm.script(answer)
    async with running(tg, llm, tmp_path):
        question = tg.user_message(group, alice, "@livebot_test count for me")
        await tg.wait_for(lambda: tg.visible_texts(group) == [answer.text], timeout=30)
    (message,) = tg.bot_messages(group)
    assert message.reply_to_message_id == question.message_id
    assert message.edit_count >= 1  # it grew in place
    updates = [c.at for c in tg.calls if c.chat_id == group.id and c.method in MESSAGE_CALLS]
    live = updates[:-1]  # the final edit may follow the last live one at once
    assert all(later - earlier >= 3.0 for earlier, later in itertools.pairwise(live))
    assert tg.rate_limited == []


async def test_group_answers_only_when_addressed(tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    llm.script(Text("First answer."), Text("Second answer."))
    async with running(tg, llm, tmp_path):
        tg.user_message(group, alice, "just chatting among humans")
        tg.user_message(group, alice, "@livebot_test hello")
        await tg.wait_for(lambda: tg.visible_texts(group) == ["First answer."])
        first = tg.bot_messages(group)[0]
        tg.user_message(group, alice, "and what about this?", reply_to_message_id=first.message_id)
        await tg.wait_for(lambda: tg.visible_texts(group) == ["First answer.", "Second answer."])
    asked = [request["messages"][-1]["content"] for request in llm.requests]
    assert asked == ["hello", "and what about this?"]  # the unaddressed message never reached the model


async def test_a_tool_call_finishes_the_text_before_it_and_the_answer_opens_a_new_message(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(
        ToolCalls([("calculator", {"expression": "6*7"})], text_before="Let me compute that."),
        Text("6 × 7 = **42**."),
    )
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "what is 6*7?")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Let me compute that.", "6 × 7 = 42."])
    assert any("Using calculator" in draft.text for draft in tg.drafts(dm))  # the status line while it ran
    assert any(action.action == "typing" for action in tg.chat_actions(dm))
    bold = tg.bot_messages(dm)[1].entities
    assert [(e["type"], e["offset"], e["length"]) for e in bold] == [("bold", 8, 2)]


@pytest.mark.parametrize("call_ids", ["per_reply", "none"])
async def test_every_tool_turn_of_a_conversation_shows_its_status_line_and_a_new_message_for_the_answer(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, call_ids: str
) -> None:
    """Servers that send `call_1` on every turn (or no id) once lost the second and later tool turns: the text
    before the tool and the answer arrived merged in one message, with no status line."""
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    turns = script_tool_turns(llm, call_ids)
    async with running(tg, llm, tmp_path):
        for done, turn in enumerate(turns, 1):
            statuses = len(status_drafts(tg, dm))
            tg.user_message(dm, alice, turn.question)
            await tg.wait_for(lambda n=done: len(tg.visible_texts(dm)) == 2 * n)
            assert len(status_drafts(tg, dm)) == statuses + 1  # "⚙️ Using calculator…" while the tool ran
    assert tg.visible_texts(dm) == [text for turn in turns for text in (turn.before, turn.answer)]
    assert llm.pending == 0


def status_drafts(tg: TelegramDouble, dm: object) -> list[object]:
    return [draft for draft in tg.drafts(dm) if "Using calculator" in draft.text]


async def test_no_two_drafts_in_a_chat_share_an_id_status_drafts_included(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """Drafts with the same id animate into each other: a status line must never turn into an answer, nor one
    reply's preview into another's. And while a reply streams, its drafts lead back to it (for a stop)."""
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    turns = script_tool_turns(llm, "per_reply")
    llm.script(Hang("Still thinking about"))
    async with running(tg, llm, tmp_path) as bot:
        for done, turn in enumerate(turns, 1):
            tg.user_message(dm, alice, turn.question)
            await tg.wait_for(lambda n=done: len(tg.visible_texts(dm)) == 2 * n)
        tg.user_message(dm, alice, "and one that hangs")
        await tg.wait_for(lambda: any("Still thinking" in d.text for d in tg.drafts(dm)))
        streaming = next(d.draft_id for d in tg.drafts(dm) if "Still thinking" in d.text)
        owner = bot.drafts.owner(dm.id, streaming)
        assert owner is not None and owner.chat_id == dm.id
        tg.user_message(dm, alice, "/stop")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 7)
        await bot.conversations.drain()
        assert bot.drafts.owner(dm.id, streaming) is None and len(bot.drafts) == 0  # forgotten with the reply
    texts: dict[int, list[str]] = defaultdict(list)
    for call in tg.calls_to("sendMessageDraft", dm):
        texts[call.params["draft_id"]].append(call.params["text"])
    messages = tg.visible_texts(dm)
    for draft_id, previews in texts.items():
        if any("Using calculator" in text for text in previews):  # a status draft: nothing else
            assert all(text == previews[0] for text in previews), (draft_id, previews)
        else:  # an answer's draft: one message growing, never another message's text
            chain = [text.rstrip() for text in previews]
            assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(chain)), (draft_id, chain)
            assert any(message.startswith(chain[-1]) for message in messages), (draft_id, chain)
    assert sum("Using calculator" in previews[0] for previews in texts.values()) == len(turns)  # one per tool


async def test_a_6000_character_answer_is_split_in_two_with_every_word_kept(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    paragraphs = [" ".join(f"p{p}w{i}" for i in range(90)) for p in range(12)]
    answer = "\n\n".join(paragraphs)
    assert len(answer) > 6000
    llm.script(Text(answer, chunk_size=40))
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "write a lot")
        await tg.wait_for(lambda: " ".join(tg.visible_texts(dm)).split() == answer.split(), timeout=20)
    texts = tg.visible_texts(dm)
    assert len(texts) == 2
    assert all(utf16_len(text) <= 4096 for text in texts)
    assert texts[0].endswith(paragraphs[len(texts[0].split("\n\n")) - 1])  # cut at a paragraph boundary


async def test_a_broken_model_stream_keeps_the_text_so_far_and_the_bot_keeps_answering(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Break("The first part arrives and then the line goes dead", after_chars=30), Text("Back again."))
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "one")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 1)
        tg.user_message(dm, alice, "two")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2)
    first, second = tg.visible_texts(dm)
    assert first.startswith("The first part arrives and the") and "⚠️" in first
    assert second == "Back again."


async def test_429_in_the_middle_of_a_reply_is_honoured_and_the_final_text_lands(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    answer = streamed(90, delay=0.01)
    llm.script(answer)
    tg.fail_next("editMessageText", chat_id=group.id, retry_after=2)
    async with running(tg, llm, tmp_path):
        tg.user_message(group, alice, "@livebot_test go")
        await tg.wait_for(lambda: tg.visible_texts(group) == [answer.text], timeout=30)
    assert [c.retry_after for c in tg.rate_limited] == [2]
    assert tg.calls_inside_retry_after == []
    assert tg.unfired_faults == []


async def test_users_outside_the_allowlist_get_one_polite_refusal_and_no_model_call(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    mallory = tg.add_user("Mallory", username="mallory")
    dm = tg.private_chat(mallory)
    async with running(tg, llm, tmp_path, telegram_allowed_users=["alice", "12345"]):
        tg.user_message(dm, mallory, "hello?")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [NOT_ALLOWED])
    assert llm.requests == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_webhook_mode_answers_updates_and_refuses_requests_without_the_secret(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("Via webhook."))
    url = f"http://127.0.0.1:{free_port()}/telegram"
    webhook = {
        "telegram_webhook_url": url,
        "telegram_webhook_secret": "s3cret-webhook-token",
        "telegram_webhook_listen": "127.0.0.1",
        "telegram_webhook_port": int(url.split(":")[2].split("/")[0]),
    }
    async with running(tg, llm, tmp_path, **webhook):
        forged = {"update_id": 99, "message": {"message_id": 1, "date": 0, "chat": {"id": dm.id, "type": "private"},
                                               "from": {"id": alice.id, "is_bot": False, "first_name": "A"},
                                               "text": "forged question"}}  # fmt: skip
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                async with http.post(url, json=forged, headers=headers) as response:
                    assert response.status == 403
        tg.user_message(dm, alice, "real question")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Via webhook."])
    assert [request["messages"][-1]["content"] for request in llm.requests] == ["real question"]


async def test_refused_drafts_fall_back_to_send_and_edit_for_that_chat(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    first, second = streamed(40, delay=0.01), Text("Second reply, no drafts tried.")
    llm.script(first, second)
    tg.fail_next("sendMessageDraft", chat_id=dm.id, status=400, description="Bad Request: TEXTDRAFT_PEER_INVALID")
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "one")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [first.text], timeout=20)
        drafts_before = len(tg.calls_to("sendMessageDraft", dm))
        tg.user_message(dm, alice, "two")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [first.text, second.text])
    assert tg.bot_messages(dm)[0].edit_count >= 1  # the first reply streamed by editing instead
    assert len(tg.calls_to("sendMessageDraft", dm)) == drafts_before == 1  # the chat is not asked again


async def test_missing_token_stops_start_up_with_one_line(tmp_path: Path) -> None:
    done = await run_bot(["telegram"], stdin="", env=bot_env(tmp_path), cwd=tmp_path)
    assert done.code == 2
    assert done.err.strip().count("\n") == 0 and "TELEGRAM_BOT_TOKEN" in done.err
