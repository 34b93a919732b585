"""A reply cut short by a crash (kill -9 of the real bot process mid-answer) is finished at the next start: the
message keeps the text it showed, gains a short "interrupted" mark and loses its Stop button (a Telegram draft,
which is no message, arrives as one), and the run goes on from the conversation memory's checkpoint: the model is
asked again with the stored question and the whole answer arrives as a new reply, once. A run that had finished
before the crash is not answered again."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agent.thread import open_agent_thread
from bot.runtime import RESUMED_MARK
from bot.slack_app import serve_slack
from channels.slack.surface import STOP_ACTION
from media.store import FileStore
from tests.doubles.openai_server import Held, OpenAIDouble, Text, ToolCalls
from tests.doubles.search_api import SearchDouble
from tests.doubles.slack_api import SlackDouble, SlackMessage
from tests.doubles.slack_events import app_mention, post_event
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import recorded_text, running, slack_process, telegram_process, telegram_settings
from tests.scenarios.slack_scene import SECRET, TOKEN, slack_settings
from tools import default_tools

RESUMED = RESUMED_MARK.replace("_", "")  # as Telegram shows it: the italics become an entity
SHOWN = "Streaming when the power"
ANSWER = f"{SHOWN} goes out, which it is about to."


def held(release: asyncio.Event) -> Held:
    """The model writes SHOWN, then waits (until the test is done with it)."""
    return Held(ANSWER, after_chars=len(SHOWN), release=release)


def asked(llm: OpenAIDouble) -> list[str]:
    """The last user message of each request the model got."""
    return [[m for m in body["messages"] if m["role"] == "user"][-1]["content"] for body in llm.requests]


async def test_a_group_reply_cut_by_a_crash_is_marked_and_answered_whole_once(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    release = asyncio.Event()
    llm.script(held(release), Text(ANSWER))
    async with telegram_process(tg, llm, tmp_path) as process:
        tg.user_message(group, alice, "@livebot_test go")
        await tg.wait_for(lambda: tg.visible_texts(group) == [SHOWN], timeout=60)
        await recorded_text(tmp_path / "data", SHOWN)
        process.kill()  # SIGKILL: no goodbye
        await process.wait()
    [message] = tg.bot_messages(group)
    assert message.reply_markup is not None  # as the crash left it
    release.set()
    async with running(tg, llm, tmp_path / "data") as bot:
        cut = tg.bot_messages(group)[0]  # settled before the bot takes messages
        assert cut.text == f"{SHOWN}\n\n{RESUMED}" and cut.reply_markup is None
        await tg.wait_for(lambda: tg.visible_texts(group) == [cut.text, ANSWER], timeout=60)
        await bot.conversations.drain()
    assert tg.visible_texts(group) == [cut.text, ANSWER]  # the whole answer, once
    assert [m.reply_markup for m in tg.bot_messages(group)] == [None, None]
    question = asked(llm)[0]
    assert "go" in str(question) and asked(llm) == [question, question]  # asked again with the stored question
    edits = len([c for c in tg.calls if c.method == "editMessageText"])
    async with running(tg, llm, tmp_path / "data"):  # a second start finds nothing left to finish
        await tg.wait_for(lambda: tg.waiting_polls, timeout=20)
    assert len([c for c in tg.calls if c.method == "editMessageText"]) == edits
    assert len(tg.bot_messages(group)) == 2 and len(llm.requests) == 2


async def test_a_reply_cut_while_a_tool_runs_runs_the_tool_again_and_answers_whole_once(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    search = ToolCalls([("web_search", {"query": "power cuts"})], text_before="Let me look that up.")
    llm.script(search, Text(ANSWER))
    async with SearchDouble(results=[("Power", "https://example.com/power", "about cuts")]) as api:
        api.hold = asyncio.Event()  # the search service is slow: the tool is running when the bot dies
        async with telegram_process(tg, llm, tmp_path, SEARXNG_URL=api.searxng_url) as process:
            tg.user_message(group, alice, "@livebot_test go")
            await tg.wait_for(lambda: api.requests, timeout=60)
            process.kill()
            await process.wait()
        api.hold.set()
        before = tg.visible_texts(group)
        assert before[0] == "Let me look that up."  # the text before the tool was finished before it ran
        backends = telegram_settings(tg, llm, tmp_path / "data", searxng_url=api.searxng_url).search_backends
        searching = [tool for tool in default_tools(search=backends) if tool.name == "web_search"]
        async with running(tg, llm, tmp_path / "data", tools=searching) as bot:
            await tg.wait_for(lambda: ANSWER in tg.visible_texts(group), timeout=60)
            await bot.conversations.drain()
        assert len(api.requests) == 2  # the tool ran again
    assert [m.reply_markup for m in tg.bot_messages(group)] == [None] * len(tg.bot_messages(group))
    assert tg.visible_texts(group)[-1] == ANSWER and tg.visible_texts(group).count(ANSWER) == 1
    assert len(llm.requests) == 2  # the step that asked for the tool is not asked again: the answer after it is
    assert llm.requests[1]["messages"][-1]["role"] == "tool"


async def test_a_crash_right_after_the_final_edit_answers_nothing_twice(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    release = asyncio.Event()
    llm.script(held(release))
    state = tmp_path / "data" / "state.sqlite"
    async with telegram_process(tg, llm, tmp_path) as process:
        tg.user_message(group, alice, "@livebot_test go")
        await recorded_text(tmp_path / "data", SHOWN)
        with contextlib.closing(sqlite3.connect(state)) as db:  # the record as the crash will leave it
            [row] = db.execute("SELECT * FROM inflight_replies").fetchall()
        release.set()
        await tg.wait_for(lambda: tg.visible_texts(group) == [ANSWER], timeout=60)
        # The process dies after the final edit and before the record went: the row is what it left.
        await tg.wait_for(lambda: tg.bot_messages(group)[0].reply_markup is None, timeout=60)
        process.kill()
        await process.wait()
    with contextlib.closing(sqlite3.connect(state)) as db:
        db.execute("DELETE FROM inflight_replies")
        db.execute(f"INSERT INTO inflight_replies VALUES ({', '.join('?' * len(row))})", row)
        db.commit()
    async with running(tg, llm, tmp_path / "data") as bot:
        await bot.conversations.drain()
        assert tg.visible_texts(group) == [ANSWER]  # not cut back to what the record knew, not answered again
        assert tg.bot_messages(group)[0].reply_markup is None
    assert len(llm.requests) == 1
    with contextlib.closing(sqlite3.connect(state)) as db:
        assert db.execute("SELECT count(*) FROM inflight_replies").fetchone() == (0,)


async def test_a_cut_reply_whose_message_was_deleted_is_dropped_not_retried_at_every_start(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    release = asyncio.Event()
    llm.script(held(release), Text(ANSWER), Text("Still here."))
    async with telegram_process(tg, llm, tmp_path) as process:
        tg.user_message(group, alice, "@livebot_test go")
        [message] = await tg.wait_for(lambda: tg.bot_messages(group), timeout=60)
        await recorded_text(tmp_path / "data", SHOWN)
        process.kill()
        await process.wait()
    release.set()
    tg.delete_message(group, message.message_id)  # someone tidied the chat while the bot was down
    async with running(tg, llm, tmp_path / "data") as bot:
        tg.user_message(group, alice, "@livebot_test still there?")  # answered after the run that goes on
        await tg.wait_for(lambda: tg.visible_texts(group) == [ANSWER, "Still here."], timeout=60)
        await bot.conversations.drain()
    assert "could not be finished" in caplog.text
    edits = len(tg.calls_to("editMessageText", group))
    async with running(tg, llm, tmp_path / "data"):  # dropped: the next start does not try again
        await tg.wait_for(lambda: tg.waiting_polls, timeout=20)
    assert len(tg.calls_to("editMessageText", group)) == edits


async def test_a_private_draft_cut_by_a_crash_arrives_as_a_message_with_the_mark_then_the_whole_answer(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    release = asyncio.Event()
    llm.script(held(release), Text(ANSWER))
    async with telegram_process(tg, llm, tmp_path) as process:
        tg.user_message(dm, alice, "go")
        await tg.wait_for(lambda: any(draft.text == SHOWN for draft in tg.drafts(dm)), timeout=60)
        await recorded_text(tmp_path / "data", SHOWN)
        process.kill()
        await process.wait()
    assert tg.visible_texts(dm) == []  # only a draft: nothing stays
    release.set()
    async with running(tg, llm, tmp_path / "data") as bot:
        assert tg.visible_texts(dm)[0] == f"{SHOWN}\n\n{RESUMED}"
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2, timeout=60)
        await bot.conversations.drain()
    assert tg.visible_texts(dm) == [f"{SHOWN}\n\n{RESUMED}", ANSWER]
    assert len(llm.requests) == 2


@pytest.mark.parametrize("mode", ["auto", "edit"], ids=["native-stream", "edited-with-stop-button"])
async def test_a_slack_thread_reply_cut_by_a_crash_is_marked_and_answered_whole(tmp_path: Path, mode: str) -> None:
    release = asyncio.Event()
    async with OpenAIDouble() as llm, SlackDouble(token=TOKEN) as slack:
        llm.script(held(release), Text(ANSWER))
        mention = app_mention("go", bot_user_id=slack.identity.bot_user_id)
        async with slack_process(slack, llm, tmp_path, STREAM_MODE=mode) as (process, url):
            assert (await post_event(url, slack.envelope(mention), SECRET)).status == 200
            await slack.wait_for(lambda: [m.text for m in slack.messages("C0GENERAL", mention["ts"])] == [SHOWN])
            await recorded_text(tmp_path / "data", SHOWN)
            process.kill()
            await process.wait()
        [message] = slack.messages("C0GENERAL", mention["ts"])
        assert message.streaming if mode == "auto" else stop_buttons(message)  # as the crash left it
        release.set()

        config = slack_settings(tmp_path, llm, slack.base_url, stream_mode=mode)
        files = FileStore(config.agent_config().files_dir)
        async with (
            open_agent_thread(config.agent_config(), default_tools(files=files)) as agent,
            serve_slack(config, agent) as bot,
        ):
            message = slack.messages("C0GENERAL", mention["ts"])[0]
            assert message.text == f"{SHOWN}\n\n{RESUMED_MARK}"
            assert not message.streaming and stop_buttons(message) == []
            thread = lambda: [m.text for m in slack.messages("C0GENERAL", mention["ts"])]  # noqa: E731
            await slack.wait_for(lambda: thread() == [message.text, ANSWER], timeout=60)
            await bot.conversations.drain()
        assert thread() == [message.text, ANSWER] and len(llm.requests) == 2


def stop_buttons(message: SlackMessage) -> list[dict[str, Any]]:
    return [e for b in message.blocks for e in b.get("elements") or [] if e.get("action_id") == STOP_ACTION]
