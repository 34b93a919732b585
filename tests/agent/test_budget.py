"""MEMORY_TOKEN_BUDGET: the request holds the newest whole turns that fit, the checkpoint holds everything."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately

from agent import AgentConfig, open_agent
from agent.budget import fit_to_budget
from tests.agent.conftest import collect, default_tools, text_of
from tests.doubles.openai_server import OpenAIDouble, Text, ToolCalls

MakeConfig = Callable[..., AgentConfig]
PROMPT = "You are a test bot."
SYSTEM = SystemMessage(PROMPT)


def turn(n: int, *, words: int = 20, tool_result_words: int | None = None) -> list[AnyMessage]:
    """A user question and its answer; with `tool_result_words`, a calculator call and its result in between."""
    messages: list[AnyMessage] = [HumanMessage(f"question {n} " + "word " * words, id=f"h{n}")]
    if tool_result_words is not None:
        call = {"name": "calculator", "args": {"expression": f"{n}+1"}, "id": f"call{n}"}
        messages.append(AIMessage("", tool_calls=[call], id=f"c{n}"))
        messages.append(ToolMessage(f"{n + 1} " + "digit " * tool_result_words, tool_call_id=f"call{n}", id=f"t{n}"))
    messages.append(AIMessage(f"answer {n} " + "word " * words, id=f"a{n}"))
    return messages


def tokens(messages: Sequence[AnyMessage], tools: Sequence[Any] | None = None) -> int:
    return count_tokens_approximately(messages, tools=list(tools) if tools else None)


def assert_no_orphans(messages: Sequence[AnyMessage]) -> None:
    """Every tool result follows the assistant message that asked for it, and every call is answered."""
    asked: set[str] = set()
    for message in messages:
        if isinstance(message, AIMessage):
            asked.update(call["id"] for call in message.tool_calls)
        if isinstance(message, ToolMessage):
            assert message.tool_call_id in asked, f"orphaned tool result {message.tool_call_id}"
    answered = {message.tool_call_id for message in messages if isinstance(message, ToolMessage)}
    assert asked <= answered


# -- the trimming itself ------------------------------------------------------------------------------------------


def test_a_history_within_the_budget_is_sent_whole() -> None:
    history = [*turn(1), *turn(2, tool_result_words=5), HumanMessage("now")]
    assert fit_to_budget(history, 10_000, system_message=SYSTEM) == history


def test_the_oldest_turns_go_first_and_the_request_fits() -> None:
    history = [*turn(1), *turn(2), *turn(3), *turn(4), HumanMessage("now")]
    budget = tokens([SYSTEM, *turn(3), *turn(4), HumanMessage("now")])

    sent = fit_to_budget(history, budget, system_message=SYSTEM)

    assert sent == [*turn(3), *turn(4), HumanMessage("now")]


def test_a_tool_result_is_never_sent_without_its_call() -> None:
    # A cut by messages would keep the long tool result and the answer, and drop the call they belong to.
    history = [*turn(1), *turn(2, tool_result_words=200), HumanMessage("now")]
    tool_result, answer = history[-3], history[-2]
    budget = tokens([SYSTEM, tool_result, answer, HumanMessage("now")]) + 2

    sent = fit_to_budget(history, budget, system_message=SYSTEM)

    assert sent == [HumanMessage("now")]


def test_the_current_turn_is_sent_even_when_it_alone_is_over_budget() -> None:
    current = turn(9, words=500, tool_result_words=500)[:-1]  # a run in progress: question, call, result
    history = [*turn(1), *current]

    assert fit_to_budget(history, 50, system_message=SYSTEM) == current


def test_the_tool_schemas_count_against_the_budget() -> None:
    history = [*turn(1), *turn(2), HumanMessage("now")]
    budget = tokens([SYSTEM, *history])

    assert fit_to_budget(history, budget, system_message=SYSTEM) == history
    assert fit_to_budget(history, budget, system_message=SYSTEM, tools=default_tools()) != history


turns_strategy = st.lists(
    st.tuples(st.integers(0, 60), st.one_of(st.none(), st.integers(0, 200))), min_size=0, max_size=12
)


@settings(max_examples=200, deadline=None)
@given(turns=turns_strategy, current_words=st.integers(0, 80), in_progress=st.booleans(), budget=st.integers(1, 3000))
def test_the_request_is_the_longest_run_of_whole_newest_turns_that_fits(
    turns: list[tuple[int, int | None]], current_words: int, in_progress: bool, budget: int
) -> None:
    history = [
        message for n, (words, tool) in enumerate(turns) for message in turn(n, words=words, tool_result_words=tool)
    ]
    current = turn(99, words=current_words, tool_result_words=3)[:-1] if in_progress else [HumanMessage("now")]
    messages = [*history, *current]

    sent = fit_to_budget(messages, budget, system_message=SYSTEM)

    assert sent == messages[len(messages) - len(sent) :], "a suffix of the history"
    assert sent[-len(current) :] == current, "the current turn whole"
    assert isinstance(sent[0], HumanMessage)
    assert_no_orphans(sent)
    if len(sent) > len(current):
        assert tokens([SYSTEM, *sent]) <= budget
    if len(sent) < len(messages):  # the next older turn would not have fitted
        dropped = messages[: len(messages) - len(sent)]
        start = max(i for i, m in enumerate(dropped) if isinstance(m, HumanMessage))
        assert tokens([SYSTEM, *dropped[start:], *sent]) > budget


# -- through the agent and the OpenAI double ----------------------------------------------------------------------


async def test_the_model_gets_the_newest_turns_and_the_checkpoint_keeps_all(
    llm: OpenAIDouble, make_config: MakeConfig
) -> None:
    history = [message for n in range(30) for message in turn(n, tool_result_words=40 if n % 3 == 0 else None)]
    config = make_config(llm, system_prompt=PROMPT, token_budget=700)
    llm.script(ToolCalls([("calculator", {"expression": "6*7"})], text_before="Let me work it out."), Text("42."))
    async with open_agent(config, default_tools()) as agent:
        thread = {"configurable": {"thread_id": "t"}}
        await agent.graph.aupdate_state(thread, {"messages": history}, as_node="model")
        events = await collect(agent.run("What is 6*7?", thread_id="t"))
        state = await agent.graph.aget_state(thread)

    assert text_of(events) == "Let me work it out.42."
    stored: list[AnyMessage] = state.values["messages"]
    assert stored[: len(history)] == history, "the checkpoint keeps every message"
    assert len(stored) == len(history) + 4  # question, tool call, tool result, answer
    for index, request in enumerate(llm.requests):  # the run's first model call, then the one after the tool
        sent = request["messages"]
        assert sent[0] == {"role": "system", "content": PROMPT}
        assert sent[1]["role"] == "user"
        assert 2 < len(sent) < len(history) / 2
        assert_no_orphans_in_request(sent)
        # What was sent is the newest of what was stored then, and it fits the budget (tool schemas included).
        stored_then = stored[: len(history) + 1 + 2 * index]
        newest = stored_then[len(stored_then) - (len(sent) - 1) :]
        assert [message.text for message in newest] == [message.get("content") or "" for message in sent[1:]]
        assert tokens([SYSTEM, *newest], default_tools()) <= config.token_budget
    assert llm.requests[0]["messages"][-1] == {"role": "user", "content": "What is 6*7?"}
    assert [m["role"] for m in llm.requests[1]["messages"][-3:]] == ["user", "assistant", "tool"]


def assert_no_orphans_in_request(messages: list[dict[str, Any]]) -> None:
    asked: set[str] = set()
    for message in messages:
        asked.update(call["id"] for call in message.get("tool_calls") or [])
        if message["role"] == "tool":
            assert message["tool_call_id"] in asked, f"orphaned tool message {message['tool_call_id']}"


def test_the_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="token_budget"):
        AgentConfig(api_key=None, base_url=None, token_budget=0)
