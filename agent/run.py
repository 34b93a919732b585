"""The run loop: one user message in, the events of agent/events.py out, while the answer is written.

LangGraph is streamed with `stream_mode=["messages", "updates"]`. Text comes from the `messages` stream of the
`model` node; tool calls come from the `updates` event of the `model` node, which LangGraph emits at the end of
the model's superstep and before it starts the tools superstep: the graph only advances when this generator is
resumed, so whoever consumes a `ToolCall` can finish the text shown so far before any tool runs.

Cancellation is part of the contract: closing the generator (or cancelling the task iterating it) closes the
LangGraph stream, which cancels the model call and with it the HTTP response. A run cancelled during a tool
leaves an assistant message whose tool calls have no answers; OpenAI rejects such a history, so each run first
answers those calls with a "cancelled" result.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import Any, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, RemoveMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.graph.state import CompiledStateGraph

from agent.config import AgentConfig
from agent.demo import DemoChatModel
from agent.errors import describe_failure
from agent.events import AgentEvent, Done, Failed, TextDelta, ToolCall, ToolResult, Usage
from agent.graph import MODEL_NODE, TOOLS_NODE, build_graph, recursion_limit
from agent.memory import open_checkpointer
from agent.model import build_model, close_model

log = logging.getLogger(__name__)

CANCELLED_RESULT = "Cancelled: the reply was stopped before this tool finished."
HISTORY_FAILED = "The conversation history could not be loaded. Please try again."


class Agent:
    """Runs conversations, one reply at a time per `thread_id` (the caller serialises replies per thread).

    Args:
        graph: The compiled agent graph (see `agent.graph.build_graph`), with a checkpointer.
        checkpointer: The same checkpointer, used to forget threads.
        is_demo: Whether the offline demo model answers; the bot may say so at start-up.
        step_limit: AgentConfig.step_limit, to size LangGraph's recursion limit so it never fires first.
    """

    def __init__(
        self,
        graph: CompiledStateGraph,
        checkpointer: BaseCheckpointSaver,
        *,
        is_demo: bool,
        step_limit: int,
    ) -> None:
        self.graph = graph
        self.checkpointer = checkpointer
        self.is_demo = is_demo
        self.recursion_limit = recursion_limit(step_limit)

    async def run(self, text: str, *, thread_id: str) -> AsyncGenerator[AgentEvent, None]:
        """Answer `text` in the conversation `thread_id`, streaming events as they happen.

        The last event is always exactly one `Done` or `Failed`, unless the consumer stops early: then close the
        generator (`aclose()`, or iterate it inside `contextlib.aclosing`) so the model's stream is closed now
        rather than when the generator is garbage-collected.

        Args:
            text: The user's message.
            thread_id: The conversation key (`telegram:<chat>`, `slack:<channel>:<thread_ts>`, ...).

        Yields:
            `TextDelta`s, `ToolCall`s (before their tools run), `ToolResult`s, then `Done` or `Failed`.
        """
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}, "recursion_limit": self.recursion_limit}
        try:
            history = await self._repair_history(config)
        except Exception:
            log.exception("could not load the history of %s", thread_id)
            yield Failed(HISTORY_FAILED)
            return
        translator = _Translator(history)
        stream = cast(  # an async generator, typed by langgraph as the AsyncIterator it promises
            AsyncGenerator[tuple[str, Any], None],
            self.graph.astream({"messages": [HumanMessage(text)]}, config, stream_mode=["messages", "updates"]),
        )
        try:
            async with aclosing(stream):
                async for mode, payload in stream:
                    for event in translator.feed(mode, payload):
                        yield event
        except Exception as exc:
            log.error("run in %s failed: %s", thread_id, type(exc).__name__, exc_info=exc)
            yield Failed(describe_failure(exc))
            return
        yield Done(translator.usage)

    async def reset(self, thread_id: str) -> None:
        """Forget the conversation `thread_id`; its next run starts with an empty history."""
        await self.checkpointer.adelete_thread(thread_id)

    async def _repair_history(self, config: RunnableConfig) -> list[BaseMessage]:
        """Answer tool calls a cancelled run left unanswered, and return the (repaired) history."""
        snapshot = await self.graph.aget_state(config)
        messages: list[BaseMessage] = list((snapshot.values or {}).get("messages", []))
        repaired = answer_dangling_tool_calls(messages)
        if len(repaired) == len(messages):
            return messages
        log.info("answering %d tool call(s) left by a cancelled run", len(repaired) - len(messages))
        if all(old is new for old, new in zip(messages, repaired, strict=False)):
            update: list[BaseMessage] = repaired[len(messages) :]
        else:  # the gap is not at the end: rewrite the history so each answer follows its call
            update = [RemoveMessage(id=REMOVE_ALL_MESSAGES), *repaired]
        await self.graph.aupdate_state(config, {"messages": update}, as_node=TOOLS_NODE)
        return repaired


def answer_dangling_tool_calls(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """Return `messages` with a "cancelled" error result after every tool call that has none.

    Each answer goes right after its assistant message's existing tool results, where OpenAI expects it.
    """
    answered = {message.tool_call_id for message in messages if isinstance(message, ToolMessage)}
    repaired: list[BaseMessage] = []
    owed: list[BaseMessage] = []
    for message in messages:
        if owed and not isinstance(message, ToolMessage):
            repaired.extend(owed)
            owed = []
        repaired.append(message)
        if isinstance(message, AIMessage):
            calls = [*message.tool_calls, *message.invalid_tool_calls]
            owed = [
                ToolMessage(
                    content=CANCELLED_RESULT,
                    tool_call_id=call["id"],
                    name=call.get("name") or "unknown",
                    status="error",
                )
                for call in calls
                if call.get("id") and call["id"] not in answered
            ]
    repaired.extend(owed)
    return repaired


class _Translator:
    """Turns LangGraph stream items into AgentEvents, exactly once each."""

    def __init__(self, history: Sequence[BaseMessage]) -> None:
        self._known_ids = {message.id for message in history if message.id}
        self._announced = {
            call["id"]
            for message in history
            if isinstance(message, AIMessage)
            for call in [*message.tool_calls, *message.invalid_tool_calls]
            if call.get("id")
        }
        self._answered = {message.tool_call_id for message in history if isinstance(message, ToolMessage)}
        self._names: dict[str, str] = {}
        self._step_text = ""  # text streamed by the model call in progress
        self._input_tokens = 0
        self._output_tokens = 0

    @property
    def usage(self) -> Usage:
        return Usage(input_tokens=self._input_tokens, output_tokens=self._output_tokens)

    def feed(self, mode: str, payload: Any) -> list[AgentEvent]:
        if mode == "messages":
            message, metadata = payload
            # Only chunks: a whole AIMessage here repeats text that was not streamed, which the `updates`
            # event below supplies in the right order anyway.
            is_model_text = isinstance(message, AIMessageChunk) and metadata.get("langgraph_node") == MODEL_NODE
            if is_model_text and (text := message.text):
                self._step_text += text
                return [TextDelta(text)]
            return []
        if mode == "updates":
            events: list[AgentEvent] = []
            for node, update in payload.items():
                for message in _messages_of(update):
                    events.extend(self._message(node, message))
            return events
        return []

    def _message(self, node: str, message: BaseMessage) -> list[AgentEvent]:
        if message.id is not None and message.id in self._known_ids:
            return []  # history re-sent by a node that rewrote the message list
        if message.id is not None:
            self._known_ids.add(message.id)
        if isinstance(message, ToolMessage):
            if message.tool_call_id in self._answered:
                return []
            self._answered.add(message.tool_call_id)
            name = message.name or self._names.get(message.tool_call_id, "unknown")
            return [ToolResult(message.tool_call_id, name, message.text, ok=message.status != "error")]
        if not isinstance(message, AIMessage) or node != MODEL_NODE:
            return []
        events: list[AgentEvent] = self._unstreamed_text(message)
        if usage := message.usage_metadata:
            self._input_tokens += usage.get("input_tokens", 0)
            self._output_tokens += usage.get("output_tokens", 0)
        for call in message.tool_calls:
            events.extend(self._announce(call["id"], call["name"], call["args"]))
        for bad in message.invalid_tool_calls:
            events.extend(self._announce(bad.get("id"), bad.get("name") or "unknown", {}))
        return events

    def _unstreamed_text(self, message: AIMessage) -> list[AgentEvent]:
        """Text of a finished model call that was not streamed (a non-streaming model, a middleware's words)."""
        shown, self._step_text = self._step_text, ""
        text = message.text
        if len(text) > len(shown) and text.startswith(shown):
            return [TextDelta(text[len(shown) :])]
        return []

    def _announce(self, call_id: str | None, name: str, args: dict[str, Any]) -> list[AgentEvent]:
        if not call_id or call_id in self._announced:
            return []
        self._announced.add(call_id)
        self._names[call_id] = name
        return [ToolCall(call_id, name, dict(args))]


def _messages_of(update: Any) -> list[BaseMessage]:
    """The messages a node wrote, whatever shape its update has (dict, list of dicts, None)."""
    if isinstance(update, dict):
        found = update.get("messages")
        if isinstance(found, BaseMessage):
            return [found]
        if isinstance(found, Sequence) and not isinstance(found, str):
            return [message for message in found if isinstance(message, BaseMessage)]
        return []
    if isinstance(update, Sequence) and not isinstance(update, str):
        return [message for part in update for message in _messages_of(part)]
    return []


@asynccontextmanager
async def open_agent(
    config: AgentConfig,
    tools: Sequence[BaseTool],
    *,
    model: BaseChatModel | None = None,
) -> AsyncIterator[Agent]:
    """Open the agent for the lifetime of the bot: the model, the memory and the graph.

    Args:
        config: The agent's settings.
        tools: The tools the model may call (the bot passes `tools.default_tools()`).
        model: A chat model to use instead of the one `config` describes (tests, experiments).

    Yields:
        The `Agent`; the conversation store is closed on exit.

    Raises:
        MemoryUnavailable: The conversation store (SQLite or Postgres) cannot be opened.
    """
    chat_model = model if model is not None else build_model(config)
    try:
        async with open_checkpointer(config.data_dir, config.database_url) as checkpointer:
            graph = build_graph(chat_model, tools, config, checkpointer)
            yield Agent(
                graph,
                checkpointer,
                is_demo=isinstance(chat_model, DemoChatModel),
                step_limit=config.step_limit,
            )
    finally:
        if model is None:  # a model passed in belongs to the caller
            await close_model(chat_model)
