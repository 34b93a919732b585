"""The process's life around a chat-platform server: the agent, the loop-lag watch, running until SIGINT or
SIGTERM. (What the servers themselves share is `bot.channel`.)"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from agent.thread import AgentThread
from bot.agent_setup import open_bot_agent
from bot.health import watch_loop_lag
from bot.settings import Settings


async def run_until_signal(
    settings: Settings, serve: Callable[[Settings, AgentThread], AbstractAsyncContextManager[object]]
) -> int:
    """Serve with the agent until SIGINT or SIGTERM, then shut down gracefully. Returns the exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The lag is watched while serving: start-up and shutdown keep no user waiting.
    async with open_bot_agent(settings) as agent, serve(settings, agent), watch_loop_lag():
        await stop.wait()
    return 0
