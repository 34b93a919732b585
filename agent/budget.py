"""Bound what one model request costs: the newest turns that fit a token budget go out, the rest stay stored.

A long conversation would otherwise send its whole history on every call, until the model's context window
rejects it. `TokenBudget` shortens the *request* only: the checkpoint keeps every message, so nothing is lost and
a larger budget later sends more of it again.

What is always sent: the system prompt and the current turn (the user's latest message and the tool calls and
results of this run so far), even when they alone pass the budget. Older history is dropped whole turns at a
time, oldest first, so the request still starts with a user message and no tool result loses the assistant
message that asked for it (OpenAI rejects both). Tokens are estimated at about four characters each, counting
the tool schemas too: no tokenizer is downloaded and nothing goes over the network.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.tools import BaseTool

log = logging.getLogger(__name__)


class TokenBudget(AgentMiddleware):
    """Send the model only the newest turns that fit `max_tokens` (see the module's docstring).

    Args:
        max_tokens: Estimated tokens one request may use (AgentConfig.token_budget).
    """

    def __init__(self, max_tokens: int) -> None:
        super().__init__()
        self.max_tokens = max_tokens

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        messages = fit_to_budget(
            request.messages, self.max_tokens, system_message=request.system_message, tools=request.tools
        )
        if len(messages) == len(request.messages):
            return await handler(request)
        log.debug(
            "sending %d of %d messages to fit the budget of %d tokens",
            len(messages),
            len(request.messages),
            self.max_tokens,
        )
        return await handler(request.override(messages=messages))


def fit_to_budget(
    messages: Sequence[AnyMessage],
    max_tokens: int,
    *,
    system_message: SystemMessage | None = None,
    tools: Sequence[BaseTool | dict[str, Any]] | None = None,
) -> list[AnyMessage]:
    """Return the newest whole turns of `messages` that fit `max_tokens`, and always the current turn.

    Args:
        messages: The history as the model would get it, without the system message.
        max_tokens: The estimated token budget for the whole request.
        system_message: Sent with every request, so it counts against the budget.
        tools: The tool schemas sent with the request, which count too.

    Returns:
        A suffix of `messages` that starts with a user message (or all of them, if they fit or if there is no
        user message to start from).
    """
    fixed: list[AnyMessage] = [system_message] if system_message is not None else []
    tool_list = list(tools) if tools else None
    if count_tokens_approximately([*fixed, *messages], tools=tool_list) <= max_tokens:
        return list(messages)
    current = _current_turn_start(messages)
    if current is None:
        return list(messages)
    left = max_tokens - count_tokens_approximately([*fixed, *messages[current:]], tools=tool_list)
    if left <= 0:
        return list(messages[current:])
    earlier = trim_messages(
        messages[:current],
        max_tokens=left,
        token_counter=count_tokens_approximately,
        strategy="last",
        start_on=HumanMessage,  # whole turns: never a tool result without the call it answers
        allow_partial=False,
    )
    return [*cast(list[AnyMessage], earlier), *messages[current:]]  # trim_messages returns what it was given


def _current_turn_start(messages: Sequence[AnyMessage]) -> int | None:
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return index
    return None
