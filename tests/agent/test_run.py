"""Agent.run against the OpenAI double over real HTTP, with the real ChatOpenAI client and LangGraph agent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from langchain_core.tools import BaseTool, tool

from agent import AgentConfig, open_agent
from agent.errors import CONNECTION_LOST, MODEL_SILENT, MODEL_STALLED
from agent.events import AgentEvent, Done, Failed, TextDelta, ToolCall, ToolResult
from agent.middleware import FINAL_INSTRUCTION, STOPPED_TEXT
from agent.run import HISTORY_FAILURE
from tests.agent.conftest import calculator, collect, default_tools, text_of
from tests.doubles.openai_server import Break, Error, Hang, OpenAIDouble, Silent, Text, ToolCalls

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
    wire_id = followup[-2]["tool_calls"][0]["id"]
    assert followup[-1] == {"role": "tool", "tool_call_id": wire_id, "content": "noted buy milk"}
    # Every model call offers the tool, with the schema its signature and docstring make (converted once).
    for request in llm.requests:
        (offered,) = request["tools"]
        assert offered["function"]["name"] == "record"
        assert offered["function"]["description"] == "Write a note down."
        assert offered["function"]["parameters"]["properties"] == {"note": {"type": "string"}}


@pytest.mark.parametrize("call_ids", ["unique", "per_reply", "none"])
async def test_every_tool_turn_is_reported_whatever_ids_the_server_gives_its_calls(
    llm: OpenAIDouble, make_config: MakeConfig, call_ids: str
) -> None:
    """Servers that number calls per response send `call_1` on every turn; some send no id at all."""
    llm.call_ids = call_ids  # type: ignore[assignment]
    async with open_agent(make_config(llm), default_tools()) as agent:
        turns = []
        for n in range(3):
            llm.script(
                ToolCalls([("calculator", {"expression": f"{n}+2"})], text_before="Let me work that out."),
                Text(f"The tool answered: {n + 2}."),
            )
            turns.append(await collect(agent.run(f"what is {n}+2?", thread_id="t")))

    for n, events in enumerate(turns):
        assert kinds(events) == ["TextDelta", "ToolCall", "ToolResult", "TextDelta", "Done"]
        call = next(e for e in events if isinstance(e, ToolCall))
        result = next(e for e in events if isinstance(e, ToolResult))
        assert (result.call_id, result.name, result.content) == (call.call_id, "calculator", str(n + 2))
    assert len(llm.requests) == 6 and llm.pending == 0  # the strict double accepted every history


async def test_calls_of_different_steps_in_one_run_are_told_apart_despite_the_same_id(
    llm: OpenAIDouble, make_config: MakeConfig
) -> None:
    llm.call_ids = "per_reply"
    llm.script(
        ToolCalls([("calculator", {"expression": "1+1"}), ("current_time", {"timezone": "UTC"})]),
        ToolCalls([("calculator", {"expression": "2+2"})]),
        Text("2, noon and 4."),
    )

    events = await run_once(make_config(llm), "several things")

    assert kinds(events) == [
        "ToolCall",
        "ToolCall",
        "ToolResult",
        "ToolResult",
        "ToolCall",
        "ToolResult",
        "TextDelta",
        "Done",
    ]
    calls = [e for e in events if isinstance(e, ToolCall)]
    results = {e.call_id: e for e in events if isinstance(e, ToolResult)}
    assert len({call.call_id for call in calls}) == 3
    assert [results[call.call_id].content for call in calls] == ["2", "2025-01-01 12:00 UTC", "4"]


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
    assert events[-1] == Failed(CONNECTION_LOST, "connection")
    assert not any(isinstance(event, Done) for event in events)
    assert len(llm.requests) == 1, "a stream that broke half-way must not be retried behind the user's back"


async def test_http_error_becomes_a_safe_notice(
    llm: OpenAIDouble, make_config: MakeConfig, caplog: pytest.LogCaptureFixture
) -> None:
    llm.script(Error(401, "Incorrect API key provided: sk-test-***ret.", type="invalid_request_error"))

    events = await run_once(make_config(llm), "hi")

    assert events == [Failed("The model server rejected the API key.", "auth")]
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


async def test_a_tool_with_its_own_timeout_is_held_to_it(llm: OpenAIDouble, make_config: MakeConfig) -> None:
    """An MCP server's `timeout` reaches ToolGuard as the tool's metadata and replaces TOOL_TIMEOUT for it."""

    @tool
    async def slow(query: str) -> str:
        """Never answers."""
        await asyncio.Event().wait()
        return "unreachable"

    slow.metadata = {"timeout": 0.2}
    llm.script(ToolCalls([("slow", {"query": "x"})]), Text("It timed out."))
    events = await run_once(make_config(llm, tool_timeout=600), "go", tools=[slow])
    result = next(e for e in events if isinstance(e, ToolResult))
    assert "did not finish within 0.2 s" in result.content


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


async def test_a_silent_model_server_ends_the_reply_with_a_notice_and_no_retry(
    llm: OpenAIDouble, make_config: MakeConfig
) -> None:
    llm.script(Silent(), Silent(), Silent())  # enough for the retries a slower notice would have made

    # Long enough for the request to reach the double on a busy machine before the deadline passes.
    events = await run_once(make_config(llm, first_token_timeout=2), "hello?")

    assert events == [Failed(MODEL_SILENT.format(seconds=2), "silent")]
    assert len(llm.requests) == 1, "no silent retry that doubles the wait"
    await asyncio.wait_for(llm.disconnected.wait(), timeout=10)  # the request was given up, not left open


async def test_a_model_that_stalls_after_its_first_words_keeps_them_and_says_it_stalled(
    llm: OpenAIDouble, make_config: MakeConfig
) -> None:
    llm.script(Hang("The answer starts like this"))

    events = await run_once(make_config(llm, first_token_timeout=30, idle_timeout=0.5), "hi")

    assert text_of(events) == "The answer starts like this"
    assert events[-1] == Failed(MODEL_STALLED.format(seconds=0.5), "stalled")
    assert len(llm.requests) == 1


async def test_a_tool_that_runs_longer_than_the_model_timeouts_is_not_mistaken_for_silence(
    llm: OpenAIDouble, make_config: MakeConfig
) -> None:
    release = asyncio.Event()

    @tool
    async def slow(query: str) -> str:
        """Takes its time."""
        await release.wait()
        return "done slowly"

    llm.script(ToolCalls([("slow", {"query": "x"})], text_before="Working."), Text("It worked."))
    events: list[AgentEvent] = []
    async with open_agent(make_config(llm, first_token_timeout=0.3, idle_timeout=0.3), [slow]) as agent:
        async for event in agent.run("go", thread_id="t"):
            events.append(event)
            if isinstance(event, ToolCall):
                # Longer than both timeouts, measured by the model double's own stream: a request it never gets.
                asyncio.get_running_loop().call_later(1.0, release.set)

    assert kinds(events) == ["TextDelta", "ToolCall", "ToolResult", "TextDelta", "Done"]
    assert text_of(events) == "Working.It worked."


async def test_a_memory_that_cannot_be_read_ends_every_kind_of_run_with_a_notice(
    llm: OpenAIDouble, make_config: MakeConfig
) -> None:
    async with open_agent(make_config(llm), default_tools()) as agent:
        await agent.checkpointer.conn.close()  # type: ignore[attr-defined]  # the database went away
        for events in (
            await collect(agent.run("hello", thread_id="t:1")),
            await collect(agent.resume("t:1", approve=True)),
            await collect(agent.carry_on("t:1")),
        ):
            assert events == [HISTORY_FAILURE]
    assert llm.requests == []  # the model is not asked without the conversation
