"""The fault matrix of issue 6 through the Telegram channel: the real bot, python-telegram-bot and ChatOpenAI over
real HTTP against the doubles, with one thing going wrong at a time (the model, a tool, the Bot API).

Every test asserts what the people in the chat see: each word of the answer on screen exactly once, plus a short
notice where the reply failed, and the bot still answering the next message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent.errors import MODEL_SILENT, MODEL_STALLED
from agent.model import MAX_RETRIES
from agent.thread import open_agent_thread
from bot.runtime import EMPTY_ANSWER
from bot.telegram_app import TelegramBot, serve_telegram
from channels.telegram.render import render
from tests.doubles.openai_server import Error, Hang, OpenAIDouble, Silent, Text, ToolCalls
from tests.doubles.telegram_api import Chat, TelegramDouble, User
from tests.scenarios.conftest import running, telegram_settings
from tools import default_tools

EMPTY_NOTICE = render(EMPTY_ANSWER).text  # as shown: the italics become an entity


def streamed(words: int, *, delay: float = 0.01) -> Text:
    """An answer of `words` distinct words, streamed a few characters at a time."""
    return Text(" ".join(f"word{i}" for i in range(words)), chunk_size=3, delay=delay)


def shown_words(tg: TelegramDouble, chat: Chat) -> list[str]:
    """Every word the bot shows in `chat`, in order across its messages."""
    return " ".join(tg.visible_texts(chat)).split()


def team(tg: TelegramDouble) -> tuple[User, Chat]:
    return tg.add_user("Alice", username="alice"), tg.add_group("Team")


def direct(tg: TelegramDouble) -> tuple[User, Chat]:
    alice = tg.add_user("Alice", username="alice")
    return alice, tg.private_chat(alice)


# -- the model -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500])
async def test_one_model_error_before_the_first_token_is_retried_and_the_answer_arrives(
    status: int, tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """The OpenAI client retries 429 and 5xx itself: one refusal must cost the user nothing but a second."""
    alice, dm = direct(tg)
    llm.script(Error(status, "try again"), Text("The answer, on the second try."))
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "question")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["The answer, on the second try."])
    assert len(llm.requests) == 2 and llm.pending == 0


@pytest.mark.parametrize(
    ("status", "attempts", "notice"),
    [
        (429, MAX_RETRIES + 1, "The model is rate-limited right now. Please try again in a moment."),
        (500, MAX_RETRIES + 1, "The model server had an error (HTTP 500). Please try again."),
        (401, 1, "The model server rejected the API key."),  # not retried: it would fail the same way
    ],
)
async def test_a_model_that_keeps_failing_gets_a_clear_notice_and_the_next_message_is_answered(
    status: int, attempts: int, notice: str, tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """Retries exhausted, the user must learn why there is no answer (not silence, not a traceback), and the
    conversation must not be stuck: the failed turn may not poison the next request."""
    alice, dm = direct(tg)
    llm.script(*[Error(status, "sk-secret-in-the-provider-message")] * attempts, Text("Back to normal."))
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "one")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [f"⚠️ {notice}"])
        tg.user_message(dm, alice, "two")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [f"⚠️ {notice}", "Back to normal."])
    assert len(llm.requests) == attempts + 1 and llm.pending == 0


@pytest.mark.parametrize("empty", ["", "\n\n", "  "])
async def test_an_empty_answer_gets_a_short_notice_instead_of_silence(
    empty: str, tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """Local models sometimes answer nothing, or only blank lines: Telegram refuses an empty message, so without
    a notice the user watches "typing…" and then nothing at all."""
    alice, dm = direct(tg)
    llm.script(Text(empty), Text("Second answer."))
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "one")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [EMPTY_NOTICE])
        tg.user_message(dm, alice, "two")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [EMPTY_NOTICE, "Second answer."])


async def test_an_empty_answer_after_a_tool_gets_the_notice_too(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """Text written before a tool ("Let me compute that.") is not the answer: a reply that ends on it, with
    nothing after the tool, must say that the answer is missing rather than leave the user waiting for it."""
    alice, dm = direct(tg)
    llm.script(ToolCalls([("calculator", {"expression": "6*7"})], text_before="Let me compute that."), Text(""))
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "what is 6*7?")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Let me compute that.", EMPTY_NOTICE])


def typing_is_over(tg: TelegramDouble, chat: Chat) -> bool:
    """No "typing…" after the reply's last message, and nothing left that would send one."""
    last = max(c.at for c in tg.calls if c.chat_id == chat.id and c.method in ("sendMessage", "editMessageText"))
    typing = [c.at for c in tg.calls if c.chat_id == chat.id and c.method == "sendChatAction"]
    alive = [t for t in asyncio.all_tasks() if t.get_name().startswith("typing:") and not t.done()]
    return all(at <= last for at in typing) and not alive


async def test_a_model_server_that_sends_nothing_gets_a_notice_at_the_first_token_timeout(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """A server that accepts the connection and then says nothing once kept "typing…" up for six minutes (two
    silent reconnects). Now the user hears why there is no answer, once, and the chat is free for the next."""
    alice, dm = direct(tg)
    notice = "⚠️ " + MODEL_SILENT.format(seconds=1)
    llm.script(Silent(), Text("Back to normal."))  # a retry would take the second reply
    async with running(tg, llm, tmp_path, model_first_token_timeout=1, model_idle_timeout=1) as bot:
        tg.user_message(dm, alice, "one")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [notice], timeout=20)
        await asyncio.wait_for(bot.conversations.drain(), 10)
        assert typing_is_over(tg, dm)
        tg.user_message(dm, alice, "two")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [notice, "Back to normal."])
    assert len(llm.requests) == 2, "the silent request was not retried behind the user's back"


async def test_a_model_that_stalls_after_its_first_words_keeps_them_and_names_the_stall(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice, dm = direct(tg)
    llm.script(Hang("The answer starts like this and then"), Text("Back to normal."))
    async with running(tg, llm, tmp_path, model_first_token_timeout=30, model_idle_timeout=1) as bot:
        tg.user_message(dm, alice, "one")
        await tg.wait_for(lambda: "⚠️" in "".join(tg.visible_texts(dm)), timeout=20)
        await asyncio.wait_for(bot.conversations.drain(), 10)
        assert typing_is_over(tg, dm)
        tg.user_message(dm, alice, "two")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2)
    first, second = tg.visible_texts(dm)
    assert first == "The answer starts like this and then\n\n⚠️ " + MODEL_STALLED.format(seconds=1)
    assert second == "Back to normal."
    assert len(llm.requests) == 2


@pytest.mark.parametrize(
    ("call", "told"),
    [
        (("calculator", "6*7"), "were not a valid JSON object"),
        (("calculator", '{"expression": 6*7}'), "were not a valid JSON object"),
        (("calculator", '["6*7"]'), "were not a valid JSON object"),
        (("teleport", {"to": "mars"}), "there is no tool named 'teleport'"),
    ],
    ids=["not-json", "broken-json", "not-an-object", "unknown-tool"],
)
async def test_a_tool_call_the_bot_cannot_make_is_answered_to_the_model_and_the_run_goes_on(
    call: tuple[str, Any], told: str, tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """Models do send broken arguments and invent tools. Unanswered, such a call either ends the run without an
    answer or leaves a history OpenAI rejects (the double is as strict), so every later message would fail too."""
    alice, dm = direct(tg)
    llm.script(
        ToolCalls([call], text_before="Let me check."),
        Text("I could not use that tool, but the answer is 42."),
        Text("Still here."),
    )
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "what is 6*7?")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2)
        tg.user_message(dm, alice, "and now?")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 3)
    assert tg.visible_texts(dm) == ["Let me check.", "I could not use that tool, but the answer is 42.", "Still here."]
    answer = llm.requests[1]["messages"][-1]
    assert answer["role"] == "tool" and told in answer["content"]


# -- tools -----------------------------------------------------------------------------------------------------


async def test_a_tool_that_raises_is_reported_to_the_model_and_the_status_line_gives_way_to_the_answer(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """In a group the tool's status is a real message that the answer replaces; a failing tool must not leave
    it behind ("⚙️ Using calculator…" forever) nor end the reply early."""
    alice, group = team(tg)
    llm.script(
        ToolCalls([("calculator", {"expression": "1/0"})], text_before="Let me divide."),
        Text("Division by zero has no value."),
        Text("Still here."),
    )
    async with running(tg, llm, tmp_path):
        tg.user_message(group, alice, "@livebot_test what is 1/0?")
        await tg.wait_for(lambda: len(tg.visible_texts(group)) == 2)
        tg.user_message(group, alice, "@livebot_test and now?")
        await tg.wait_for(lambda: len(tg.visible_texts(group)) == 3)
    assert tg.visible_texts(group) == ["Let me divide.", "Division by zero has no value.", "Still here."]
    assert any(text and "Using calculator" in text for m in tg.bot_messages(group) for text in m.history)
    assert all(m.reply_markup is None for m in tg.bot_messages(group))
    result = llm.requests[1]["messages"][-1]
    assert result["role"] == "tool" and "division by zero" in result["content"]


@asynccontextmanager
async def running_as_deployed(
    tg: TelegramDouble, llm: OpenAIDouble, data: Path, **settings: Any
) -> AsyncIterator[TelegramBot]:
    """The bot with the tools built from its settings, as `bot.serving` builds them (WEB_FETCH_ALLOW_PRIVATE)."""
    config = telegram_settings(tg, llm, data, **settings)
    tools = default_tools(allow_private_fetch=config.web_fetch_allow_private)
    async with open_agent_thread(config.agent_config(), tools) as agent, serve_telegram(config, agent) as bot:
        yield bot


@asynccontextmanager
async def hanging_site() -> AsyncIterator[tuple[str, list[web.Request], asyncio.Event]]:
    """A web server on 127.0.0.1 that accepts every request and never answers.

    Yields its URL, the requests it got, and an event set when a client hung up on it.
    """
    requests: list[web.Request] = []
    hung_up = asyncio.Event()
    released = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        requests.append(request)
        while not released.is_set():
            if request.transport is None or request.transport.is_closing():
                hung_up.set()
                break
            await asyncio.sleep(0.02)
        return web.Response(text="too late")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hang)
    async with local_site(app) as root:
        try:
            yield f"{root}/slow-page", requests, hung_up
        finally:
            released.set()


@asynccontextmanager
async def local_site(app: web.Application) -> AsyncIterator[str]:
    """`app` served on 127.0.0.1 for the duration of the block; yields its root URL."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_a_tool_that_hangs_is_stopped_at_the_tool_timeout_and_the_answer_follows(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """A page that never answers must cost one TOOL_TIMEOUT, not the reply: the model hears that the tool timed
    out, the user gets its answer, the request is abandoned (no connection left open), the chat stays usable."""
    alice, dm = direct(tg)
    async with hanging_site() as (url, requests, hung_up):
        llm.script(
            ToolCalls([("web_fetch", {"url": url})], text_before="Let me read that page."),
            Text("The page did not answer in time."),
            Text("Still here."),
        )
        async with running_as_deployed(tg, llm, tmp_path, tool_timeout=0.5, web_fetch_allow_private=True):
            tg.user_message(dm, alice, "what does that page say?")
            await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2)
            tg.user_message(dm, alice, "and now?")
            await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 3)
            await asyncio.wait_for(hung_up.wait(), 2)
    assert tg.visible_texts(dm) == ["Let me read that page.", "The page did not answer in time.", "Still here."]
    assert len(requests) == 1  # the tool really ran, and it was not retried
    result = llm.requests[1]["messages"][-1]
    assert result["role"] == "tool" and "did not finish within 0.5 s" in result["content"]


# -- the Bot API -----------------------------------------------------------------------------------------------


async def test_a_429_in_the_middle_of_a_draft_stream_holds_every_call_until_retry_after(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """The model keeps writing during the wait; neither a newer preview, nor "typing…", nor the final message may
    reach the chat before retry_after has passed (Telegram punishes that with longer waits)."""
    alice, dm = direct(tg)
    answer = streamed(60, delay=0.01)  # about 1.3 s of streaming: drafts go out every 0.3 s meanwhile
    llm.script(answer)
    async with running(tg, llm, tmp_path):
        tg.user_message(dm, alice, "count for me")
        await tg.wait_for(lambda: tg.calls_to("sendMessageDraft", dm))
        tg.fail_next("sendMessageDraft", chat_id=dm.id, retry_after=3)
        await tg.wait_for(lambda: tg.visible_texts(dm) == [answer.text], timeout=10)
    assert [c.retry_after for c in tg.rate_limited] == [3]
    assert tg.calls_inside_retry_after == []
    (limited,) = tg.rate_limited
    assert llm.token_times[0][-1] > limited.at  # the model was still writing when the 429 came
    assert tg.unfired_faults == []


FAULTS = {
    "5xx": {"status": 502},
    "reset": {"reset_connection": True},  # before Telegram acted on it
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
@pytest.mark.parametrize("method", ["sendMessage", "editMessageText"])
async def test_a_send_or_edit_that_fails_is_retried_and_the_answer_lands_once(
    method: str, fault: dict[str, Any], tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """Twice in a row, so that an intermediate update (skipped) and the final one (retried with backoff) both
    meet it: the answer must land whole, in one message, without the Stop button, and never twice."""
    alice, dm = direct(tg)
    answer = streamed(60)  # about 1.5 s: the first message, one intermediate edit (1.1 s pace), the final edit
    llm.script(answer)
    tg.fail_next(method, chat_id=dm.id, times=2, **fault)
    async with running(tg, llm, tmp_path, stream_mode="edit"):
        tg.user_message(dm, alice, "count for me")
        await tg.wait_for(lambda: tg.visible_texts(dm) == [answer.text] and tg.unfired_faults == [], timeout=10)
        await tg.wait_for(lambda: tg.bot_messages(dm)[0].reply_markup is None)
    assert len(tg.bot_messages(dm, include_deleted=True)) == 1
    failed = [call for call in tg.calls_to(method, dm) if call.status != 200]
    assert len(failed) == 2 and tg.calls_to(method, dm)[-1].status == 200


async def test_an_edit_whose_answer_was_lost_is_not_repeated_into_a_second_message(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """The connection drops after Telegram applied the edit: the retry finds the text already there ("not
    modified"), which must count as done, not as a failure to retry for a minute and then send the answer anew."""
    alice, group = team(tg)
    answer = streamed(40)
    llm.script(answer)
    tg.fail_next("editMessageText", chat_id=group.id, reset_connection=True, after_effect=True)
    async with running(tg, llm, tmp_path) as bot:
        tg.user_message(group, alice, "@livebot_test count for me")
        await tg.wait_for(lambda: tg.unfired_faults == [] and tg.visible_texts(group) == [answer.text])
        await asyncio.wait_for(bot.conversations.drain(), 5)
    (message,) = tg.bot_messages(group, include_deleted=True)
    assert message.reply_markup is None
    assert "not modified" in (tg.calls_to("editMessageText", group)[-1].description or "")  # the retry


async def test_a_message_deleted_while_it_streams_continues_in_a_new_one_with_nothing_lost(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    """Someone (an admin, the user) deletes the half-written answer: the next edit fails "not found", and the
    words it held and the ones still coming must go on in a new message at once, not only when the answer ends."""
    alice, group = team(tg)
    answer = streamed(220)  # about 5.5 s: the next edit, 3.1 s after the first message, meets the deleted one
    llm.script(answer, Text("Still here."))
    async with running(tg, llm, tmp_path):
        tg.user_message(group, alice, "@livebot_test count for me")
        (first,) = await tg.wait_for(lambda: tg.bot_messages(group))
        tg.delete_message(group, first.message_id)
        await tg.wait_for(lambda: tg.visible_texts(group) == [answer.text], timeout=10)
        tg.user_message(group, alice, "@livebot_test and now?")
        await tg.wait_for(lambda: tg.visible_texts(group) == [answer.text, "Still here."])
    deleted, fresh, _ = tg.bot_messages(group, include_deleted=True)
    assert deleted.deleted and answer.text.startswith(deleted.text or "-") and deleted.text != answer.text
    opened_with = fresh.history[0] or ""
    assert answer.text.startswith(opened_with) and opened_with != answer.text  # opened while still being written
    assert fresh.reply_markup is None
    assert shown_words(tg, group) == [*answer.text.split(), "Still", "here."]
