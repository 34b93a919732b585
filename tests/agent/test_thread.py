"""The agent on its own thread: text reaches the sink as it is parsed, a tool waits until the chat side has handled
its ToolCall, and closing a run stops it before anything more is written."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from langchain_core.tools import tool

from agent import AgentConfig
from agent.events import Done, ToolCall
from agent.thread import open_agent_thread
from tests.doubles.openai_server import Hang, OpenAIDouble, Text, ToolCalls

MakeConfig = Callable[..., AgentConfig]


async def test_text_goes_to_the_sink_off_the_chat_loop_and_a_tool_waits_for_its_tool_call_to_be_handled(
    llm: OpenAIDouble, make_config: MakeConfig
) -> None:
    llm.script(ToolCalls([("note", {"text": "x"})], text_before="Before the tool. "), Text("After the tool."))
    log: list[tuple[str, str]] = []  # ("text", delta) from the sink, ("event", name) here, ("tool", ...)
    threads: set[int] = set()
    handled = asyncio.Event()

    @tool
    async def note(text: str) -> str:
        """Write a note."""
        log.append(("tool", "after its ToolCall was handled" if handled.is_set() else "too early"))
        return "noted"

    def sink(text: str) -> None:
        threads.add(threading.get_ident())
        log.append(("text", text))

    async with open_agent_thread(make_config(llm), [note]) as agent:
        async for event in agent.run("go", thread_id="t:1", on_text=sink):
            log.append(("event", type(event).__name__))
            if isinstance(event, ToolCall):
                await asyncio.sleep(0.2)  # the chat side finishes the text before the tool; the tool must wait
                handled.set()

    assert threads and threading.get_ident() not in threads
    call, result = log.index(("event", "ToolCall")), log.index(("event", "ToolResult"))
    assert "".join(text for kind, text in log[:call] if kind == "text") == "Before the tool. "
    assert log[call + 1] == ("tool", "after its ToolCall was handled")
    assert "".join(text for kind, text in log[result:] if kind == "text") == "After the tool."
    assert log[-1] == ("event", "Done")


async def test_closing_a_run_stops_it_before_any_more_text_arrives(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(Hang("Some words and then silence"))
    texts: list[str] = []
    wrote = threading.Event()

    def sink(text: str) -> None:
        texts.append(text)
        wrote.set()

    async with open_agent_thread(make_config(llm), []) as agent:
        run = agent.run("go", thread_id="t:2", on_text=sink)
        first = asyncio.create_task(anext(run))
        assert await asyncio.to_thread(wrote.wait, 10)
        first.cancel()  # a /stop while the model is silent
        await asyncio.wait_for(asyncio.gather(first, return_exceptions=True), 5)  # the run lets go at once
        await run.aclose()
        kept = list(texts)
        await asyncio.wait_for(llm.disconnected.wait(), 2)  # the model's stream was closed
    assert "".join(kept) and "Some words and then silence".startswith("".join(kept))
    assert texts == kept  # nothing arrived after the run was closed


async def test_a_run_closed_at_once_lets_go_and_the_next_run_works(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(Text("First."), Text("Second."))
    texts: list[str] = []
    async with open_agent_thread(make_config(llm), []) as agent:
        run = agent.run("go", thread_id="t:3", on_text=texts.append)
        first = asyncio.create_task(anext(run))
        await asyncio.sleep(0)  # the run is on its way to the agent's loop, perhaps not started yet
        first.cancel()
        await asyncio.wait_for(asyncio.gather(first, return_exceptions=True), 5)
        await asyncio.wait_for(run.aclose(), 5)  # returns once the run has let go, started or not
        kept = list(texts)
        events = [event async for event in agent.run("again", thread_id="t:3", on_text=texts.append)]
    assert isinstance(events[-1], Done)
    assert "".join(texts[len(kept) :]) in ("First.", "Second.")
