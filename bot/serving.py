"""What every chat-platform server shares: the runtime with its outbox and the courier that empties it, and the
process's life around it (the agent, the loop-lag watch, running until SIGINT or SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

from agent.thread import AgentThread, open_agent_thread
from bot.health import watch_loop_lag
from bot.outbox import Deliver, open_outbox
from bot.runtime import Runtime
from bot.settings import Settings
from tools import default_tools


class Courierable(Protocol):
    deliver: Deliver


B = TypeVar("B", bound=Courierable)


@contextlib.asynccontextmanager
async def with_outbox(
    settings: Settings,
    agent: AgentThread,
    channel: str,
    serve: Callable[[Settings, Runtime], AbstractAsyncContextManager[B]],
    *,
    command_prefix: str = "/",
) -> AsyncIterator[B]:
    """Run `serve` with a runtime whose late finals go to the outbox, and deliver them while it runs.

    `serve` finishes the replies in flight when it exits; what they could not deliver stays in the outbox for the
    next start.
    """
    async with open_outbox(settings.bot_data_dir) as outbox:
        runtime = Runtime(
            agent, outbox=outbox, channel=channel, command_prefix=command_prefix, patience=settings.final_patience
        )
        async with serve(settings, runtime) as bot:
            courier = asyncio.create_task(outbox.courier(channel, bot.deliver), name=f"{channel}-outbox")
            try:
                yield bot
            finally:
                await outbox.stop(courier)


async def run_until_signal(
    settings: Settings, serve: Callable[[Settings, AgentThread], AbstractAsyncContextManager[object]]
) -> int:
    """Serve with the agent until SIGINT or SIGTERM, then shut down gracefully. Returns the exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tools = default_tools(allow_private_fetch=settings.web_fetch_allow_private)
    # The lag is watched while serving: start-up and shutdown keep no user waiting.
    async with open_agent_thread(settings.agent_config(), tools) as agent, serve(settings, agent), watch_loop_lag():
        await stop.wait()
    return 0
