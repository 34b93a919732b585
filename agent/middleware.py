"""The agent's guard rails, as `create_agent` middleware: every run ends in an answer, no tool can sink it.

`StepLimit` turns "too many tool steps" into a final answer instead of LangGraph's GraphRecursionError: after
`limit` tool-using model calls in one run, the next call is made without tools and told to answer now.
`ToolGuard` bounds each tool call by a timeout (the tool's own `metadata["timeout"]` where it has one, as MCP
servers may) and turns every way a tool call can go wrong (it raises, it hangs, its name is unknown, its arguments
are not JSON) into an error `ToolMessage` the model can read, so the run continues and the OpenAI history stays
valid (every tool call answered).

Both implement only the async hooks: the agent is only ever run with `astream`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ModelRequest,
    ModelResponse,
    ToolCallRequest,
    hook_config,
)
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime
from langgraph.types import Command

log = logging.getLogger(__name__)

FINAL_INSTRUCTION = (
    "You have used every tool step allowed for this reply. Do not call tools now: answer the user with what "
    "you have, and say briefly what is still missing, if anything."
)
STOPPED_TEXT = "I had to stop here: this question needed more tool steps than I may use for one reply."
_MAX_ERROR_CHARS = 300


def tool_steps_this_run(messages: Sequence[BaseMessage]) -> int:
    """Count the model calls since the user's last message that asked for tools.

    Counting in the history (rather than in middleware state) keeps the limit per run without any bookkeeping:
    every run starts with a HumanMessage.
    """
    steps = 0
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            break
        if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
            steps += 1
    return steps


class StepLimit(AgentMiddleware):
    """After `limit` tool-using model calls in a run, make the next call without tools.

    Args:
        limit: Tool-using model calls allowed per run (AgentConfig.step_limit).
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        if tool_steps_this_run(request.messages) < self.limit:
            return await handler(request)
        prompt = request.system_prompt
        instruction = f"{prompt}\n\n{FINAL_INSTRUCTION}" if prompt else FINAL_INSTRUCTION
        final = request.override(tools=[], tool_choice=None, system_message=SystemMessage(content=instruction))
        response = await handler(final)
        # A model without tools cannot call one, but a confused server might still send a call; answering it
        # would need another tool step, so it is dropped and the run ends here.
        return ModelResponse(
            result=[_without_tool_calls(message) for message in response.result],
            structured_response=response.structured_response,
        )


def _without_tool_calls(message: BaseMessage) -> BaseMessage:
    if not isinstance(message, AIMessage) or not (message.tool_calls or message.invalid_tool_calls):
        return message
    log.warning("model asked for tools after the step limit; dropping %d call(s)", len(message.tool_calls))
    extra = {k: v for k, v in message.additional_kwargs.items() if k not in ("tool_calls", "function_call")}
    content = message.content
    if not content:
        content = STOPPED_TEXT
    elif isinstance(content, str):  # "Let me look that up." must not be the last word
        content = f"{content}\n\n{STOPPED_TEXT}"
    return message.model_copy(
        update={
            "content": content,
            "tool_calls": [],
            "invalid_tool_calls": [],
            "tool_call_chunks": [],
            "additional_kwargs": extra,
        }
    )


class ToolGuard(AgentMiddleware):
    """Bound every tool call in time and turn its failures into error results for the model.

    Args:
        timeout: Seconds one tool call may take (AgentConfig.tool_timeout).
        tool_names: The tools the agent has, named in the reply to an unknown tool.
    """

    def __init__(self, timeout: float, tool_names: Iterable[str]) -> None:
        super().__init__()
        self.timeout = timeout
        self.tool_names = sorted(tool_names)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        call = request.tool_call
        name = call["name"]
        if request.tool is None:
            available = ", ".join(self.tool_names) or "none"
            return _error(call, f"Error: there is no tool named '{name}'. Available tools: {available}.")
        timeout = (request.tool.metadata or {}).get("timeout") or self.timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            # asyncio.timeout rather than wait_for: on Python 3.11 wait_for can swallow a cancellation (/stop).
            async with asyncio.timeout_at(deadline):
                result = await handler(request)
            if loop.time() <= deadline:
                return result
            # The tool held the loop past its deadline (CPU work between two awaits), so the cancellation could
            # not land: what it returned came too late to count, as for any other tool over its time.
        except TimeoutError:
            pass
        except GraphBubbleUp:
            raise
        except Exception as exc:
            log.warning("tool %s failed", name, exc_info=True)
            return _error(call, f"Error: the tool '{name}' failed: {_describe(exc)}")
        log.warning("tool %s timed out after %g s", name, timeout)
        return _error(call, f"Error: the tool '{name}' did not finish within {timeout:g} s and was stopped.")

    @hook_config(can_jump_to=["model"])
    async def aafter_model(self, state: AgentState, runtime: Runtime) -> dict[str, Any] | None:
        """Answer tool calls whose arguments were not valid JSON, so the model can try again.

        LangChain parks such calls in `invalid_tool_calls`, which the agent loop does not route to the tools
        step: without this, the run would end silently with no answer.
        """
        messages: list[AnyMessage] = state["messages"]
        last = messages[-1] if messages else None
        if not isinstance(last, AIMessage) or not last.invalid_tool_calls:
            return None
        replies = [
            ToolMessage(
                content=(
                    f"Error: the arguments for '{bad.get('name') or 'unknown'}' were not a valid JSON object. "
                    "Call the tool again with valid JSON arguments."
                ),
                tool_call_id=bad["id"],
                name=bad.get("name") or "unknown",
                status="error",
            )
            for bad in last.invalid_tool_calls
            if bad.get("id")
        ]
        if not replies:
            return None
        update: dict[str, Any] = {"messages": replies}
        if not last.tool_calls:
            update["jump_to"] = "model"
        return update


def _error(call: ToolCall, content: str) -> ToolMessage:
    return ToolMessage(content=content, tool_call_id=call["id"], name=call["name"], status="error")


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no details"
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"
