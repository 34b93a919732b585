"""The agent on a thread of its own, so parsing model streams never stalls the chat platform's event loop.

Every streamed token costs the OpenAI SDK and LangChain about 0.2 ms of CPU on the loop that reads it (SSE
decoding, chunk models, callbacks). With a hundred answers streaming at once that is half a core, and on one event
loop it arrives in bursts that hold back everything else on it: the platform calls, their rate-limit timing,
Slack's 3-second acknowledgements. Here the agent (model client, graph, checkpointer) lives on its own loop in its
own thread; the chat loop only receives the finished events. The GIL is handed over every few milliseconds, so
the chat loop waits milliseconds for it, not a whole burst.

`AgentThread` has the `Agent` interface the runtime uses (`run`, `reset`, `is_demo`); cancelling a consumer of
`run` (a /stop) cancels the run on the agent's loop, which closes the model's HTTP stream there.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from agent.config import AgentConfig
from agent.events import AgentEvent
from agent.run import Agent, open_agent


@dataclass(frozen=True, slots=True)
class _End:
    """The run finished (`error` None) or raised `error`."""

    error: BaseException | None = None


class AgentThread:
    """An `Agent` running on `loop` (another thread's); its methods are called from the chat loop."""

    def __init__(self, agent: Agent, loop: asyncio.AbstractEventLoop) -> None:
        self.is_demo = agent.is_demo
        self._agent = agent
        self._loop = loop

    async def run(self, text: str, *, thread_id: str) -> AsyncIterator[AgentEvent]:
        """`Agent.run` on the agent's loop; events arrive here in order. Closing this generator cancels the run."""
        here = asyncio.get_running_loop()
        events: asyncio.Queue[AgentEvent | _End] = asyncio.Queue()

        async def pump() -> None:
            try:
                async with contextlib.aclosing(self._agent.run(text, thread_id=thread_id)) as run:
                    async for event in run:
                        here.call_soon_threadsafe(events.put_nowait, event)
            except BaseException as exc:
                here.call_soon_threadsafe(events.put_nowait, _End(exc))
                raise
            here.call_soon_threadsafe(events.put_nowait, _End())

        running = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        try:
            while not isinstance(event := await events.get(), _End):
                yield event
            if event.error is not None and not isinstance(event.error, asyncio.CancelledError):
                raise event.error
        finally:
            await _finish(running)

    async def reset(self, thread_id: str) -> None:
        """`Agent.reset` on the agent's loop."""
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._agent.reset(thread_id), self._loop))


async def _finish(running: Future[None]) -> None:
    """Cancel the run if it is still going and wait until it has let go (stream closed, history saved)."""
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wrap_future(running)


@asynccontextmanager
async def open_agent_thread(
    config: AgentConfig, tools: Sequence[BaseTool], *, model: BaseChatModel | None = None
) -> AsyncIterator[AgentThread]:
    """`open_agent` on a new thread with its own event loop, for the lifetime of the block.

    Raises:
        MemoryUnavailable: (and anything else `open_agent` raises) when the agent cannot be opened.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="agent-loop", daemon=True)
    thread.start()
    opened: asyncio.Future[AgentThread] = asyncio.get_running_loop().create_future()
    closing = asyncio.Event()
    here = asyncio.get_running_loop()

    async def hold() -> None:
        """Open the agent on its loop, hand it over, and keep it open until the chat loop is done with it."""
        async with open_agent(config, tools, model=model) as agent:
            here.call_soon_threadsafe(opened.set_result, AgentThread(agent, loop))
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(closing.wait(), here))

    held = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(hold(), loop))
    try:
        await asyncio.wait([opened, held], return_when=asyncio.FIRST_COMPLETED)
        if not opened.done():
            await held  # opening failed: raise why
        yield opened.result()
    finally:
        closing.set()
        if not held.done():  # (done already when opening failed)
            if not opened.done():
                held.cancel()  # cancelled while opening
            with contextlib.suppress(asyncio.CancelledError):
                await held
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()
