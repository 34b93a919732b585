"""Conversation memory (SQLite in tmp_path), /reset, and what a stopped reply leaves behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from agent import AgentConfig, open_agent
from agent.events import AgentEvent, Done, TextDelta, ToolCall
from agent.run import CANCELLED_RESULT
from tests.agent.conftest import collect, default_tools, text_of
from tests.doubles.openai_server import Hang, OpenAIDouble, Text, ToolCalls

MakeConfig = Callable[..., AgentConfig]


def conversation(request: dict) -> list[tuple[str, str]]:
    """(role, content) of a request's messages after the system prompt."""
    return [(m["role"], m.get("content") or "") for m in request["messages"][1:]]


async def stopped_mid_tool(run: AsyncIterator[AgentEvent], running: asyncio.Event) -> list[AgentEvent]:
    """Iterate `run` until its tool sets `running`, then stop it as /stop does; returns the events seen."""
    seen: list[AgentEvent] = []

    async def reply() -> None:
        async with contextlib.aclosing(run) as events:
            async for event in events:
                seen.append(event)

    task = asyncio.create_task(reply())
    await asyncio.wait_for(running.wait(), timeout=10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return seen


async def test_a_thread_remembers_and_another_does_not(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(Text("Hello Ada."), Text("You are Ada."), Text("I don't know your name."))
    async with open_agent(make_config(llm), default_tools()) as agent:
        await collect(agent.run("My name is Ada.", thread_id="telegram:1"))
        events = await collect(agent.run("What is my name?", thread_id="telegram:1"))
        await collect(agent.run("What is my name?", thread_id="telegram:2"))

    assert text_of(events) == "You are Ada."
    assert conversation(llm.requests[1]) == [
        ("user", "My name is Ada."),
        ("assistant", "Hello Ada."),
        ("user", "What is my name?"),
    ]
    assert conversation(llm.requests[2]) == [("user", "What is my name?")]
    assert (make_config(llm).data_dir / "memory.sqlite").exists()


async def test_memory_survives_a_restart(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(Text("Noted: blue."), Text("Blue."))
    async with open_agent(make_config(llm), default_tools()) as agent:
        await collect(agent.run("My favourite colour is blue.", thread_id="console:me"))
    async with open_agent(make_config(llm), default_tools()) as agent:
        await collect(agent.run("Which colour?", thread_id="console:me"))

    assert ("assistant", "Noted: blue.") in conversation(llm.requests[1])


async def test_reset_forgets_the_thread_only(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(Text("Hi A."), Text("Hi B."), Text("Fresh start."), Text("Still here."))
    async with open_agent(make_config(llm), default_tools()) as agent:
        await collect(agent.run("I am A.", thread_id="slack:C1:1.0"))
        await collect(agent.run("I am B.", thread_id="slack:C1:2.0"))
        await agent.reset("slack:C1:1.0")
        await collect(agent.run("Who am I?", thread_id="slack:C1:1.0"))
        await collect(agent.run("Who am I?", thread_id="slack:C1:2.0"))

    assert conversation(llm.requests[2]) == [("user", "Who am I?")]
    assert ("user", "I am B.") in conversation(llm.requests[3])


async def test_a_run_cancelled_during_a_tool_leaves_a_valid_history(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    started: list[str] = []
    running = asyncio.Event()

    @tool
    async def slow_search(query: str) -> str:
        """Search slowly."""
        started.append(query)
        running.set()
        await asyncio.Event().wait()
        return "never"

    llm.script(ToolCalls([("slow_search", {"query": "cats"})], text_before="Searching."))
    async with open_agent(make_config(llm), [slow_search]) as agent:
        seen = await stopped_mid_tool(agent.run("find cats", thread_id="t"), running)
        llm.script(Text("Let's try something else."))
        events = await collect(agent.run("never mind", thread_id="t"))

    assert [event.name for event in seen if isinstance(event, ToolCall)] == ["slow_search"]
    assert text_of(events) == "Let's try something else."
    assert isinstance(events[-1], Done)
    assert started == ["cats"], "the cancelled tool must not run again"
    followup = llm.requests[-1]["messages"]
    (call,) = followup[-3]["tool_calls"]
    assert followup[-2] == {"role": "tool", "tool_call_id": call["id"], "content": CANCELLED_RESULT}
    assert followup[-1] == {"role": "user", "content": "never mind"}


@pytest.mark.parametrize("call_ids", ["per_reply", "none"])
async def test_a_stop_mid_tool_is_repaired_when_the_server_reuses_or_omits_call_ids(
    llm: OpenAIDouble, make_config: MakeConfig, call_ids: str
) -> None:
    """Turn 1 answers `call_1`; turn 2 is stopped while its own `call_1` runs; turn 3 must still be accepted."""
    llm.call_ids = call_ids  # type: ignore[assignment]
    running = asyncio.Event()

    @tool
    async def lookup(query: str) -> str:
        """Look something up; "slow" never finishes."""
        if query == "slow":
            running.set()
            await asyncio.Event().wait()
        return f"found {query}"

    llm.script(ToolCalls([("lookup", {"query": "fast"})]), Text("Found it."))
    llm.script(ToolCalls([("lookup", {"query": "slow"})], text_before="Looking."))
    async with open_agent(make_config(llm), [lookup]) as agent:
        first = await collect(agent.run("one", thread_id="t"))
        await stopped_mid_tool(agent.run("two", thread_id="t"), running)
        llm.script(Text("Still here."))
        third = await collect(agent.run("three", thread_id="t"))

    assert text_of(first) == "Found it." and text_of(third) == "Still here."
    assert isinstance(third[-1], Done)
    assert conversation(llm.requests[-1]) == [
        ("user", "one"),
        ("assistant", ""),
        ("tool", "found fast"),
        ("assistant", "Found it."),
        ("user", "two"),
        ("assistant", "Looking."),
        ("tool", CANCELLED_RESULT),
        ("user", "three"),
    ]


async def test_closing_the_run_closes_the_model_stream(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(Hang("Thinking about it"))
    async with open_agent(make_config(llm), default_tools()) as agent:
        events = agent.run("think hard", thread_id="t")
        first = await anext(events)
        assert isinstance(first, TextDelta)
        await asyncio.wait_for(events.aclose(), timeout=2)
        await asyncio.wait_for(llm.disconnected.wait(), timeout=2)

        llm.script(Text("Back again."))
        after = await collect(agent.run("hello?", thread_id="t"))

    assert llm.disconnects == 1
    assert text_of(after) == "Back again."
    assert conversation(llm.requests[-1]) == [("user", "think hard"), ("user", "hello?")]


async def test_cancelling_the_task_closes_the_model_stream(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(Hang("Thinking"))
    first_text = asyncio.Event()
    async with open_agent(make_config(llm), default_tools()) as agent:

        async def reply() -> None:
            async for event in agent.run("think", thread_id="t"):
                if isinstance(event, TextDelta):
                    first_text.set()

        task = asyncio.create_task(reply())
        await asyncio.wait_for(first_text.wait(), timeout=2)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.wait_for(llm.disconnected.wait(), timeout=2)


async def test_an_old_gap_in_the_middle_of_the_history_is_repaired(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    broken = [
        HumanMessage("what is 2+2", id="h1"),
        AIMessage("", id="a1", tool_calls=[{"name": "calculator", "args": {"expression": "2+2"}, "id": "c1"}]),
        HumanMessage("hello?", id="h2"),
        AIMessage("Hi.", id="a2"),
    ]
    llm.script(Text("All good."))
    async with open_agent(make_config(llm), default_tools()) as agent:
        config = {"configurable": {"thread_id": "t"}}
        await agent.graph.aupdate_state(config, {"messages": broken}, as_node="model")
        events = await collect(agent.run("still there?", thread_id="t"))
        state = await agent.graph.aget_state(config)

    assert text_of(events) == "All good."
    assert conversation(llm.requests[0]) == [
        ("user", "what is 2+2"),
        ("assistant", ""),
        ("tool", CANCELLED_RESULT),
        ("user", "hello?"),
        ("assistant", "Hi."),
        ("user", "still there?"),
    ]
    assert [type(m).__name__ for m in state.values["messages"]] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "HumanMessage",
        "AIMessage",
        "HumanMessage",
        "AIMessage",
    ]


async def test_a_memory_file_deleted_while_running_is_logged_as_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = AgentConfig(api_key=None, base_url=None, data_dir=tmp_path, demo_delay=0)
    async with open_agent(config, []) as agent:
        await collect(agent.run("hello", thread_id="console:x"))
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        (tmp_path / "memory.sqlite").unlink()
        await collect(agent.run("hello again", thread_id="console:x"))
        await collect(agent.run("and again", thread_id="console:x"))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "memory.sqlite was deleted" in errors[0]  # once, naming the file
