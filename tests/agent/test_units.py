"""Small pure pieces of the agent, and the import boundary of docs/architecture.md ("Layers")."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage

from agent import AgentConfig
from agent.errors import CONNECTION_LOST, COULD_NOT_CONNECT, GENERIC, describe_failure
from agent.middleware import tool_steps_this_run
from agent.run import CANCELLED_RESULT, answer_dangling_tool_calls
from agent.silence import SilenceWatch

AGENT_DIR = Path(__file__).resolve().parents[2] / "agent"


def call(call_id: str, name: str = "calculator") -> dict:
    return {"name": name, "args": {"expression": "1+1"}, "id": call_id}


def test_dangling_calls_are_answered_right_after_their_existing_results() -> None:
    history = [
        HumanMessage("go"),
        AIMessage("", tool_calls=[call("a"), call("b"), call("c")]),
        ToolMessage("2", tool_call_id="b"),
        HumanMessage("next"),
        AIMessage("", tool_calls=[call("d")]),
    ]

    repaired = answer_dangling_tool_calls(history)

    assert [(type(m).__name__, getattr(m, "tool_call_id", None)) for m in repaired] == [
        ("HumanMessage", None),
        ("AIMessage", None),
        ("ToolMessage", "b"),
        ("ToolMessage", "a"),
        ("ToolMessage", "c"),
        ("HumanMessage", None),
        ("AIMessage", None),
        ("ToolMessage", "d"),
    ]
    added = [m for m in repaired if isinstance(m, ToolMessage) and m.tool_call_id != "b"]
    assert all(m.status == "error" and m.content == CANCELLED_RESULT for m in added)


def test_a_dangling_call_is_answered_although_a_later_step_answered_the_same_id() -> None:
    """Servers that number calls per response send `call_1` on every turn: an id is matched within its step."""
    history = [
        HumanMessage("one"),
        AIMessage("", tool_calls=[call("call_1")]),
        ToolMessage("2", tool_call_id="call_1"),
        HumanMessage("two"),
        AIMessage("", tool_calls=[call("call_1")]),  # stopped mid-tool
        HumanMessage("three"),
        AIMessage("", tool_calls=[call("call_1")]),
        ToolMessage("2", tool_call_id="call_1"),
    ]

    repaired = answer_dangling_tool_calls(history)

    assert [type(m).__name__ for m in repaired] == [
        "HumanMessage", "AIMessage", "ToolMessage", "HumanMessage", "AIMessage", "ToolMessage", "HumanMessage",
        "AIMessage", "ToolMessage",
    ]  # fmt: skip
    assert repaired[5].tool_call_id == "call_1" and repaired[5].content == CANCELLED_RESULT


def test_a_stored_call_without_an_id_gets_one_and_is_answered() -> None:
    history = [HumanMessage("go"), AIMessage("", tool_calls=[{"name": "calculator", "args": {}, "id": None}])]

    repaired = answer_dangling_tool_calls(history)

    ai, answer = repaired[1], repaired[2]
    assert isinstance(ai, AIMessage) and isinstance(answer, ToolMessage)
    assert ai.tool_calls[0]["id"] and answer.tool_call_id == ai.tool_calls[0]["id"]


def test_a_complete_history_is_left_alone() -> None:
    history = [HumanMessage("go"), AIMessage("", tool_calls=[call("a")]), ToolMessage("2", tool_call_id="a")]
    assert answer_dangling_tool_calls(history) == history


def test_tool_steps_are_counted_since_the_last_user_message() -> None:
    history = [
        HumanMessage("one"),
        AIMessage("", tool_calls=[call("a")]),
        ToolMessage("2", tool_call_id="a"),
        AIMessage("done"),
        HumanMessage("two"),
        AIMessage("", tool_calls=[call("b")]),
        ToolMessage("2", tool_call_id="b"),
        AIMessage("", invalid_tool_calls=[{"name": "calculator", "args": "{", "id": "c", "error": None}]),
        ToolMessage("bad", tool_call_id="c"),
    ]
    assert tool_steps_this_run(history) == 2
    assert tool_steps_this_run(history[:5]) == 0


def _request() -> httpx.Request:
    return httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


def _status(cls: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    response = httpx.Response(status, request=_request(), json={"error": {"message": "sk-secret leaked"}})
    return cls("sk-secret leaked", response=response, body=None)


def _connect_failed() -> openai.APIConnectionError:
    """What the OpenAI client raises when nothing listens at the base URL: the refusal is in the causes."""
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as refused:
            raise httpx.ConnectError("All connection attempts failed") from refused
    except httpx.ConnectError as failed:
        error = openai.APIConnectionError(request=_request())
        error.__cause__ = failed
        return error


@pytest.mark.parametrize(
    ("exc", "notice"),
    [
        (openai.APIConnectionError(request=_request()), CONNECTION_LOST),
        (_connect_failed(), COULD_NOT_CONNECT),
        (openai.APITimeoutError(request=_request()), "The model took too long to answer."),
        (_status(openai.AuthenticationError, 401), "The model server rejected the API key."),
        (_status(openai.NotFoundError, 404), "The model server does not know this model (check LLM_MODEL)."),
        (_status(openai.RateLimitError, 429), "The model is rate-limited right now. Please try again in a moment."),
        (_status(openai.InternalServerError, 500), "The model server had an error (HTTP 500). Please try again."),
        (_status(openai.InternalServerError, 503), "The model server had an error (HTTP 503). Please try again."),
        (RuntimeError("sk-secret leaked"), GENERIC),
    ],
)
def test_failure_notices_are_short_and_never_echo_the_error(exc: Exception, notice: str) -> None:
    assert describe_failure(exc) == notice
    assert "sk-" not in describe_failure(exc)


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="step_limit"):
        AgentConfig(api_key=None, base_url=None, step_limit=-1)
    with pytest.raises(ValueError, match="tool_timeout"):
        AgentConfig(api_key=None, base_url=None, tool_timeout=0)
    assert AgentConfig(api_key=None, base_url=None).uses_demo
    assert not AgentConfig(api_key=None, base_url="http://127.0.0.1:11434/v1").uses_demo


def test_agent_imports_neither_bot_nor_channels_nor_tools() -> None:
    for path in AGENT_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in {"bot", "channels", "tools"}, f"{path.name} imports {name}"


def test_silence_deadlines_cover_the_model_call_only() -> None:
    """From the model task's start to its last chunk; never tools or the graph's bookkeeping after the answer."""
    model = {"langgraph_node": "model"}
    watch = SilenceWatch(first_token=60, idle=30)
    assert watch.deadline() is None  # the run has not called the model yet (history, checkpoints)

    watch.saw("tasks", {"name": "model", "input": {}}, now=100)
    assert watch.deadline() == 160
    watch.saw("messages", (AIMessageChunk(""), model), now=150)  # the role header: alive, but no first token
    assert watch.deadline() == 180 and not watch.started
    watch.saw("messages", (AIMessageChunk("Hello"), model), now=170)
    assert watch.deadline() == 200 and watch.started
    watch.saw("messages", (AIMessageChunk("", chunk_position="last"), model), now=171)
    assert watch.deadline() is None  # the answer is complete: checkpoint writes may take as long as they take

    watch.saw("tasks", {"name": "model", "input": {}}, now=300)  # the next call (after tools) starts afresh
    assert watch.deadline() == 360 and not watch.started
    watch.saw("tasks", {"name": "model", "result": {}}, now=301)
    assert watch.deadline() is None
