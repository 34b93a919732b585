"""Approvals over three replicas behind a round-robin balancer, with a gated `web_fetch` (WEB_FETCH_REQUIRE_APPROVAL)
in groups: the request one replica shows is decided by a press on another (the tool runs once, the answer comes
whole, once); a late press on the third is told the request no longer waits, and nothing happens; a new message on
another replica denies a waiting request (the answer without the tool, then the new message's, in order); when the
replica that showed a request is killed, a press on another still decides it, and another expires one whose
deadline passed. What waits is read from Postgres; each decision is claimed once in Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from aiohttp import web

from bot.channel import ApprovalOutcome
from tests.doubles.openai_server import OpenAIDouble, Text, ToolCalls
from tests.doubles.telegram_api import TelegramDouble
from tests.doubles.telegram_world import Chat, StoredMessage
from tests.scenarios.replicas import RoundRobin, let_go, none_in_flight, replicas, webhook_replicas, webhooks_set
from tests.scenarios.test_approvals_telegram import REQUEST, buttons, the_request
from tests.scenarios.test_faults import local_site
from tests.scenarios.test_mcp import tool_answer
from tests.scenarios.test_replicas_conversations import last_question

PAGE = "Hello from the page the tool reads."


@asynccontextmanager
async def page_site() -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A page on 127.0.0.1 for `web_fetch`; yields its URL and the requests it got (each one a run of the tool)."""
    hits: list[web.Request] = []

    async def page(request: web.Request) -> web.Response:
        hits.append(request)
        return web.Response(text=f"<html><body><p>{PAGE}</p></body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", page)
    async with local_site(app) as root:
        yield f"{root}/page", hits


async def shown_and_let_go(tg: TelegramDouble, group: Chat, redis_url: str, postgres_url: str) -> StoredMessage:
    """The request once it shows its buttons and its turn is over (no replica holds the conversation, no reply is
    in flight): what happens next is up to whichever replica gets the next update."""
    request = await the_request(tg, group)
    await let_go(redis_url, group.id)
    await none_in_flight(postgres_url)
    return request


def settled(tg: TelegramDouble, group: Chat, request: StoredMessage, note: str) -> bool:
    """Whether the request says `note` under it and has lost its buttons."""
    now = tg.message(group, request.message_id)
    return REQUEST in (now.text or "") and (now.text or "").endswith(note) and now.reply_markup is None


async def test_an_approval_is_decided_once_by_whichever_replica_a_press_a_message_or_the_timeout_lands_on(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    # A group per case: each is a conversation nobody holds when its first message comes (so the replica it lands
    # on is the one that asks), and each keeps within Telegram's 20 messages a minute per group.
    alice = tg.add_user("Alice", username="alice")
    pressed, denied, killed, expired = (tg.add_group(name) for name in ("Pressed", "Denied", "Killed", "Expired"))
    balancer = RoundRobin()
    async with page_site() as (url, hits):
        fetch = [("web_fetch", {"url": url})]
        envs = webhook_replicas(
            tg, llm, tmp_path, redis_url, postgres_url, 3, url=balancer.url,
            WEB_FETCH_REQUIRE_APPROVAL="true", WEB_FETCH_ALLOW_PRIVATE="true",
        )  # fmt: skip
        async with balancer.serving(envs), replicas(tg, envs, up=lambda: webhooks_set(tg, 3)) as processes:
            # Shown by one replica, approved by a press that lands on another.
            llm.script(ToolCalls(fetch, text_before="Let me read it."), Text("It says hello."))
            tg.user_message(pressed, alice, "@livebot_test read the page")
            request = await shown_and_let_go(tg, pressed, redis_url, postgres_url)
            asker, choices = balancer.sent[-1], buttons(request)
            approve = tg.press_button(pressed, request.message_id, alice, choices["✅ Approve"])
            await tg.wait_for(lambda: approve.answered, timeout=30)
            approver = balancer.sent[-1]
            assert approver != asker
            assert approve.answer is not None and approve.answer.get("text") == ApprovalOutcome.APPROVED.value
            await tg.wait_for(lambda: tg.visible_texts(pressed)[-1:] == ["It says hello."], timeout=60)
            texts = tg.visible_texts(pressed)
            assert len(texts) == 3 and texts[0] == "Let me read it."
            assert settled(tg, pressed, request, "✅ Approved by Alice.")
            assert len(hits) == 1 and PAGE in tool_answer(llm.requests[1])  # the tool ran once, on one replica

            # A late press (Deny, from an app that still showed the buttons) lands on the third replica.
            deny = tg.press_button(pressed, request.message_id, alice, choices["❌ Deny"], stale=True)
            await tg.wait_for(lambda: deny.answered, timeout=30)
            assert balancer.sent[-1] not in (asker, approver)
            assert deny.answer is not None and deny.answer.get("text") == ApprovalOutcome.GONE.value
            assert settled(tg, pressed, request, "✅ Approved by Alice.")

            # A new message that lands on another replica than the one that asked denies the waiting request.
            llm.script(
                ToolCalls(fetch, text_before="Let me read it again."),
                Text("Without the page, then."),
                Text("It is noon."),
            )
            tg.user_message(denied, alice, "@livebot_test read it")
            request = await shown_and_let_go(tg, denied, redis_url, postgres_url)
            asker = balancer.sent[-1]
            tg.user_message(denied, alice, "@livebot_test never mind: what time is it?")
            await tg.wait_for(lambda: tg.visible_texts(denied)[-1:] == ["It is noon."], timeout=60)
            assert balancer.sent[-1] != asker
            texts = tg.visible_texts(denied)
            assert texts[0] == "Let me read it again." and texts[2:] == ["Without the page, then.", "It is noon."]
            assert settled(tg, denied, request, "❌ Denied: a new message came instead.")
            assert "they wrote a new message instead" in tool_answer(llm.requests[3])
            assert "what time is it?" in last_question(llm.requests[4])
            assert len(llm.requests) == 5 and len(hits) == 1  # and the late Deny made no model call, ran nothing

            # The replica that showed a request is killed: a press on another still decides it.
            llm.script(ToolCalls(fetch, text_before="Once more."), Text("It still says hello."))
            tg.user_message(killed, alice, "@livebot_test read it")
            request = await shown_and_let_go(tg, killed, redis_url, postgres_url)
            processes[balancer.sent[-1]].kill()
            await processes[balancer.sent[-1]].wait()
            approve = tg.press_button(killed, request.message_id, alice, buttons(request)["✅ Approve"])
            await tg.wait_for(lambda: tg.visible_texts(killed)[-1:] == ["It still says hello."], timeout=60)
            assert approve.answer is not None and approve.answer.get("text") == ApprovalOutcome.APPROVED.value
            assert settled(tg, killed, request, "✅ Approved by Alice.") and len(hits) == 2

            # ... and one whose asker was killed is expired by the replica left when its deadline passes.
            llm.script(ToolCalls(fetch, text_before="And again."), Text("Nobody approved, so I did not read it."))
            tg.user_message(expired, alice, "@livebot_test read it")
            request = await shown_and_let_go(tg, expired, redis_url, postgres_url)
            processes[balancer.sent[-1]].kill()
            await processes[balancer.sent[-1]].wait()
            async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
                await db.execute("UPDATE livebot_approvals SET deadline = 0 WHERE decided IS NULL")  # time passed
            last = "Nobody approved, so I did not read it."
            await tg.wait_for(lambda: tg.visible_texts(expired)[-1:] == [last], timeout=60)
            assert settled(tg, expired, request, "⌛ No answer within 10 minutes: denied.") and len(hits) == 2
            assert "no one approved it within 10 minutes" in tool_answer(llm.requests[-1])
            assert sum(process.returncode is None for process in processes) == 1
