"""The shared rate budget: urgent calls wait, the rest are refused early, retry_after is a hard gate that a 429
inside the limiter's own call path closes, shared budgets are taken in turns, and a 429 teaches a budget."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from channels.errors import RateLimited
from channels.ratelimit import Budget, RateLimiter, Scope
from tests.fakes import FakeClock, settle

PRIVATE = Budget(limit=3, period=3.0)


def scopes(chat: object, budget: Budget | None, lane: str = "messages") -> tuple[Scope, ...]:
    """A Telegram-like call's budgets: the chat's lane (none for typing); its gate is the chat."""
    return () if budget is None else (Scope((chat, lane), budget),)


async def call(
    limiter: RateLimiter, chat: object, budget: Budget | None, *, lane: str = "messages", urgent: bool
) -> None:
    """One platform call that completes at once."""
    async with limiter.slot(scopes(chat, budget, lane), gate=chat, urgent=urgent):
        pass


async def told_to_wait(
    limiter: RateLimiter, chat: object, seconds: float, budget: Budget | None = PRIVATE, *, lane: str = "messages"
) -> None:
    """One platform call to `chat` that the platform answers 429 (the channel raises RateLimited in the block)."""
    with pytest.raises(RateLimited):
        async with limiter.slot(scopes(chat, budget, lane), gate=chat, urgent=True):
            raise RateLimited(seconds, "429 from the platform")


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
    for _ in range(2):
        await call(limiter, "slow", PRIVATE, urgent=True)
    await told_to_wait(limiter, "slow", 7)  # the chat used its whole budget: the 429 is about this chat
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
    await told_to_wait(limiter, "chat", 2, drafts, lane="drafts")
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
    await told_to_wait(limiter, "quiet", 2)  # one call: the chat's own pace is fine, so the bot went too fast
    with pytest.raises(RateLimited):
        await call(limiter, "elsewhere", PRIVATE, urgent=True)
    await clock.advance(2.1)
    for _ in range(2):
        await call(limiter, "busy", PRIVATE, urgent=True)
    await told_to_wait(limiter, "busy", 5)  # a chat at its own limit explains its own 429: other chats go on
    await call(limiter, "elsewhere", PRIVATE, urgent=True)


async def test_a_call_in_flight_holds_its_slot_until_a_period_after_it_completes(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(1, 1.0), clock=clock)
    slow = limiter.slot((), gate="a", urgent=True)
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
    limiter = RateLimiter(Budget(2, 1.0), clock=clock)
    await call(limiter, "a", PRIVATE, urgent=True)
    answered = asyncio.Event()

    async def on_its_way() -> None:  # a call to "b" on its way: the bot budget is used for this second
        async with limiter.slot(scopes("b", PRIVATE), gate="b", urgent=True):
            await answered.wait()
            raise RateLimited(5, "429")  # ...and it is answered: wait 5 s

    first = asyncio.create_task(on_its_way())
    await settle()
    waiting = asyncio.create_task(call(limiter, "b", PRIVATE, urgent=True))
    await settle()
    answered.set()
    with pytest.raises(RateLimited):
        await first
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


# -- budgets a platform meters per workspace (Slack) ---------------------------------------------------------

TIER3 = Budget.per_minute(50)  # 5 calls in any 6 s


def update(workspace: str = "T1") -> tuple[Scope, ...]:
    return (Scope((workspace, "chat.update"), TIER3, paced=True, learns=True),)


async def intermediate(limiter: RateLimiter, reply: str, workspace: str = "T1") -> bool:
    """One intermediate chat.update of `reply`; whether the limiter let it go."""
    try:
        async with limiter.slot(update(workspace), gate=(workspace, "chat.update"), urgent=False, caller=reply):
            return True
    except RateLimited:
        return False


async def test_replies_streaming_in_one_workspace_take_turns_so_that_together_they_fit(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(20, 1.0), bot_is_platform_limit=False, clock=clock)
    replies = [f"reply{n}" for n in range(8)]
    sent: dict[str, list[float]] = {reply: [] for reply in replies}
    for _ in range(120):  # every reply asks for an update every half second, for a minute
        for reply in replies:
            if await intermediate(limiter, reply):
                sent[reply].append(clock.now())
        await clock.advance(0.5)
    counts = [len(times) for times in sent.values()]
    assert sum(counts) <= 50  # Tier 3: fifty a minute in all, however many replies stream
    assert min(counts) >= max(counts) - 2  # and each reply gets its share, not the quickest all of it
    settled = [[t for t in times if t >= 12] for times in sent.values()]  # once every reply has asked once
    gaps = [b - a for times in settled for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 8 * 6 / 4 - 0.5  # eight replies share four intermediate slots per 6 s: one each 12 s


async def test_a_reply_that_is_over_leaves_its_turns_to_the_others(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(20, 1.0), bot_is_platform_limit=False, clock=clock)
    for reply in ("a", "b", "c", "d"):
        assert await intermediate(limiter, reply)
    for reply in ("b", "c", "d"):
        limiter.release(reply)
    await clock.advance(6.1)
    assert await intermediate(limiter, "a")
    await clock.advance(1.6)  # alone, "a" may update every 6/4 s
    assert await intermediate(limiter, "a")


async def test_a_workspace_429_gates_that_method_in_that_workspace_and_lowers_its_budget(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(20, 1.0), bot_is_platform_limit=False, clock=clock)
    gate = ("T1", "chat.update")
    async with limiter.slot(update(), gate=gate, urgent=True):
        pass
    with pytest.raises(RateLimited):
        async with limiter.slot(update(), gate=gate, urgent=True):
            raise RateLimited(3, "429: Slack allows fewer than we thought")
    assert limiter.blocked_for(gate) == pytest.approx(3)
    assert limiter.blocked_for(("T2", "chat.update")) == 0  # another workspace is not held up
    assert limiter.blocked_for(("T1", "chat.postMessage")) == 0  # nor another method
    await clock.advance(3)
    times = []

    async def final() -> None:
        async with limiter.slot(update(), gate=gate, urgent=True):
            times.append(clock.now())

    tasks = [asyncio.create_task(final()) for _ in range(4)]
    await clock.advance(30)
    await asyncio.gather(*tasks)
    # It learnt: where five calls per 6 s would have gone at t=3, two per 6 s are left (the five halved; two were
    # used), plus one back per period.
    assert times == [6.0, 6.0, 6.0, 12.0]


async def test_a_post_spends_from_its_channel_and_its_workspace(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(20, 1.0), bot_is_platform_limit=False, clock=clock)
    workspace = Scope(("T1", "chat.postMessage"), Budget(4, 6.0))

    async def post(channel: str) -> None:
        channel_scope = Scope((channel, "chat.postMessage"), Budget(3, 3.0))
        async with limiter.slot((channel_scope, workspace), gate=("T1", "chat.postMessage"), urgent=True):
            pass

    for channel in ("C1", "C2", "C3", "C4"):
        await post(channel)
    late = asyncio.create_task(post("C5"))  # a fresh channel, but the workspace's four are spent
    await clock.advance(5.9)
    assert not late.done()
    await clock.advance(0.2)
    assert late.done()


async def test_a_long_line_makes_first_previews_wait_for_room_instead_of_queueing(clock: FakeClock) -> None:
    limiter = RateLimiter(Budget(5, 1.0), clock=clock)
    assert limiter.prompt()
    for n in range(5):
        await call(limiter, f"busy{n}", None, urgent=True)
    waiting = [asyncio.create_task(call(limiter, f"final{n}", None, urgent=True)) for n in range(30)]
    await settle()
    assert limiter.backlog() == pytest.approx(6.0)  # thirty finals at five a second
    assert not limiter.prompt()
    await clock.advance(2)
    assert limiter.prompt()  # the line is short again: previews go first again
    await clock.advance(10)
    await asyncio.gather(*waiting)
