"""Replicas of one bot share its rate budgets and retry_after gates through a real Redis: two `RateLimiter`s with
their own Redis connections stand for two processes."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from channels.errors import RateLimited
from channels.ratelimit import Budget, RateLimiter, Scope
from channels.shared_budget import SharedBudgets

CHAT = Scope(42, Budget(5, 1.0))
BOT = Budget(100, 1.0)


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    """A bot token of the test's own (so tests sharing the server never meet), and the server's URL."""
    if not os.environ.get("LIVEBOT_TEST_REDIS_URL"):
        pytest.skip("LIVEBOT_TEST_REDIS_URL is not set (.ci/run starts Redis and sets it)")
    yield uuid.uuid4().hex


@pytest.fixture
async def replicas(namespace: str) -> AsyncIterator[tuple[RateLimiter, RateLimiter]]:
    url = os.environ["LIVEBOT_TEST_REDIS_URL"]
    async with redis.Redis.from_url(url) as one, redis.Redis.from_url(url) as two:
        a, b = RateLimiter(BOT), RateLimiter(BOT)
        a.share(SharedBudgets(one, namespace))
        b.share(SharedBudgets(two, namespace))
        yield a, b


async def call(limiter: RateLimiter, *, urgent: bool, started: list[float] | None = None) -> bool:
    """One call in a slot; whether it went (a non-urgent call refused for want of room did not)."""
    try:
        async with limiter.slot([CHAT], gate=CHAT.key, urgent=urgent):
            if started is not None:
                started.append(asyncio.get_running_loop().time())
            return True
    except RateLimited:
        return False


async def test_two_replicas_together_stay_within_one_budget(replicas: tuple[RateLimiter, RateLimiter]) -> None:
    a, b = replicas
    went = await asyncio.gather(*(call(limiter, urgent=False) for _ in range(10) for limiter in (a, b)))
    # 5 a second, a fifth kept for first and final messages: 4 intermediate calls in all, not 4 per replica
    assert sum(went) == 4


async def test_urgent_calls_from_both_replicas_all_go_and_keep_the_pace(
    replicas: tuple[RateLimiter, RateLimiter],
) -> None:
    a, b = replicas
    started: list[float] = []
    went = await asyncio.gather(*(call(limiter, urgent=True, started=started) for _ in range(6) for limiter in (a, b)))
    assert all(went)
    started.sort()
    # no second holds more than 5 of the 12 (a little slack for the loop's own delays)
    assert all(later - first >= 0.8 for first, later in zip(started, started[5:], strict=False))


async def test_a_429_on_one_replica_closes_the_gate_for_the_other(replicas: tuple[RateLimiter, RateLimiter]) -> None:
    a, b = replicas
    with pytest.raises(RateLimited):
        async with a.slot([CHAT], gate=CHAT.key, urgent=True):
            raise RateLimited(30.0, "429 from the platform")
    for urgent in (True, False):
        with pytest.raises(RateLimited) as refused:
            async with b.slot([CHAT], gate=CHAT.key, urgent=urgent):
                pytest.fail("a call went out inside the other replica's retry_after")
        assert refused.value.retry_after > 20


async def test_an_urgent_call_waiting_on_one_replica_goes_before_the_others_intermediate_calls(
    replicas: tuple[RateLimiter, RateLimiter],
) -> None:
    a, b = replicas
    assert all(await asyncio.gather(*(call(a, urgent=True) for _ in range(5))))  # the budget is full
    final = asyncio.create_task(call(a, urgent=True))
    await asyncio.sleep(0.2)  # (lets the final ask and be told to wait; the assertions do not time anything)
    assert not final.done()
    assert not await call(b, urgent=False)  # yields to the waiting final, though the other replica has room
    assert await final


async def test_without_redis_each_replica_goes_by_its_own_budget(
    caplog: pytest.LogCaptureFixture, namespace: str
) -> None:
    async with redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1) as down:
        limiter = RateLimiter(BOT)
        limiter.share(SharedBudgets(down, namespace))
        with caplog.at_level(logging.ERROR):
            went = await asyncio.gather(*(call(limiter, urgent=False) for _ in range(6)))
    assert sum(went) == 4  # the local budget, as without replicas
    assert "shared rate budgets unavailable" in caplog.text
