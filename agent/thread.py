"""The agent on a thread of its own, so parsing model streams never stalls the chat platform's event loop.

Every streamed token costs the OpenAI SDK and LangChain about 0.2 ms of CPU on the loop that reads it (SSE
decoding, chunk models, callbacks). With a hundred answers streaming at once that is half a core, and on one event
loop it arrives in bursts that hold back everything else on it: the platform calls, their rate-limit timing,
Slack's 3-second acknowledgements. Here the agent (model client, graph, checkpointer) lives on its own loop in its
own thread, and the chat loop keeps its share of the interpreter between those bursts instead of queueing behind
them (bench/RESULTS.md: loop lag p99 at 100 conversations went from 223 ms to under 100 ms). The GIL still makes
the two share one core; past that, the agent would need a process of its own.

`AgentThread` offers what the runtime needs of an `Agent` (`run`, `reset`, `is_demo`). Text goes straight from the
agent's thread to the reply's StreamingHandler (whose `emit` is made for that); the other events cross to the chat
loop in order. Closing a `run` (a /stop) cancels the run on the agent's loop, which closes the model's HTTP stream
there.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from agent.config import AgentConfig
from agent.events import AgentEvent, TextDelta, ToolCall, ToolResult, UserContent
from agent.run import Agent, Cut, open_agent


@dataclass(frozen=True, slots=True)
class _End:
    """The run finished (`error` None) or raised `error`."""

    error: BaseException | None = None


class ToolSource(Protocol):
    """Tools that live as long as the agent and on its loop, and may come later (MCP servers: tools.mcp_servers)."""

    def current(self) -> Sequence[BaseTool]:
        """The tools there are now."""
        ...

    def unavailable(self) -> Mapping[str, str]:
        """Sources of tools that are down, each with why (for /tools)."""
        ...

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` on the agent's loop when `current` changes."""
        ...


OpenTools = Callable[[], AbstractAsyncContextManager[ToolSource]]
"""Opens tools that live as long as the agent and on its loop (MCP sessions), and closes them after it."""


class AgentThread:
    """An `Agent` running on `loop` (another thread's); its methods are called from the chat loop.

    Attributes:
        tools: Every tool the agent has now (for /tools and the names shown while one runs); read-only.
    """

    def __init__(
        self,
        agent: Agent,
        loop: asyncio.AbstractEventLoop,
        tools: Sequence[BaseTool] = (),
        source: ToolSource | None = None,
    ) -> None:
        self.is_demo = agent.is_demo
        self.files = agent.files
        """The conversations' files (media.store); its methods block: call them in a worker thread."""
        self._own = tuple(tools)
        self.tools = (*self._own, *(source.current() if source is not None else ()))
        self._source = source
        self._agent = agent
        self._loop = loop
        if source is not None:
            source.subscribe(self._refresh)

    @property
    def unavailable(self) -> dict[str, str]:
        """Sources of tools that are down (MCP servers that did not start), each with why."""
        return dict(self._source.unavailable()) if self._source is not None else {}

    def _refresh(self) -> None:
        """On the agent's loop: a source's tools changed; the next runs get them (the running ones keep theirs)."""
        assert self._source is not None
        tools = (*self._own, *self._source.current())
        self._agent.use_tools(tools)
        self.tools = tools  # (one assignment: the chat loop reads either the old tuple or the new one)

    def run(
        self, text: UserContent, *, thread_id: str, on_text: Callable[[str], None]
    ) -> AsyncGenerator[AgentEvent, None]:
        """`Agent.run` on the agent's loop. Closing this generator cancels the run there.

        Args:
            text: The user's turn: a message, or content parts (see `Agent.run`).
            thread_id: The conversation key.
            on_text: Takes each text delta on the agent's thread the moment it is parsed (it must be quick and
                thread-safe, like `StreamingHandler.emit`). Text does not queue up behind the chat loop, so a
                reply stopped at any moment keeps every word that reached the bot.

        Yields:
            The other events, in order and after the text before them. A `ToolCall`'s tool starts only once the
            consumer asks for the next event, so the text before a tool can be finished first; likewise the
            model goes on after a `ToolResult` with pictures only then, so they can be shown first.
        """
        return self._relay(lambda: self._agent.run(text, thread_id=thread_id), on_text)

    def resume(
        self, thread_id: str, *, approve: bool, reason: str, on_text: Callable[[str], None]
    ) -> AsyncGenerator[AgentEvent, None]:
        """`Agent.resume` on the agent's loop, relayed as `run` relays a run (closing it cancels the run there)."""
        return self._relay(lambda: self._agent.resume(thread_id, approve=approve, reason=reason), on_text)

    async def _relay(
        self, start: Callable[[], AsyncGenerator[AgentEvent, None]], on_text: Callable[[str], None]
    ) -> AsyncGenerator[AgentEvent, None]:
        """Run the generator `start` makes on the agent's loop; text goes to `on_text` there, the rest comes here."""
        here = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[AgentEvent, asyncio.Future[None] | None] | _End] = asyncio.Queue()
        ended = here.create_future()  # set when the run has let go of everything, even when it was cancelled
        handle = _Handle()

        async def pump() -> None:
            handle.task = asyncio.current_task()
            try:
                if handle.stopped:
                    return
                async with contextlib.aclosing(start()) as run:
                    async for event in run:
                        if isinstance(event, TextDelta):
                            on_text(event.text)
                        elif isinstance(event, ToolCall) or (isinstance(event, ToolResult) and event.pictures):
                            # The run waits: text before a tool is finished before it runs, and a tool's
                            # picture is shown before the answer after it starts.
                            handled = asyncio.get_running_loop().create_future()
                            here.call_soon_threadsafe(events.put_nowait, (event, handled))
                            await handled
                        else:
                            here.call_soon_threadsafe(events.put_nowait, (event, None))
            except BaseException as exc:
                here.call_soon_threadsafe(events.put_nowait, _End(exc))
                raise
            finally:
                here.call_soon_threadsafe(_resolve, ended)
            here.call_soon_threadsafe(events.put_nowait, _End())

        asyncio.run_coroutine_threadsafe(pump(), self._loop)
        try:
            while not isinstance(item := await events.get(), _End):
                event, handled = item
                yield event
                if handled is not None:
                    self._loop.call_soon_threadsafe(_resolve, handled)
            if item.error is not None and not isinstance(item.error, asyncio.CancelledError):
                raise item.error
        finally:
            self._loop.call_soon_threadsafe(handle.stop)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(ended)

    def carry_on(self, thread_id: str, *, on_text: Callable[[str], None]) -> AsyncGenerator[AgentEvent, None]:
        """`Agent.carry_on` on the agent's loop, relayed as `run` relays a run."""
        return self._relay(lambda: self._agent.carry_on(thread_id), on_text)

    async def cut_run(self, thread_id: str, *, since: float) -> tuple[Cut, str]:
        """`Agent.cut_run` on the agent's loop."""
        future = asyncio.run_coroutine_threadsafe(self._agent.cut_run(thread_id, since=since), self._loop)
        return await asyncio.wrap_future(future)

    async def reset(self, thread_id: str) -> None:
        """`Agent.reset` on the agent's loop."""
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._agent.reset(thread_id), self._loop))


class _Handle:
    """One run's task on the agent's loop, to stop it from the chat loop whether or not it has started yet.

    (Cancelling the future of `run_coroutine_threadsafe` would mark it cancelled at once, before the run has let go,
    and a task cancelled before its first step skips its `finally`.)
    """

    def __init__(self) -> None:
        self.task: asyncio.Task[object] | None = None
        self.stopped = False

    def stop(self) -> None:
        """On the agent's loop: cancel the run, or make it return as soon as it starts."""
        self.stopped = True
        if self.task is not None:
            self.task.cancel()


def _resolve(handled: asyncio.Future[None]) -> None:
    if not handled.done():
        handled.set_result(None)


def _hand_over(opened: asyncio.Future[AgentThread], agent: AgentThread) -> None:
    if not opened.done():  # (cancelled when the bot was stopped while the agent opened)
        opened.set_result(agent)


@asynccontextmanager
async def open_agent_thread(
    config: AgentConfig,
    tools: Sequence[BaseTool],
    *,
    model: BaseChatModel | None = None,
    open_tools: OpenTools | None = None,
) -> AsyncIterator[AgentThread]:
    """`open_agent` on a new thread with its own event loop, for the lifetime of the block.

    Args:
        config: The agent's settings.
        tools: The tools the model may call.
        model: A chat model instead of the one `config` describes (tests).
        open_tools: More tools, opened on the agent's loop before the agent and closed after it: MCP sessions
            are bound to the loop that opened them, and the agent's loop is the one that calls the tools. Tools it
            adds later (a server that came up) are offered from the next run on.

    Raises:
        MemoryUnavailable: (and anything else `open_agent` or `open_tools` raises) when the agent cannot be opened.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="agent-loop", daemon=True)
    thread.start()
    opened: asyncio.Future[AgentThread] = asyncio.get_running_loop().create_future()
    closing = asyncio.Event()
    here = asyncio.get_running_loop()

    async def hold() -> None:
        """Open the agent on its loop, hand it over, and keep it open until the chat loop is done with it."""
        async with open_tools() if open_tools is not None else nullcontext(None) as source:
            every_tool = [*tools, *(source.current() if source is not None else ())]
            async with open_agent(config, every_tool, model=model) as agent:
                here.call_soon_threadsafe(_hand_over, opened, AgentThread(agent, loop, tools, source))
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(closing.wait(), here))

    held = asyncio.wrap_future(asyncio.run_coroutine_threadsafe(hold(), loop))
    try:
        first: list[asyncio.Future[Any]] = [opened, held]
        await asyncio.wait(first, return_when=asyncio.FIRST_COMPLETED)
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
