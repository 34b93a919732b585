"""The offline demo model: deterministic replies, real streamed tool calls, and an honest notice."""

from __future__ import annotations

import time
from pathlib import Path

from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_openai import ChatOpenAI

from agent import AgentConfig, open_agent
from agent.demo import FIRST_NOTICE, DemoChatModel, plan_reply, slowed
from agent.events import Done, TextDelta, ToolCall, ToolResult
from agent.model import PLACEHOLDER_API_KEY, build_model
from tests.agent.conftest import calculator, collect, current_time, text_of

TOOLS = {"calculator", "current_time"}


def ask(text: str, tools: set[str] = TOOLS) -> tuple[str, tuple[str, dict] | None]:
    plan = plan_reply([SystemMessage("be nice"), HumanMessage(text)], tools)
    return plan.text, plan.tool


def test_arithmetic_goes_to_the_calculator() -> None:
    assert ask("what is 2+2")[1] == ("calculator", {"expression": "2+2"})
    assert ask("compute (3+4)*5, please")[1] == ("calculator", {"expression": "(3+4)*5"})
    assert ask("What's 12 * 7?")[1] == ("calculator", {"expression": "12 * 7"})


def test_time_questions_go_to_the_clock() -> None:
    assert ask("what time is it?")[1] == ("current_time", {"timezone": "UTC"})
    assert ask("What's the date in Europe/Berlin")[1] == ("current_time", {"timezone": "Europe/Berlin"})


def test_without_the_tool_it_answers_and_says_why() -> None:
    text, tool = ask("what is 2+2", tools={"current_time"})
    assert tool is None
    assert "isn't available" in text
    assert text.endswith(FIRST_NOTICE)


def test_anything_else_gets_help_and_the_notice_once_per_conversation() -> None:
    text, tool = ask("hello")
    assert tool is None
    assert "what is 2+2" in text
    assert "OPENAI_API_KEY" in text and "OPENAI_BASE_URL" in text and "LLM_MODEL" in text
    later = plan_reply([HumanMessage("hi"), AIMessage("Hi!" + FIRST_NOTICE), HumanMessage("hello")], TOOLS)
    assert "demo" not in later.text and "OPENAI_API_KEY" not in later.text


def test_time_in_a_city_uses_its_zone() -> None:
    assert ask("what time is it in Tokyo?")[1] == ("current_time", {"timezone": "Asia/Tokyo"})
    assert ask("what's the time in new york")[1] == ("current_time", {"timezone": "America/New_York"})
    assert ask("what time is it in the evening")[1] == ("current_time", {"timezone": "UTC"})


def test_it_recalls_what_was_said_earlier_and_nothing_after_a_reset() -> None:
    told = [HumanMessage("my name is Ada"), AIMessage("Nice to meet you, Ada!"), HumanMessage("what's my name?")]
    assert "Your name is **Ada**" in plan_reply(told, TOOLS).text
    assert "haven't told me your name" in plan_reply([HumanMessage("what's my name?")], TOOLS).text
    history = [HumanMessage("I like tea"), AIMessage("Noted."), HumanMessage("what did I say?")]
    assert "- I like tea" in plan_reply(history, TOOLS).text
    assert "Nothing yet" in plan_reply([HumanMessage("what did I say?")], TOOLS).text


def test_asked_for_one_it_writes_a_long_answer_with_a_table_and_a_code_block() -> None:
    text, _ = ask("show me a table")
    assert "|---|" in text and "```python" in text and len(text) > 800


async def test_the_demo_tools_take_long_enough_for_their_status_line_to_show() -> None:
    (slow,) = slowed([calculator], 0.2)
    started = time.monotonic()
    assert await slow.ainvoke({"expression": "6*7"}) == "42"
    assert time.monotonic() - started >= 0.2
    assert (slow.name, slow.args) == (calculator.name, calculator.args)


def test_after_the_tool_it_answers_with_the_result() -> None:
    messages = [
        HumanMessage("what is 2+2"),
        AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "2+2"}, "id": "c1"}]),
        ToolMessage("4", tool_call_id="c1", name="calculator"),
    ]
    assert plan_reply(messages, TOOLS).text.startswith("2+2 = **4**")
    failed = [*messages[:2], ToolMessage("Error: boom", tool_call_id="c1", name="calculator", status="error")]
    assert plan_reply(failed, TOOLS).text.startswith("The `calculator` tool failed: Error: boom")


async def test_tool_calls_stream_as_chunks_that_merge_into_a_valid_call() -> None:
    model = DemoChatModel(delay=0).bind_tools([calculator])
    chunks = [chunk async for chunk in model.astream([HumanMessage("what is 2+2")])]

    assert all(isinstance(chunk, AIMessageChunk) for chunk in chunks)
    text_chunks = [chunk for chunk in chunks if chunk.text]
    call_chunks = [chunk for chunk in chunks if chunk.tool_call_chunks]
    assert len(text_chunks) > 1 and len(call_chunks) > 2
    assert all(not chunk.text for chunk in call_chunks)
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.text == "Let me work that out with the calculator."
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [("calculator", {"expression": "2+2"})]
    assert merged.usage_metadata is not None and merged.usage_metadata["output_tokens"] > 0


async def test_invoke_accumulates_the_stream() -> None:
    message = await DemoChatModel(delay=0).ainvoke([HumanMessage("hello")])
    assert "offline demo model" in message.text
    assert DemoChatModel(delay=0).invoke([HumanMessage("hello")]).text == message.text


async def test_demo_round_trip_through_the_agent(tmp_path: Path) -> None:
    config = AgentConfig(api_key=None, base_url=None, data_dir=tmp_path, demo_delay=0)
    async with open_agent(config, [calculator, current_time]) as agent:
        assert agent.is_demo
        events = await collect(agent.run("what is 2+2", thread_id="console:demo"))
        again = await collect(agent.run("compute (3+4)*5", thread_id="console:demo"))

    calls = [event for event in events if isinstance(event, ToolCall)]
    results = [event for event in events if isinstance(event, ToolResult)]
    assert [(c.name, c.args) for c in calls] == [("calculator", {"expression": "2+2"})]
    assert [(r.content, r.ok) for r in results] == [("4", True)]
    first_text = events.index(calls[0])
    assert any(isinstance(event, TextDelta) for event in events[:first_text])
    answer = text_of(events[events.index(results[0]) :])
    assert answer.startswith("2+2 = **4**")
    assert "offline demo model" in answer
    assert isinstance(events[-1], Done)
    assert text_of(again).endswith("(3+4)*5 = **35**")  # the demo said it is one in its first answer only


def test_build_model_picks_the_demo_only_without_key_and_url() -> None:
    assert isinstance(build_model(AgentConfig(api_key=None, base_url=None)), DemoChatModel)
    assert isinstance(build_model(AgentConfig(api_key="", base_url="")), DemoChatModel)

    local = build_model(AgentConfig(api_key=None, base_url="http://127.0.0.1:11434/v1", model="llama3.2"))
    assert isinstance(local, ChatOpenAI)
    assert local.openai_api_key is not None
    assert local.openai_api_key.get_secret_value() == PLACEHOLDER_API_KEY
    assert (local.model_name, local.openai_api_base) == ("llama3.2", "http://127.0.0.1:11434/v1")

    hosted = build_model(AgentConfig(api_key="sk-x", base_url=None))
    assert isinstance(hosted, ChatOpenAI)
    assert hosted.streaming and hosted.stream_usage and hosted.use_responses_api is False
    assert hosted.max_retries == 2
