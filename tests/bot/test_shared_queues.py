"""The Redis protocol of replica mode's conversations (`bot.shared_queues`), against a real Redis: one holder at a
time, nothing stranded between a message and a holder letting go, the fencing check that keeps a replica whose
lease expired from touching the queue another replica now answers, and decisions on approvals: claimed once,
queued first, never lost to a holder that peeked before they came."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as redis

from bot.shared_queues import Entry, SharedQueues

KEY = "telegram:42"


def entry(text: str, sent: float = 0.0) -> Entry:
    return Entry(KEY, text, "7", "Alice", {"chat_id": 42}, uuid.uuid4().hex, sent=sent)


def pair(client: redis.Redis, ttl: float = 5.0) -> tuple[SharedQueues, SharedQueues]:
    prefix = f"livebot:test:{uuid.uuid4().hex}"  # a bot of the test's own
    return SharedQueues(client, prefix, "a", ttl=ttl), SharedQueues(client, prefix, "b", ttl=ttl)


async def test_one_holder_drains_and_a_message_sent_while_it_lets_go_is_not_stranded(client: redis.Redis) -> None:
    a, b = pair(client)
    assert await a.enqueue(entry("one"), 20) == "free"
    lease = await a.acquire(KEY)
    assert lease is not None and await b.acquire(KEY) is None
    assert await b.enqueue(entry("two"), 20) == "held"  # b leaves it to a
    shown = await a.peek(KEY, 20)
    assert [e.text for e in shown] == ["one", "two"]
    assert await a.pop(KEY, lease, shown)
    assert await b.enqueue(entry("three"), 20) == "held"
    assert await a.release(KEY, lease) is False  # a message came: the holder goes on, it does not let go
    assert await a.pop(KEY, lease, None) and await a.release(KEY, lease) is True
    assert await b.enqueue(entry("four"), 20) == "free"  # nobody holds it now: b takes it
    assert await b.acquire(KEY) is not None


async def test_a_full_queue_turns_a_message_away(client: redis.Redis) -> None:
    a, _ = pair(client)
    for i in range(3):
        await a.enqueue(entry(str(i)), 3)
    assert await a.enqueue(entry("too many"), 3) == "full"
    assert [e.text for e in await a.peek(KEY, 10)] == ["0", "1", "2"]


async def test_messages_two_replicas_take_in_at_once_are_queued_in_the_order_the_platform_sent_them(
    client: redis.Redis,
) -> None:
    a, b = pair(client)
    await a.enqueue(entry("one", 101), 20)
    await a.enqueue(entry("three", 103), 20)  # b is a moment late with the message sent before it
    await b.enqueue(entry("two", 102), 20)
    await b.enqueue(entry("four", 104), 20)
    assert [e.text for e in await a.peek(KEY, 20)] == ["one", "two", "three", "four"]
    lease = await a.acquire(KEY)
    assert lease is not None
    shown = await a.peek(KEY, 2)  # the holder forms a turn of the first two...
    await b.enqueue(entry("first of all", 100), 20)  # ...as one sent before them all comes in late
    assert await a.pop(KEY, lease, shown) is False  # it takes nothing: what was sent first is answered first
    shown = await a.peek(KEY, 3)
    assert [e.text for e in shown] == ["first of all", "one", "two"]
    await b.enqueue(entry("two and a half", 102.5), 20)  # one sent among them: the holder leaves it for later
    assert await a.pop(KEY, lease, shown)  # it takes exactly what it used
    assert [e.text for e in await a.peek(KEY, 20)] == ["two and a half", "three", "four"]


async def test_a_users_runs_per_minute_are_counted_over_every_replica(client: redis.Redis) -> None:
    a, b = pair(client)
    assert await a.may_run("7", 3) and await b.may_run("7", 3) and await a.may_run("7", 3)
    assert not await b.may_run("7", 3) and not await a.may_run("7", 3)  # the fourth, wherever it lands
    assert await b.may_run("8", 3)  # another user has a budget of their own


async def test_a_replica_whose_lease_expired_can_no_longer_touch_the_queue(client: redis.Redis) -> None:
    a, b = pair(client, ttl=0.3)
    await a.enqueue(entry("one"), 20)
    stale = await a.acquire(KEY)
    assert stale is not None
    await a.enqueue(entry("two"), 20)
    async with asyncio.timeout(10):  # a stops renewing (it stalled, or died): its lease expires
        while True:
            if KEY in await b.expired():
                break
            await asyncio.sleep(0.05)
    fresh = await b.acquire(KEY)
    assert fresh is not None and fresh != stale
    assert not await a.pop(KEY, stale, None)  # fenced: the old value no longer opens anything
    assert await a.release(KEY, stale) is None
    assert await a.renew({KEY: stale}) == [KEY]  # its heartbeat learns it lost the conversation
    assert await b.renew({KEY: fresh}) == []
    assert [e.text for e in await b.peek(KEY, 20)] == ["one", "two"]  # nothing was taken by the stale holder


async def test_a_stop_reaches_the_replica_that_holds_the_reply(client: redis.Redis) -> None:
    a, b = pair(client)
    await a.enqueue(entry("one"), 20)
    lease = await a.acquire(KEY)
    assert lease is not None
    await a.running(KEY, "7")
    assert await b.holder(KEY) == ("a", "7")  # who writes it, and who may stop it
    stops = a.stops()
    heard = asyncio.ensure_future(anext(stops))
    async with asyncio.timeout(10):
        while not heard.done():  # (the subscription is made by the first read: publish until it hears)
            await b.send_stop("a", KEY)
            await asyncio.wait([heard], timeout=0.1)
    assert heard.result() == KEY
    await stops.aclose()
    assert await a.pop(KEY, lease, None) and await a.release(KEY, lease)
    assert await b.holder(KEY) is None


def decision(approval: str) -> Entry:
    return Entry(KEY, "", "7", None, {"chat_id": 42}, uuid.uuid4().hex, decided={"id": approval})


async def test_a_decision_is_claimed_once_and_goes_first_in_the_queue(client: redis.Redis) -> None:
    a, b = pair(client)
    await a.enqueue(entry("one", 101), 20)
    lease = await a.acquire(KEY)
    assert lease is not None
    first, second = decision("ap1"), decision("ap1")
    assert await b.decide(first, "ap1") == "held"  # a holds the conversation: a runs it
    assert await a.decide(second, "ap1") == "taken"  # another decision on the same approval: not queued
    await b.enqueue(entry("zero", 100), 20)  # a message sent earlier, late: before "one", never before a decision
    queued = await a.peek(KEY, 20)
    assert queued[0].id == first.id and queued[0].decided == {"id": "ap1"}  # before the messages that wait
    assert [e.text for e in queued[1:]] == ["zero", "one"]
    assert await b.decide(decision("ap2"), "ap2") == "held"  # another approval's decision is its own


async def test_the_holder_takes_what_it_peeked_only_while_no_decision_came_before_it(client: redis.Redis) -> None:
    a, b = pair(client)
    await a.enqueue(entry("one"), 20)
    lease = await a.acquire(KEY)
    assert lease is not None
    peeked = await a.peek(KEY, 20)
    decided = decision("ap1")
    assert await b.decide(decided, "ap1") == "held"  # between the holder's peek and its pop
    assert await a.pop(KEY, lease, peeked) is False  # it looks again
    again = await a.peek(KEY, 20)
    assert [e.id for e in again] == [decided.id, peeked[0].id]  # nothing was taken
    assert await a.pop(KEY, lease, again[:1]) is True
    assert [e.text for e in await a.peek(KEY, 20)] == ["one"]
    assert await b.pop(KEY, "b|0", peeked) is None  # (not the holder: fenced, as before)


async def test_a_decision_where_nobody_holds_the_conversation_is_taken_by_the_one_who_decided(
    client: redis.Redis,
) -> None:
    a, b = pair(client, ttl=0.3)
    assert await a.decide(decision("ap1"), "ap1") == "free"  # nobody holds it: the decider takes it
    lease = await a.acquire(KEY)
    assert lease is not None  # then it dies, holding it, with the decision queued
    async with asyncio.timeout(10):
        while True:
            if KEY in await b.expired():
                break
            await asyncio.sleep(0.05)
    assert await b.decide(decision("ap2"), "ap2") == "orphaned"  # the decider takes it over
    taken = await b.acquire(KEY)
    assert taken is not None
    assert [e.decided for e in await b.peek(KEY, 20)] == [{"id": "ap2"}, {"id": "ap1"}]  # both are still there


def test_an_entry_carries_its_decision_and_reads_one_queued_without() -> None:
    decided = decision("ap1")
    assert Entry.decode(decided.encode()) == decided
    plain = entry("one")
    old = plain.encode().replace(', "d": null', "")  # as an earlier version queued it
    assert Entry.decode(old) == plain


async def test_a_conversation_handed_over_with_a_reply_unfinished_is_due_at_once_even_with_nothing_queued(
    client: redis.Redis,
) -> None:
    a, b = pair(client)
    await a.enqueue(entry("one"), 20)
    lease = await a.acquire(KEY)
    assert lease is not None and await a.pop(KEY, lease, None)
    assert await a.release(KEY, lease, hand_over=True)  # shutting down, its reply over, nothing waiting
    assert KEY not in await b.expired()  # nothing for another replica to do
    await a.enqueue(entry("two"), 20)
    lease = await a.acquire(KEY)
    assert lease is not None and await a.pop(KEY, lease, None)
    assert await a.release(KEY, lease, hand_over=True, unfinished=True)  # its reply handed over, nothing waiting
    assert KEY in await b.expired()  # due at once, not after a lease's time: another replica finishes the reply
    assert await b.acquire(KEY) is not None
