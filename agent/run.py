"""The run loop: one user message in, the events of agent/events.py out, while the answer is written.

LangGraph is streamed with `stream_mode=["messages", "updates", "tasks"]`. Text comes from the `messages` stream
of the `model` node; tool calls come from the `updates` event of the `model` node, which LangGraph emits at the
end of the model's superstep and before it starts the tools superstep: the graph only advances when this generator
is resumed, so whoever consumes a `ToolCall` can finish the text shown so far before any tool runs. `tasks` says
when the model is called, so a model that goes silent is noticed (agent/silence.py).

Cancellation is part of the contract: closing the generator (or cancelling the task iterating it) closes the
LangGraph stream, which cancels the model call and with it the HTTP response. A run cancelled during a tool
leaves an assistant message whose tool calls have no answers; OpenAI rejects such a history, so each run first
answers those calls with a "cancelled" result.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, RemoveMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, StreamMode

from agent.approval import DENIED, decisions, requested_calls
from agent.call_ids import with_call_ids
from agent.config import AgentConfig
from agent.demo import TOOL_PAUSE, DemoChatModel, slowed
from agent.errors import describe_failure, failure_kind, silence_notice
from agent.events import (
    AgentEvent,
    ApprovalNeeded,
    Done,
    Failed,
    Picture,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
    UserContent,
)
from agent.graph import MODEL_NODE, TOOLS_NODE, build_graph, recursion_limit
from agent.memory import open_checkpointer
from agent.model import build_model, close_model
from agent.silence import SilenceWatch
from media.store import FileStore

log = logging.getLogger(__name__)
T = TypeVar("T")

INTERRUPT = "__interrupt__"
"""The `updates` key under which LangGraph reports a pause (an `interrupt`)."""
CANCELLED_RESULT = "Cancelled: the reply was stopped before this tool finished."
HISTORY_FAILURE = Failed("The conversation history could not be loaded. Please try again.", "history")
"""How a run ends when the conversation's checkpoint cannot be read (`_loaded`)."""


class Cut(enum.Enum):
    """What the checkpoint says of a run a crash cut short (`Agent.cut_run`)."""

    UNFINISHED = "unfinished"
    """The question (and whatever the run did) is stored and the run has more to do: `carry_on` finishes it."""
    FINISHED = "finished"
    """The run wrote its answer (the crash came after it): nothing to do again."""
    LOST = "lost"
    """Nothing to go on with: the thread is gone (reset, another database), or the question never reached it."""


class Agent:
    """Runs conversations, one reply at a time per `thread_id` (the caller serialises replies per thread).

    Args:
        graph: The compiled agent graph (see `agent.graph.build_graph`), with a checkpointer.
        checkpointer: The same checkpointer, used to forget threads.
        files: The conversations' files (images of user turns, pictures tools made), forgotten with them.
        is_demo: Whether the offline demo model answers; the bot may say so at start-up.
        step_limit: AgentConfig.step_limit, to size LangGraph's recursion limit so it never fires first.
        first_token_timeout: AgentConfig.first_token_timeout (see `agent.silence`).
        idle_timeout: AgentConfig.idle_timeout (see `agent.silence`).
        rebuild: Compiles the graph again for other tools (`use_tools`).
    """

    def __init__(
        self,
        graph: CompiledStateGraph,
        checkpointer: BaseCheckpointSaver,
        *,
        files: FileStore,
        is_demo: bool,
        step_limit: int,
        first_token_timeout: float = 60.0,
        idle_timeout: float = 30.0,
        rebuild: Callable[[Sequence[BaseTool]], CompiledStateGraph] | None = None,
    ) -> None:
        self.graph = graph
        self._rebuild = rebuild
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self.checkpointer = checkpointer
        self.files = files
        self.is_demo = is_demo
        self.recursion_limit = recursion_limit(step_limit)

    async def run(self, text: UserContent, *, thread_id: str) -> AsyncGenerator[AgentEvent, None]:
        """Answer the user's turn `text` in the conversation `thread_id`, streaming events as they happen.

        The last event is always exactly one `Done` or `Failed`, unless the consumer stops early: then close the
        generator (`aclose()`, or iterate it inside `contextlib.aclosing`) so the model's stream is closed now
        rather than when the generator is garbage-collected.

        Args:
            text: The user's message: a string, or OpenAI content parts (text and `image_url` parts, whose URLs
                may be references into `files`).
            thread_id: The conversation key (`telegram:<chat>`, `slack:<channel>:<thread_ts>`, ...).

        Yields:
            `TextDelta`s, `ToolCall`s (before their tools run), `ToolResult`s, then `Done` or `Failed`.
        """
        config = self._config(thread_id)
        history = await _loaded(thread_id, self._repair_history(config))
        if history is None:
            yield HISTORY_FAILURE
            return
        translator = _Translator(history)
        async with aclosing(self._stream({"messages": [HumanMessage(text)]}, config, translator)) as events:
            async for event in events:
                yield event

    async def resume(self, thread_id: str, *, approve: bool, reason: str = DENIED) -> AsyncGenerator[AgentEvent, None]:
        """Go on with the run of `thread_id` that paused for approval (`ApprovalNeeded`), from its checkpoint.

        The approved calls are announced first (`ToolCall`s, so the caller shows them running), then the run goes
        on as `run` streams it. A denied call is answered with `reason` as the tool's result, so the model answers
        without it. When nothing waits for approval there (the conversation was reset, or a new message already
        answered the calls as cancelled), it yields only `Done`.

        Args:
            thread_id: The conversation key.
            approve: The decision, for every call the run paused for.
            reason: Why the calls were not run, for the model (when `approve` is False).
        """
        config = self._config(thread_id)
        snapshot = await _loaded(thread_id, self.graph.aget_state(config))
        if snapshot is None:
            yield HISTORY_FAILURE
            return
        requested = requested_calls(snapshot.interrupts)
        if not requested:
            log.info("%s: nothing waits for approval; not resumed", thread_id)
            yield Done()
            return
        history: list[BaseMessage] = list((snapshot.values or {}).get("messages", []))
        translator = _Translator(history)
        gated = {call["name"] for call in requested}
        for event in translator.reopen(history, skip=set() if approve else gated):
            yield event
        command: Command[Any] = Command(resume=decisions(len(requested), approve=approve, reason=reason))
        async with aclosing(self._stream(command, config, translator)) as events:
            async for event in events:
                yield event

    async def cut_run(self, thread_id: str, *, since: float) -> tuple[Cut, str]:
        """What became of the run of `thread_id` that a crash cut short, by its last checkpoint; with FINISHED,
        the text of the answer's last model step (what its last message shows, unless it was split), else "".

        Args:
            thread_id: The conversation key.
            since: When the cut reply started (`time.time()`): a checkpoint older than that is an earlier turn's,
                so the question of the cut one never reached the memory.
        """
        snapshot = await self.graph.aget_state(self._config(thread_id))
        messages: list[BaseMessage] = list((snapshot.values or {}).get("messages", []))
        if not messages:
            return Cut.LOST, ""
        if snapshot.next:  # a superstep to run (the model's, the tools'), or an approval to ask again
            return Cut.UNFINISHED, ""
        created = datetime.fromisoformat(snapshot.created_at).timestamp() if snapshot.created_at else 0.0
        if created < since:
            return Cut.LOST, ""
        last = messages[-1]
        if isinstance(last, AIMessage) and not _calls_of(last):
            return Cut.FINISHED, last.text
        return Cut.UNFINISHED, ""

    async def carry_on(self, thread_id: str) -> AsyncGenerator[AgentEvent, None]:
        """Go on with the run of `thread_id` that a crash cut short (`cut_run` said UNFINISHED), from its last
        checkpoint, streamed as `run` streams a run: the step that was cut is done again (the model asked again
        with the stored question, a tool that was running run again), then the rest.

        A run cut between the model asking for tools and the tools' superstep leaves no step to run: its calls
        are answered as cancelled (as at the next turn after a /stop), and the model goes on from there.
        """
        config = self._config(thread_id)
        snapshot = await _loaded(thread_id, self.graph.aget_state(config))
        if snapshot is None:
            yield HISTORY_FAILURE
            return
        history: list[BaseMessage] | None = list((snapshot.values or {}).get("messages", []))
        if not snapshot.next:  # no step left to run: calls the crash left unanswered are answered as cancelled
            history = await _loaded(thread_id, self._repair_history(config))
        if history is None:
            yield HISTORY_FAILURE
            return
        translator = _Translator(history)
        gated = {call["name"] for call in requested_calls(snapshot.interrupts)}  # asked for again, not run yet
        for event in translator.reopen(history, skip=gated):  # the calls that run again, if the tools' step was cut
            yield event
        async with aclosing(self._stream(None, config, translator)) as events:
            async for event in events:
                yield event

    def _config(self, thread_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": self.recursion_limit}

    async def _stream(
        self, graph_input: Any, config: RunnableConfig, translator: _Translator
    ) -> AsyncGenerator[AgentEvent, None]:
        """Stream the graph from `graph_input` (a user's turn, or a resume `Command`) as events, `Done` or `Failed`
        last."""
        thread_id = config["configurable"]["thread_id"]
        clock = asyncio.get_running_loop()
        watch = SilenceWatch(self.first_token_timeout, self.idle_timeout)
        # `tasks`: when the model is called, for the silence deadlines; `custom`: a middleware's notice (pictures)
        modes: list[StreamMode] = ["messages", "updates", "tasks", "custom"]
        stream = cast(  # an async generator, typed by langgraph as the AsyncIterator it promises
            AsyncGenerator[tuple[str, Any], None],
            self.graph.astream(graph_input, config, stream_mode=modes),
        )
        try:
            async with aclosing(stream):
                while True:
                    # Only the wait for the stream is timed, never the consumer's work between items.
                    timer = asyncio.timeout_at(watch.deadline())
                    try:
                        async with timer:
                            mode, payload = await anext(stream)
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        if not timer.expired():
                            raise
                        log.warning("model silent in %s (started: %s); reply ended", thread_id, watch.started)
                        yield Failed(silence_notice(watch), "stalled" if watch.started else "silent")
                        return
                    watch.saw(mode, payload, clock.time())
                    for event in translator.feed(mode, payload):
                        yield event
        except Exception as exc:
            log.error("run in %s failed: %s", thread_id, type(exc).__name__, exc_info=exc)
            yield Failed(describe_failure(exc), failure_kind(exc))
            return
        yield Done(translator.usage)

    def use_tools(self, tools: Sequence[BaseTool]) -> None:
        """Offer `tools` from the next run on: a graph's tools are fixed when it is compiled, so it is compiled
        again (same model, memory and middleware); runs in progress finish with the graph they started with."""
        if self._rebuild is None:
            raise RuntimeError("this agent was built without a way to rebuild its graph")
        self.graph = self._rebuild(tools)

    async def reset(self, thread_id: str) -> None:
        """Forget the conversation `thread_id` and its files; its next run starts with an empty history."""
        await self.checkpointer.adelete_thread(thread_id)
        await asyncio.to_thread(self.files.forget, thread_id)

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


async def _loaded(thread_id: str, reading: Awaitable[T]) -> T | None:
    """What `reading` (of the checkpoint of `thread_id`) returns, or None, logged, when it fails: the run then ends
    with HISTORY_FAILURE rather than an exception the user would never see explained."""
    try:
        return await reading
    except Exception:
        log.exception("could not load the history of %s", thread_id)
        return None


def answer_dangling_tool_calls(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """Return `messages` with a "cancelled" error result after every tool call that has none.

    A call's results are the tool messages right after its assistant message, matched by id there and nowhere else:
    servers that number calls per response send `call_1` on every turn, so an id answered in one turn says nothing
    about the same id in another. Each answer goes right after its step's existing results, where OpenAI expects
    it. A call stored without an id (from before ids were filled in) gets one, so it can be answered at all.
    """
    repaired: list[BaseMessage] = []
    step: AIMessage | None = None  # the assistant message whose results are being read
    answered: set[str] = set()
    for message in [*messages, None]:
        if isinstance(message, ToolMessage) and step is not None:
            answered.add(message.tool_call_id)
            repaired.append(message)
            continue
        if step is not None:
            repaired.extend(_cancelled(call) for call in _calls_of(step) if call["id"] not in answered)
            step = None
        if message is None:
            break
        if isinstance(message, AIMessage) and _calls_of(message):
            message = with_call_ids(message)
            step, answered = message, set()
        repaired.append(message)
    return repaired


def _calls_of(message: AIMessage) -> list[Any]:
    return [*message.tool_calls, *message.invalid_tool_calls]


def _cancelled(call: Any) -> ToolMessage:
    return ToolMessage(
        content=CANCELLED_RESULT, tool_call_id=call["id"], name=call.get("name") or "unknown", status="error"
    )


@dataclass(slots=True)
class _OpenCall:
    """A call of the current model step that has no result yet."""

    model_id: str | None  # the server's id: only good for matching results within the step
    key: str  # the call's name in events: its step and position, unique within the run
    name: str


class _Translator:
    """Turns LangGraph stream items into AgentEvents, exactly once each.

    A tool call is known by the model step that carried it and its position there, never by its id alone: several
    servers number calls per response (`call_1` on every turn) and some send no id. The server's id only matches
    a result to its call within the step.
    """

    def __init__(self, history: Sequence[BaseMessage]) -> None:
        self._known_ids = {message.id for message in history if message.id}
        self._steps = 0  # model steps of this run that asked for tools
        self._open: list[_OpenCall] = []
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
        if mode == "custom":  # a middleware's word to the user (agent.pictures), ahead of the model's text
            notice = payload.get("notice") if isinstance(payload, dict) else None
            return [TextDelta(notice)] if isinstance(notice, str) and notice else []
        if mode == "updates":
            events: list[AgentEvent] = []
            for node, update in payload.items():
                if node == INTERRUPT:  # the run pauses here for approval (agent/approval.py)
                    calls = requested_calls(update if isinstance(update, Sequence) else [update])
                    events.append(ApprovalNeeded(tuple(ToolCall("", c["name"], c["args"]) for c in calls)))
                    continue
                for message in _messages_of(update):
                    events.extend(self._message(node, message))
            return events
        return []

    def reopen(self, history: Sequence[BaseMessage], *, skip: set[str]) -> list[AgentEvent]:
        """Take up the calls of the paused step (the last assistant message's calls that have no result yet), but
        those to tools named in `skip` (denied: they are answered without running); returns their `ToolCall`s."""
        at = next((i for i in range(len(history) - 1, -1, -1) if isinstance(history[i], AIMessage)), None)
        if at is None:
            return []
        step = cast(AIMessage, history[at])
        answered = {m.tool_call_id for m in history[at + 1 :] if isinstance(m, ToolMessage)}
        self._steps += 1
        self._open = []
        events: list[AgentEvent] = []
        for position, call in enumerate(step.tool_calls):
            if call["id"] in answered or call["name"] in skip:
                continue
            self._open.append(_OpenCall(call["id"], f"{self._steps}.{position}", call["name"]))
            events.append(ToolCall(self._open[-1].key, call["name"], dict(call["args"]), approved=True))
        return events

    def _message(self, node: str, message: BaseMessage) -> list[AgentEvent]:
        if message.id is not None and message.id in self._known_ids:
            return []  # history re-sent by a node that rewrote the message list
        if message.id is not None:
            self._known_ids.add(message.id)
        if isinstance(message, ToolMessage):
            return self._result(message)
        if not isinstance(message, AIMessage) or node != MODEL_NODE:
            return []
        events: list[AgentEvent] = self._unstreamed_text(message)
        if usage := message.usage_metadata:
            self._input_tokens += usage.get("input_tokens", 0)
            self._output_tokens += usage.get("output_tokens", 0)
        calls = [(call["id"], call["name"], call["args"]) for call in message.tool_calls]
        calls += [(bad.get("id"), bad.get("name") or "unknown", {}) for bad in message.invalid_tool_calls]
        if calls:
            self._steps += 1
            self._open = []
            for position, (model_id, name, args) in enumerate(calls):
                self._open.append(_OpenCall(model_id, f"{self._steps}.{position}", name))
                events.append(ToolCall(self._open[-1].key, name, dict(args)))
        return events

    def _result(self, message: ToolMessage) -> list[AgentEvent]:
        """The result of an open call of this step (the first one with the message's id), else nothing."""
        for position, call in enumerate(self._open):
            if call.model_id == message.tool_call_id:
                del self._open[position]
                name = message.name or call.name
                ok = message.status != "error"
                return [ToolResult(call.key, name, message.text, ok=ok, pictures=_pictures(message.artifact))]
        return []

    def _unstreamed_text(self, message: AIMessage) -> list[AgentEvent]:
        """Text of a finished model call that was not streamed (a non-streaming model, a middleware's words)."""
        shown, self._step_text = self._step_text, ""
        text = message.text
        if len(text) > len(shown) and text.startswith(shown):
            return [TextDelta(text[len(shown) :])]
        return []


def _pictures(artifact: Any) -> tuple[Picture, ...]:
    """The images a tool's artifact names (`{"pictures": [{"ref": ..., "caption": ...}]}`, as tools.chart makes)."""
    found = artifact.get("pictures") if isinstance(artifact, dict) else None
    if not isinstance(found, list):
        return ()
    return tuple(
        Picture(str(item["ref"]), str(item.get("caption") or ""))
        for item in found
        if isinstance(item, dict) and item.get("ref")
    )


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
    is_demo = isinstance(chat_model, DemoChatModel)
    slow = is_demo and config.demo_delay > 0  # (tests set no delay: they want the demo fast)
    try:
        async with open_checkpointer(config.data_dir, config.database_url) as checkpointer:
            files = FileStore(config.files_dir)

            def rebuild(tools: Sequence[BaseTool]) -> CompiledStateGraph:
                return build_graph(
                    chat_model, slowed(tools, TOOL_PAUSE) if slow else tools, config, checkpointer, files
                )

            yield Agent(
                rebuild(tools),
                checkpointer,
                files=files,
                is_demo=is_demo,
                step_limit=config.step_limit,
                first_token_timeout=config.first_token_timeout,
                idle_timeout=config.idle_timeout,
                rebuild=rebuild,
            )
    finally:
        if model is None:  # a model passed in belongs to the caller
            await close_model(chat_model)
