"""Three replicas behind a round-robin balancer: a conversation's messages are answered one at a time and in order
whichever replica they land on; a Stop pressed on another replica stops the reply; a replica stopped with SIGTERM
during a burst over six chats loses nothing (its replies finish, what waits is answered by the others); a replica
killed mid-answer has its reply resumed by another (marked), then its queued follow-up answered; a replica stopped
with SIGTERM finishes the reply it writes and hands the waiting follow-up to another."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from bot.channel import StopOutcome
from bot.runtime import RESUMED_MARK, STOPPED_MARK
from tests.doubles.openai_server import Held, OpenAIDouble, Text, image_parts, text_parts
from tests.doubles.telegram_api import TelegramDouble
from tests.media.samples import jpeg
from tests.scenarios.replicas import (
    RoundRobin,
    recorded_in_postgres,
    replicas,
    wait_queued,
    wait_shutting_down,
    webhook_replicas,
    webhooks_set,
)

SHOWN = "Streaming the first answer"
RESUMED = RESUMED_MARK.replace("_", "")  # as Telegram shows it: the italics become an entity
STOPPED = STOPPED_MARK.replace("_", "")


def last_question(request: dict[str, object]) -> str:
    """What the user said last in a model request."""
    messages = request["messages"]
    assert isinstance(messages, list)
    return str([m for m in messages if m["role"] == "user"][-1]["content"])


async def test_three_replicas_answer_in_order_stop_from_any_and_lose_nothing_to_a_sigterm_during_a_burst(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    release, hold = asyncio.Event(), asyncio.Event()
    llm.script(
        Held(f"{SHOWN}, finished.", after_chars=len(SHOWN), release=release),
        Text("Both follow-ups, answered together."),
        Held("Stop me while I write this", after_chars=10, release=hold),
    )
    balancer = RoundRobin()
    envs = webhook_replicas(tg, llm, tmp_path, redis_url, postgres_url, 3, url=balancer.url, SHUTDOWN_GRACE="120")
    async with balancer.serving(envs), replicas(tg, envs, up=lambda: webhooks_set(tg, 3)) as processes:
        tg.user_message(group, alice, "@livebot_test one")
        await tg.wait_for(lambda: tg.visible_texts(group) == [SHOWN], timeout=60)
        tg.user_message(group, alice, "@livebot_test two")  # to the next replica: it queues, it does not answer
        await wait_queued(redis_url, group.id, 1)
        tg.user_file(group, alice, photo=jpeg(800, 600), caption="@livebot_test three")  # to the third, with a photo
        await wait_queued(redis_url, group.id, 2)
        assert len(balancer.sent) == 3 and len(set(balancer.sent)) == 3  # one message per replica
        assert len(llm.requests) == 1  # one reply at a time
        release.set()
        both = [f"{SHOWN}, finished.", "Both follow-ups, answered together."]
        await tg.wait_for(lambda: tg.visible_texts(group) == both, timeout=60)
        merged = llm.requests[1]
        assert [t for t in text_parts(merged) if "two" in t][-1].endswith("two\n\nthree")  # in the order sent
        assert len(image_parts(merged)) == 1  # the photo another replica took in was fetched by the holder

        tg.user_message(group, alice, "@livebot_test four")
        await tg.wait_for(lambda: len(tg.bot_messages(group)) == 3, timeout=60)
        message = tg.bot_messages(group)[2]
        writer = balancer.sent[-1]
        press = tg.press_button(group, message.message_id, alice, "stop")  # lands on the next replica
        await tg.wait_for(lambda: press.answered, timeout=30)
        assert balancer.sent[-1] != writer
        assert press.answer is not None and press.answer.get("text") == StopOutcome.STOPPED.value
        await tg.wait_for(lambda: tg.bot_messages(group)[2].reply_markup is None, timeout=30)
        assert STOPPED in tg.visible_texts(group)[2]
        hold.set()

        await a_replica_stopped_during_a_burst_loses_nothing(tg, llm, balancer, processes, envs, redis_url)


async def test_a_replica_killed_or_stopped_hands_its_conversations_over(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    release = asyncio.Event()
    llm.script(
        Held(f"{SHOWN} when the power goes out.", after_chars=len(SHOWN), release=release),
        Text("The whole answer, resumed from the checkpoint by another replica."),
        Text("The follow-up, answered after it."),
    )
    balancer = RoundRobin()
    envs = webhook_replicas(tg, llm, tmp_path, redis_url, postgres_url, 3, url=balancer.url, SHUTDOWN_GRACE="120")
    async with balancer.serving(envs), replicas(tg, envs, up=lambda: webhooks_set(tg, 3)) as processes:
        tg.user_message(group, alice, "@livebot_test go")
        await tg.wait_for(lambda: tg.visible_texts(group) == [SHOWN], timeout=60)
        writer = processes[balancer.sent[-1]]
        await recorded_in_postgres(postgres_url, SHOWN)
        tg.user_message(group, alice, "@livebot_test and then?")
        await wait_queued(redis_url, group.id, 1)
        writer.kill()  # SIGKILL mid-answer, a follow-up waiting
        await writer.wait()
        finished = [
            f"{SHOWN}\n\n{RESUMED}",
            "The whole answer, resumed from the checkpoint by another replica.",
            "The follow-up, answered after it.",
        ]
        await tg.wait_for(lambda: tg.visible_texts(group) == finished, timeout=60)  # after the lease expired
        assert tg.bot_messages(group)[0].reply_markup is None
        release.set()

        # SIGTERM to the replica writing a reply, a follow-up waiting: the reply finishes there (grace), and the
        # follow-up is answered by the other replica.
        finishing = asyncio.Event()
        llm.script(Held("Finishing before I go, as promised.", after_chars=9, release=finishing), Text("Handed over."))
        tg.user_message(group, alice, "@livebot_test one more")
        await tg.wait_for(lambda: len(tg.bot_messages(group)) == 4, timeout=60)
        stopping = processes[balancer.sent[-1]]
        tg.user_message(group, alice, "@livebot_test and the last")
        await wait_queued(redis_url, group.id, 1)
        stopping.send_signal(signal.SIGTERM)
        finishing.set()
        assert await asyncio.wait_for(stopping.wait(), 180) == 0
        done = [*finished, "Finishing before I go, as promised.", "Handed over."]
        await tg.wait_for(lambda: tg.visible_texts(group) == done, timeout=60)


async def a_replica_stopped_during_a_burst_loses_nothing(
    tg: TelegramDouble,
    llm: OpenAIDouble,
    balancer: RoundRobin,
    processes: list[asyncio.subprocess.Process],
    envs: list[tuple[dict[str, str], Path]],
    redis_url: str,
) -> None:
    """Six private chats (drafts) over three replicas: each replica writes two replies, held mid-answer, while a
    follow-up of each chat waits on another replica; one replica gets SIGTERM, a third message of each chat comes
    while it shuts down, then the replies go on. Every answer arrives whole, once, in its own chat."""
    users = [tg.add_user(f"User{i}", username=f"user{i}") for i in range(6)]
    chats = [tg.private_chat(user) for user in users]
    base, going_on = len(llm.requests), asyncio.Event()
    answers = [f"Answer {n}, written from its first word to its last." for n in range(30)]
    llm.script(*[Held(answers[n], after_chars=9, release=going_on) for n in range(6)])
    llm.script(*[Text(answers[n], delay=0.01) for n in range(6, 30)])
    sent = len(balancer.sent)
    for i, (chat, user) in enumerate(zip(chats, users, strict=True)):
        tg.user_message(chat, user, f"chat{i} first")
    await tg.wait_for(lambda: len(llm.requests) == base + 6, timeout=60)  # six replies stream, two per replica
    writers = balancer.sent[sent:]
    assert sorted(writers) == [0, 0, 1, 1, 2, 2]
    for i in [*range(1, 6), 0]:  # each follow-up lands on a replica that does not hold its chat
        tg.user_message(chats[i], users[i], f"chat{i} second")
    for chat in chats:
        await wait_queued(redis_url, chat.id, 1)
    stopping = processes[writers[0]]
    stopping.send_signal(signal.SIGTERM)
    await wait_shutting_down(envs[writers[0]][0])
    for i, (chat, user) in enumerate(zip(chats, users, strict=True)):
        tg.user_message(chat, user, f"chat{i} third")
    going_on.set()
    assert await asyncio.wait_for(stopping.wait(), 180) == 0

    def turns(i: int) -> list[int]:  # the model requests that answer chat i, in order
        return [n for n, r in enumerate(llm.requests[base:]) if last_question(r).startswith(f"chat{i} ")]

    def asked(i: int) -> list[str]:
        return [w for n in turns(i) for w in last_question(llm.requests[base + n]).split("\n\n")]

    def settled() -> bool:
        return all(
            sorted(asked(i)) == sorted(f"chat{i} {w}" for w in ("first", "second", "third"))
            and len(tg.visible_texts(chat)) == len(turns(i))
            for i, chat in enumerate(chats)
        )

    await tg.wait_for(settled, timeout=120)
    for i, chat in enumerate(chats):
        assert tg.visible_texts(chat) == [answers[n] for n in turns(i)]  # whole, once, in order
        assert not tg.active_drafts(chat)
