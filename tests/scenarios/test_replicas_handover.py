"""Issue 16 item 7, graceful rolling deploys: a replica stopped with SIGTERM while it writes replies that outlast
SHUTDOWN_GRACE hands them over and exits 0; another replica (or, when it was the last, the next one to start) goes
on with each from the conversation memory and then answers the follow-up waiting behind it. Only a message left
open mid-answer is marked; a private chat's draft and a reply paused while a tool runs go on as if nothing
happened."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from bot.runtime import HANDED_OVER_MARK
from tests.doubles.openai_server import Held, OpenAIDouble, Text, ToolCalls
from tests.doubles.search_api import SearchDouble
from tests.doubles.telegram_api import Chat, TelegramDouble
from tests.scenarios.replicas import RoundRobin, replicas, start, wait_queued, webhook_replicas, webhooks_set
from tests.scenarios.test_metrics import figure, scrape
from tests.scenarios.test_replicas_conversations import last_question

HANDED = HANDED_OVER_MARK.replace("_", "")  # as Telegram shows it: the italics become an entity
SHOWN = "Writing a long answer"
DRAFTED = "Drafting a long answer"
BEFORE_TOOL = "Let me look that up."


def settled(tg: TelegramDouble, chat: Chat, texts: list[str]) -> bool:
    """Whether `chat` shows `texts` from the bot, each final: no Stop button left (the last edit takes it away)."""
    return tg.visible_texts(chat) == texts and all(m.reply_markup is None for m in tg.bot_messages(chat))


async def test_a_replica_stopped_mid_answer_hands_its_replies_over_and_they_go_on_elsewhere(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group, lab, dm = tg.add_group("Team"), tg.add_group("Lab"), tg.private_chat(alice)
    never = asyncio.Event()  # the stopping replica's model streams are still going when its grace ends
    async with SearchDouble(results=[("Power", "https://example.com/power", "about cuts")]) as search:
        search.hold = asyncio.Event()  # the search service is slow: the tool runs when the grace ends
        balancer = RoundRobin()
        envs = webhook_replicas(
            tg, llm, tmp_path, redis_url, postgres_url, 2, url=balancer.url,
            SHUTDOWN_GRACE="1", SEARXNG_URL=search.searxng_url,
        )  # fmt: skip
        async with balancer.serving(envs), replicas(tg, envs, up=lambda: webhooks_set(tg, 2)) as processes:
            # A group (edits): the message open mid-answer keeps its text with the mark, the whole answer follows.
            llm.script(
                Held(f"{SHOWN} that outlasts the grace.", after_chars=len(SHOWN), release=never),
                Text("The whole answer, written by the other replica."),
                Text("The follow-up, answered after it."),
            )
            tg.user_message(group, alice, "@livebot_test go")
            await tg.wait_for(lambda: tg.visible_texts(group) == [SHOWN], timeout=60)
            writer = balancer.sent[-1]
            tg.user_message(group, alice, "@livebot_test and then?")  # to the other replica: it waits in Redis
            await wait_queued(redis_url, group.id, 1)
            assert balancer.sent[-1] != writer
            processes[writer].send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(processes[writer].wait(), 60) == 0
            answered = [
                f"{SHOWN}\n\n{HANDED}",
                "The whole answer, written by the other replica.",
                "The follow-up, answered after it.",
            ]
            await tg.wait_for(lambda: settled(tg, group, answered), timeout=60)  # no Stop button left behind
            assert last_question(llm.requests[1]) == last_question(llm.requests[0])  # the stored question, again
            assert "and then?" in last_question(llm.requests[2])
            taker = envs[1 - writer][0]
            figures = await scrape(int(taker["METRICS_PORT"]))
            assert figure(figures, "livebot_leases_taken_over_total", lease="conversation") == 1

            # The last replica, writing a private chat's draft and waiting for a tool in another group, a
            # follow-up behind each: nobody is there to take them when it stops; the next replica to start does.
            last = 1 - writer
            llm.script(
                Held(f"{DRAFTED} that outlasts the grace.", after_chars=len(DRAFTED), release=never),
                ToolCalls([("web_search", {"query": "power cuts"})], text_before=BEFORE_TOOL),
                Text("The whole private answer."),
                Text("The private follow-up, answered after it."),
                Text("What the search found."),
                Text("The lab's follow-up, answered after it."),
            )
            tg.user_message(dm, alice, "tell me everything")
            await tg.wait_for(lambda: [d.text for d in tg.active_drafts(dm)] == [DRAFTED], timeout=60)
            tg.user_message(dm, alice, "and more")
            await wait_queued(redis_url, dm.id, 1)
            tg.user_message(lab, alice, "@livebot_test search it")
            await tg.wait_for(lambda: search.requests, timeout=60)
            tg.user_message(lab, alice, "@livebot_test and then?")
            await wait_queued(redis_url, lab.id, 1)
            assert set(balancer.sent[-4:]) == {last}
            processes[last].send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(processes[last].wait(), 60) == 0
            assert tg.visible_texts(dm) == [] and tg.visible_texts(lab) == [BEFORE_TOOL]  # nothing marked

            restarted = await start(*envs[writer])
            try:
                private = ["The whole private answer.", "The private follow-up, answered after it."]
                await tg.wait_for(lambda: tg.visible_texts(dm) == private, timeout=120)
                assert not tg.active_drafts(dm)  # the handed-over draft was replaced, not left showing
                search.hold.set()
                found = [BEFORE_TOOL, "What the search found.", "The lab's follow-up, answered after it."]
                await tg.wait_for(lambda: settled(tg, lab, found), timeout=60)
                assert len(search.requests) == 2  # the tool cut short ran again
                assert llm.requests[-2]["messages"][-1]["role"] == "tool"  # the answer after it, not the step again
                assert llm.pending == 0
            finally:
                restarted.kill()
                await restarted.wait()
                never.set()
