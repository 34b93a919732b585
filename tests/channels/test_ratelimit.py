"""The shared rate budget: urgent calls wait, the rest are refused early, and retry_after is a hard gate."""

from __future__ import annotations

import asyncio

import pytest

from channels.errors import RateLimited
from channels.ratelimit import Budget, RateLimiter
from tests.fakes import FakeClock, settle

PRIVATE = Budget(limit=3, period=3.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_urgent_calls_wait_for_room_in_the_chat_budget(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(30, 1.0), clock=clock)
    times: list[float] = []

    async def send() -> None:
        await limiter.acquire("chat", PRIVATE, urgent=True)
        times.append(clock.now())

    tasks = [asyncio.create_task(send()) for _ in range(6)]
    await clock.advance(10)
    await asyncio.gather(*tasks)
    assert times == [0.0, 0.0, 0.0, 3.0, 3.0, 3.0]


async def test_intermediate_calls_leave_a_reserve_and_are_refused_not_delayed(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(30, 1.0), clock=clock)
    await limiter.acquire("chat", PRIVATE, urgent=False)
    await limiter.acquire("chat", PRIVATE, urgent=False)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire("chat", PRIVATE, urgent=False)  # the last slot is kept for a final message
    assert refused.value.retry_after == pytest.approx(3.0)
    await limiter.acquire("chat", PRIVATE, urgent=True)  # ...which gets it at once
    assert clock.now() == 0.0


async def test_retry_after_gates_every_call_to_that_chat_only(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(30, 1.0), clock=clock)
    limiter.penalize("slow", 7)
    with pytest.raises(RateLimited) as refused:
        await limiter.acquire("slow", PRIVATE, urgent=False)
    assert refused.value.retry_after == pytest.approx(7)
    await limiter.acquire("other", PRIVATE, urgent=False)  # other chats are not held up
    await clock.advance(6.9)
    with pytest.raises(RateLimited) as final:  # even a final message: the handler decides how long to wait
        await limiter.acquire("slow", PRIVATE, urgent=True)
    assert final.value.retry_after == pytest.approx(0.1)
    await clock.advance(0.2)
    await limiter.acquire("slow", PRIVATE, urgent=True)


async def test_bot_budget_is_shared_by_all_chats_and_urgent_calls_go_first(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(5, 1.0), clock=clock)
    for chat in range(5):
        await limiter.acquire(chat, PRIVATE, urgent=True)
    final = asyncio.create_task(limiter.acquire(99, PRIVATE, urgent=True))
    await settle()
    assert not final.done()  # the bot budget is spent
    await clock.advance(0.5)
    with pytest.raises(RateLimited):
        await limiter.acquire(98, PRIVATE, urgent=False)  # an edit yields while a final waits
    await clock.advance(0.6)
    assert final.done()


async def test_lanes_have_their_own_budget_but_share_the_gate(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(30, 1.0), clock=clock)
    drafts = Budget(5, 1.0)
    for _ in range(3):
        await limiter.acquire("chat", PRIVATE, urgent=True)
    await limiter.acquire("chat", drafts, lane="drafts", urgent=False)  # messages are spent, drafts are not
    limiter.penalize("chat", 2)
    with pytest.raises(RateLimited):
        await limiter.acquire("chat", drafts, lane="drafts", urgent=False)


async def test_quiet_chats_are_forgotten(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(10_000, 1.0), clock=clock)
    for chat in range(3000):
        await limiter.acquire(chat, PRIVATE, urgent=True)
        if chat % 1000 == 999:
            await clock.advance(5)
    assert len(limiter._windows) < 2100
