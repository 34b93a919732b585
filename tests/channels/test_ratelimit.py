"""The shared rate budget: urgent calls wait, the rest are refused early, and retry_after is a hard gate."""

from __future__ import annotations

import asyncio

import pytest

from channels.errors import RateLimited
from channels.ratelimit import Budget, RateLimiter
from tests.fakes import FakeClock, settle

PRIVATE = Budget(limit=3, period=3.0)


async def call(limiter: RateLimiter, chat: object, budget: Budget | None, **options: object) -> None:
    """One platform call that completes at once."""
    async with limiter.slot(chat, budget, **options):  # type: ignore[arg-type]
        pass


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_urgent_calls_wait_for_room_in_the_chat_budget(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(30, 1.0), clock=clock)
    times: list[float] = []

    async def send() -> None:
        await call(limiter, "chat", PRIVATE, urgent=True)
        times.append(clock.now())

    tasks = [asyncio.create_task(send()) for _ in range(6)]
    await clock.advance(10)
    await asyncio.gather(*tasks)
    assert times == [0.0, 0.0, 0.0, 3.0, 3.0, 3.0]


async def test_intermediate_calls_leave_a_reserve_and_are_refused_not_delayed(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(30, 1.0), clock=clock)
    await call(limiter, "chat", PRIVATE, urgent=False)
    await call(limiter, "chat", PRIVATE, urgent=False)
    with pytest.raises(RateLimited) as refused:
        await call(limiter, "chat", PRIVATE, urgent=False)  # the last slot is kept for a final message
    assert refused.value.retry_after == pytest.approx(3.0)
    await call(limiter, "chat", PRIVATE, urgent=True)  # ...which gets it at once
    assert clock.now() == 0.0


async def test_retry_after_gates_every_call_to_that_chat_only(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(30, 1.0), clock=clock)
    for _ in range(3):
        await call(limiter, "slow", PRIVATE, urgent=True)  # the chat used its whole budget...
    limiter.penalize("slow", 7)  # ...so the 429 is about this chat
    with pytest.raises(RateLimited) as refused:
        await call(limiter, "slow", PRIVATE, urgent=False)
    assert refused.value.retry_after == pytest.approx(7)
    await call(limiter, "other", PRIVATE, urgent=False)  # other chats are not held up
    await clock.advance(6.9)
    with pytest.raises(RateLimited) as final:  # even a final message: the handler decides how long to wait
        await call(limiter, "slow", PRIVATE, urgent=True)
    assert final.value.retry_after == pytest.approx(0.1)
    await clock.advance(0.2)
    await call(limiter, "slow", PRIVATE, urgent=True)


async def test_bot_budget_is_shared_by_all_chats_and_urgent_calls_go_first(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(5, 1.0), clock=clock)
    for chat in range(5):
        await call(limiter, chat, PRIVATE, urgent=True)
    final = asyncio.create_task(call(limiter, 99, PRIVATE, urgent=True))
    await settle()
    assert not final.done()  # the bot budget is spent
    await clock.advance(0.5)
    with pytest.raises(RateLimited):
        await call(limiter, 98, PRIVATE, urgent=False)  # an edit yields while a final waits
    await clock.advance(0.6)
    assert final.done()


async def test_lanes_have_their_own_budget_but_share_the_gate(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(30, 1.0), clock=clock)
    drafts = Budget(5, 1.0)
    for _ in range(3):
        await call(limiter, "chat", PRIVATE, urgent=True)
    await call(limiter, "chat", drafts, lane="drafts", urgent=False)  # messages are spent, drafts are not
    limiter.penalize("chat", 2)
    with pytest.raises(RateLimited):
        await call(limiter, "chat", drafts, lane="drafts", urgent=False)


async def test_quiet_chats_are_forgotten(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(10_000, 1.0), clock=clock)
    for chat in range(3000):
        await call(limiter, chat, PRIVATE, urgent=True)
        if chat % 1000 == 999:
            await clock.advance(5)
    assert len(limiter._windows) < 2100


async def test_a_429_the_chat_budget_cannot_explain_holds_every_chat(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(30, 1.0), clock=clock)
    await call(limiter, "quiet", PRIVATE, urgent=True)  # one call: the chat's own pace is fine
    limiter.penalize("quiet", 2)  # so the bot as a whole went too fast
    with pytest.raises(RateLimited):
        await call(limiter, "elsewhere", PRIVATE, urgent=True)
    await clock.advance(2.1)
    for _ in range(3):
        await call(limiter, "busy", PRIVATE, urgent=True)  # a chat at its own limit...
    limiter.penalize("busy", 5)  # ...explains its own 429: other chats go on
    await call(limiter, "elsewhere", PRIVATE, urgent=True)


async def test_a_call_in_flight_holds_its_slot_until_a_period_after_it_completes(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(1, 1.0), clock=clock)
    slow = limiter.slot("a", None, urgent=True)
    await slow.__aenter__()  # sent at t=0, its answer not back yet
    waiting = asyncio.create_task(call(limiter, "b", None, urgent=True))
    await clock.advance(5)
    assert not waiting.done()  # the call in flight holds the only slot
    waiting.cancel()
    await slow.__aexit__(None, None, None)
    with pytest.raises(RateLimited):  # it may have reached the platform just now: its slot counts from here
        await call(limiter, "c", None, urgent=False)
    third = asyncio.create_task(call(limiter, "c", None, urgent=True))
    await clock.advance(0.9)
    assert not third.done()
    await clock.advance(0.2)
    assert third.done()


async def test_an_urgent_call_that_waited_is_not_overtaken_by_one_that_just_came(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(1, 1.0), clock=clock)
    order: list[str] = []

    async def send(chat: str) -> None:
        await call(limiter, chat, PRIVATE, urgent=True)
        order.append(chat)

    await send("first")  # the bot budget is used until t=1
    waiting = asyncio.create_task(send("waiting"))
    await settle()  # it waits for t=1
    clock.t = 1.0  # room opens, and before the waiter wakes...
    newcomer = asyncio.create_task(send("newcomer"))  # ...another reply's call comes
    await settle()
    await clock.advance(5)
    await asyncio.gather(waiting, newcomer)
    assert order == ["first", "waiting", "newcomer"]


async def test_a_429_while_an_urgent_call_waits_stops_it_at_the_gate(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(1, 1.0), clock=clock)
    await call(limiter, "a", PRIVATE, urgent=True)  # the bot budget is used for this second
    waiting = asyncio.create_task(call(limiter, "b", PRIVATE, urgent=True))
    await settle()
    limiter.penalize("b", 5)  # another call to "b" (e.g. from a second process) was told to wait
    await clock.advance(1)
    with pytest.raises(RateLimited) as refused:
        await waiting
    assert refused.value.retry_after == pytest.approx(4)  # nothing goes to "b" inside its retry_after


async def test_intermediate_calls_come_back_when_the_waiting_urgent_calls_have_likely_gone(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(5, 1.0), clock=clock)
    for n in range(5):
        await call(limiter, f"busy{n}", None, urgent=True)  # the bot budget is used for this second
    waiting = [asyncio.create_task(call(limiter, f"final{n}", None, urgent=True)) for n in range(10)]
    await settle()
    with pytest.raises(RateLimited) as refused:
        await call(limiter, "chat", PRIVATE, urgent=False)
    assert refused.value.retry_after == pytest.approx(2.0)  # ten urgent calls at five a second: not before then
    await clock.advance(5)
    await asyncio.gather(*waiting)
