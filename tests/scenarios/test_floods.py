"""Refusals and limits cannot be used to flood or starve: one allowlist refusal per chat per hour, one "please
wait" note per minute, and a bounded queue whose answer still arrives."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from langchain_core.tools import tool

from bot.conversations import MAX_PENDING, TOO_FAST
from channels.errors import RateLimited
from channels.inbound import NOT_ALLOWED
from channels.ratelimit import Budget, RateLimiter, Scope
from tests.doubles.openai_server import OpenAIDouble, Text, ToolCalls
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import running

release = threading.Event()


@tool
async def gate() -> str:
    """Wait until the test lets the reply go on."""
    await asyncio.to_thread(release.wait, 60)
    return "open"


async def test_outsiders_get_one_refusal_per_chat_however_often_they_write(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice, mallory, trudy = tg.add_user("Alice", username="alice"), tg.add_user("Mallory"), tg.add_user("Trudy")
    group = tg.add_group("Team")
    llm.script(Text("Answer for Alice."))
    async with running(tg, llm, tmp_path, telegram_allowed_users=["alice"]):
        for n in range(30):
            tg.user_message(group, mallory if n % 2 else trudy, f"@livebot_test spam {n}")
        tg.user_message(group, alice, "@livebot_test question")
        await tg.wait_for(lambda: "Answer for Alice." in tg.visible_texts(group), timeout=30)
        await tg.wait_for(lambda: not tg.pending_updates)
    assert tg.visible_texts(group).count(NOT_ALLOWED) == 1
    assert len(llm.requests) == 1


async def test_a_refusal_never_takes_the_budget_an_answer_needs() -> None:
    limiter = RateLimiter(Budget(30, 1.0))
    group = (Scope((-1, "messages"), Budget(20, 60.0)),)
    for _ in range(16):  # the group's budget is spent down to its reserve (a fifth)
        async with limiter.slot(group, gate=-1, urgent=True):
            pass
    try:
        with limiter.low_priority():
            async with limiter.slot(group, gate=-1, urgent=True):  # a refusal, sent the way a final message is
                raise AssertionError("the refusal took a slot reserved for answers")
    except RateLimited:
        pass
    async with limiter.slot(group, gate=-1, urgent=True):  # the answer still has its slot, at once
        pass


async def test_a_flood_gets_one_note_and_the_queued_messages_are_answered(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(ToolCalls([("gate", {})]), Text("First answer."), Text("Answer to the queue."))
    release.clear()
    async with running(tg, llm, tmp_path, tools=[gate], user_runs_per_minute=10_000) as bot:
        tg.user_message(dm, alice, "m1")
        await tg.wait_for(lambda: llm.requests)  # the first reply runs (and waits in its tool)
        for n in range(2, 1001):
            tg.user_message(dm, alice, f"m{n}")
        await tg.wait_for(lambda: TOO_FAST in tg.visible_texts(dm), timeout=60)
        await tg.wait_for(lambda: not tg.pending_updates and bot.application.update_queue.empty(), timeout=60)
        release.set()
        await tg.wait_for(lambda: tg.visible_texts(dm)[-1:] == ["Answer to the queue."], timeout=60)
    assert tg.visible_texts(dm).count(TOO_FAST) == 1
    queued = "\n\n".join(f"m{n}" for n in range(2, 2 + MAX_PENDING))
    assert llm.requests[-1]["messages"][-1]["content"] == queued
    assert len(llm.requests) == 3  # the first turn (two model calls around the tool) and one follow-up
