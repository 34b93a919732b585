"""Tool calls without an id get one as soon as the model step ends, so the rest of the agent can answer them.

Some OpenAI-compatible servers send tool calls with no id at all. LangChain cannot answer such a call (a
ToolMessage needs the id of the call it answers), so without this the run fails at the tools step and every later
turn in the conversation fails on the stored history. Ids a server did send are kept exactly as they are, repeated
or not: the agent never relies on them being unique (agent/run.py knows a call by its step and position).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AIMessage


class CallIds(AgentMiddleware):
    """Give every tool call a model step returns an id, if the server sent none."""

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        response = await handler(request)
        result = [with_call_ids(message) if isinstance(message, AIMessage) else message for message in response.result]
        return ModelResponse(result=result, structured_response=response.structured_response)


def with_call_ids(message: AIMessage) -> AIMessage:
    """`message`, or a copy of it in which every tool call has an id (some servers send none).

    LangChain cannot answer a call without an id (a ToolMessage needs one) and OpenAI-compatible servers expect
    the id back, so a missing one is made up here. Ids the server sent are kept as they are, repeated or not.
    """
    if all(call.get("id") for call in [*message.tool_calls, *message.invalid_tool_calls]):
        return message
    return message.model_copy(
        update={
            "tool_calls": [{**call, "id": call.get("id") or _new_call_id()} for call in message.tool_calls],
            "invalid_tool_calls": [
                {**call, "id": call.get("id") or _new_call_id()} for call in message.invalid_tool_calls
            ],
        }
    )


def _new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"
