"""Agent.run against the OpenAI double over real HTTP, with the real ChatOpenAI client and LangGraph agent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from langchain_core.tools import BaseTool, tool

from agent import AgentConfig, open_agent
from agent.events import AgentEvent, Done, Failed, TextDelta, ToolCall, ToolResult
from agent.middleware import FINAL_INSTRUCTION, STOPPED_TEXT
from tests.agent.conftest import calculator, collect, default_tools, text_of
from tests.doubles.openai_server import Break, Error, OpenAIDouble, Text, ToolCalls

MakeConfig = Callable[..., AgentConfig]


async def run_once(
    config: AgentConfig, text: str, tools: list[BaseTool] | None = None, thread_id: str = "test:1"
) -> list[AgentEvent]:
    async with open_agent(config, default_tools() if tools is None else tools) as agent:
        return await collect(agent.run(text, thread_id=thread_id))


def kinds(events: list[AgentEvent]) -> list[str]:
    """Event kinds with consecutive TextDeltas folded, to assert on the order."""
    folded: list[str] = []
    for event in events:
        name = type(event).__name__
        if not (folded and name == "TextDelta" and folded[-1] == name):
            folded.append(name)
    return folded


async def test_text_streams_as_deltas_and_ends_with_usage(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    answer = "Hello! Here is a **streamed** answer,\nin pieces."
    llm.script(Text(answer, chunk_size=3))

    events = await run_once(make_config(llm), "hi")

    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert len(deltas) == len(range(0, len(answer), 3))
    assert text_of(events) == answer
    done = events[-1]
    assert isinstance(done, Done)
    assert done.usage.input_tokens > 0
    assert done.usage.output_tokens == len(answer.split())
    (request,) = llm.requests
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert {t["function"]["name"] for t in request["tools"]} == {"calculator", "current_time"}


async def test_tool_call_is_reported_before_the_tool_runs(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    ran: list[str] = []

    @tool
    async def record(note: str) -> str:
        """Write a note down."""
        ran.append(note)
        return f"noted {note}"

    llm.script(ToolCalls([("record", {"note": "buy milk"})], text_before="One moment."), Text("Done, noted."))
    events: list[AgentEvent] = []
    async with open_agent(make_config(llm), [record]) as agent, aiohttp.ClientSession() as session:
        async for event in agent.run("remember to buy milk", thread_id="test:1"):
            if isinstance(event, ToolCall):
                # Do what the StreamingHandler's take() does: real network I/O, giving the event loop every
                # chance to start the tool if LangGraph did not wait for us.
                async with session.get(f"{llm.base_url}/models") as response:
                    await response.read()
                assert ran == [], "the tool ran before its ToolCall event was consumed"
            if isinstance(event, ToolResult):
                assert ran == ["buy milk"]
            events.append(event)

    assert kinds(events) == ["TextDelta", "ToolCall", "ToolResult", "TextDelta", "Done"]
    call = next(e for e in events if isinstance(e, ToolCall))
    assert (call.name, call.args) == ("record", {"note": "buy milk"})
    assert next(e for e in events if isinstance(e, ToolResult)) == ToolResult(call.call_id, "record", "noted buy milk")
    assert text_of(events) == "One moment.Done, noted."
    followup = llm.requests[1]["messages"]
    assert followup[-2]["tool_calls"][0]["id"] == call.call_id
    assert followup[-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "noted buy milk"}


async def test_all_tool_calls_of_a_step_come_before_any_result(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(
        ToolCalls([("calculator", {"expression": "(3+4)*5"}), ("current_time", {"timezone": "Asia/Tokyo"})]),
        Text("35, and it is noon."),
    )

    events = await run_once(make_config(llm), "two things")

    assert kinds(events) == ["ToolCall", "ToolCall", "ToolResult", "ToolResult", "TextDelta", "Done"]
    results = {e.name: e for e in events if isinstance(e, ToolResult)}
    assert results["calculator"].content == "35"
    assert results["current_time"].content == "2025-01-01 12:00 Asia/Tokyo"
    assert all(result.ok for result in results.values())


async def test_broken_stream_keeps_the_text_so_far_then_fails(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(Break("The answer is forty-two, because", after_chars=14))

    events = await run_once(make_config(llm), "why?")

    assert text_of(events) == "The answer is "
    assert events[-1] == Failed("The model stopped answering (connection lost).")
    assert not any(isinstance(event, Done) for event in events)
    assert len(llm.requests) == 1, "a stream that broke half-way must not be retried behind the user's back"


async def test_http_error_becomes_a_safe_notice(
    llm: OpenAIDouble, make_config: MakeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    llm.script(Error(401, "Incorrect API key provided: sk-test-***ret.", type="invalid_request_error"))

    events = await run_once(make_config(llm), "hi")

    assert events == [Failed("The model server rejected the API key.")]
    assert "AuthenticationError" in caplog.text  # the details go to the log, not to the user


async def test_tool_that_raises_becomes_an_error_result(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    @tool
    async def flaky(query: str) -> str:
        """Look something up."""
        raise RuntimeError("backend is on fire")

    llm.script(ToolCalls([("flaky", {"query": "x"})]), Text("The lookup failed, sorry."))

    events = await run_once(make_config(llm), "look it up", tools=[flaky])

    result = next(e for e in events if isinstance(e, ToolResult))
    assert not result.ok
    assert "backend is on fire" in result.content
    assert text_of(events) == "The lookup failed, sorry."
    assert isinstance(events[-1], Done)
    assert llm.requests[1]["messages"][-1]["content"] == result.content


async def test_tool_that_hangs_times_out(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    cancelled = asyncio.Event()

    @tool
    async def stuck(query: str) -> str:
        """Never answers."""
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return "unreachable"

    llm.script(ToolCalls([("stuck", {"query": "x"})]), Text("It timed out."))

    events = await run_once(make_config(llm, tool_timeout=0.2), "go", tools=[stuck])

    result = next(e for e in events if isinstance(e, ToolResult))
    assert not result.ok
    assert "did not finish within 0.2 s" in result.content
    assert cancelled.is_set()
    assert kinds(events) == ["ToolCall", "ToolResult", "TextDelta", "Done"]


async def test_a_tool_whose_cpu_work_holds_the_loop_past_its_timeout_is_reported_as_timed_out(
    llm: OpenAIDouble, make_config: MakeConfig
) -> None:
    """CPU work between two awaits cannot be cancelled: what it returns after the timeout must not count as a
    result, or a parser that hogged the loop for seconds would still answer "ok"."""

    @tool
    async def hog(query: str) -> str:
        """Works without ever awaiting until well past its time."""
        loop = asyncio.get_running_loop()
        until = loop.time() + 0.5
        while loop.time() < until:
            pass
        return "an answer that came too late"

    llm.script(ToolCalls([("hog", {"query": "x"})]), Text("It timed out."))

    events = await run_once(make_config(llm, tool_timeout=0.2), "go", tools=[hog])

    result = next(e for e in events if isinstance(e, ToolResult))
    assert not result.ok
    assert "did not finish within 0.2 s" in result.content
    assert "too late" not in llm.requests[1]["messages"][-1]["content"]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (("no_such_tool", {}), "there is no tool named 'no_such_tool'"),
        (("calculator", "this is not json"), "not a valid JSON object"),
        (("calculator", {"wrong_arg": "2+2"}), "expression"),
    ],
    ids=["unknown-tool", "malformed-json", "invalid-arguments"],
)
async def test_bad_tool_calls_are_answered_and_the_run_goes_on(
    llm: OpenAIDouble, make_config: MakeConfig, call: tuple[str, Any], expected: str
) -> None:
    llm.script(ToolCalls([call]), Text("Let me answer without it."))

    events = await run_once(make_config(llm), "compute", tools=[calculator])

    assert kinds(events) == ["ToolCall", "ToolResult", "TextDelta", "Done"]
    result = next(e for e in events if isinstance(e, ToolResult))
    assert not result.ok
    assert expected in result.content
    # The strict double accepted the follow-up, so the bad call was answered in the history.
    assert len(llm.requests) == 2
    assert llm.requests[1]["messages"][-1]["role"] == "tool"


async def test_step_limit_ends_with_an_answer(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(
        ToolCalls([("calculator", {"expression": "1+1"})]),
        ToolCalls([("calculator", {"expression": "2+2"})]),
        Text("Here is what I found: 2 and 4."),
    )

    events = await run_once(make_config(llm, step_limit=2), "keep computing")

    assert [e.args["expression"] for e in events if isinstance(e, ToolCall)] == ["1+1", "2+2"]
    assert text_of(events) == "Here is what I found: 2 and 4."
    assert isinstance(events[-1], Done)
    last = llm.requests[-1]
    assert "tools" not in last
    assert FINAL_INSTRUCTION in last["messages"][0]["content"]
    assert all("tools" in request for request in llm.requests[:-1])


async def test_default_step_limit_beats_the_recursion_limit(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    config = make_config(llm)
    # One more tool call than allowed: the last one arrives although no tools were offered, and is dropped.
    llm.script(*[ToolCalls([("calculator", {"expression": f"{n}+1"})]) for n in range(config.step_limit + 1)])

    events = await run_once(config, "loop forever")

    assert sum(isinstance(e, ToolCall) for e in events) == config.step_limit
    assert sum(isinstance(e, ToolResult) for e in events) == config.step_limit
    assert text_of(events) == STOPPED_TEXT
    assert isinstance(events[-1], Done)
    assert llm.pending == 0
    assert "tools" not in llm.requests[-1]


async def test_text_before_a_dropped_tool_call_is_kept(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(ToolCalls([("calculator", {"expression": "1+1"})], text_before="Let me check."))

    events = await run_once(make_config(llm, step_limit=0), "hi")

    assert text_of(events) == f"Let me check.\n\n{STOPPED_TEXT}"
    assert kinds(events) == ["TextDelta", "Done"]


async def test_step_limit_zero_offers_no_tools(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    llm.script(Text("Plain answer."))

    events = await run_once(make_config(llm, step_limit=0), "hi")

    assert text_of(events) == "Plain answer."
    assert "tools" not in llm.requests[0]
