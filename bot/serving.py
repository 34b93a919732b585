"""The process's life around a chat-platform server: the agent, the loop-lag watch, running until SIGINT or
SIGTERM. (What the servers themselves share is `bot.channel`.)"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from agent.thread import AgentThread, open_agent_thread
from bot.health import watch_loop_lag
from bot.settings import Settings
from tools import default_tools


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
