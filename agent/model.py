"""The chat model the agent talks to: any OpenAI-compatible server, or the offline demo.

One client covers OpenAI, Ollama, vLLM, LM Studio and OpenRouter because they all speak Chat Completions;
`use_responses_api=False` keeps it that way even for OpenAI, so streamed text and tool-call deltas look the same
everywhere.
"""

from __future__ import annotations

import openai
from langchain_core.language_models import BaseChatModel
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from agent.config import AgentConfig
from agent.demo import DemoChatModel

CONNECT_TIMEOUT = 10.0
READ_MARGIN = 30.0
"""The HTTP read timeout is the longest silence the run loop allows (agent/silence.py) plus this margin: the run
loop ends a silent reply itself, with a notice that names the cause, and the SDK's timeout (which it retries,
doubling the wait) is only a backstop that never fires first."""
MAX_RETRIES = 2
# Local servers (Ollama, LM Studio, vLLM without --api-key) ignore the key, but the OpenAI client insists on one.
PLACEHOLDER_API_KEY = "not-needed"


def build_model(config: AgentConfig) -> BaseChatModel:
    """Build the chat model for `config`.

    Args:
        config: With an API key and/or a base URL, a streaming ChatOpenAI client for that server; with neither,
            the offline `DemoChatModel`, so a fresh checkout answers something without any account.

    Returns:
        A chat model that streams tokens and supports `bind_tools`.
    """
    if config.uses_demo:
        return DemoChatModel(delay=config.demo_delay)
    return ChatOpenAI(
        model=config.model,
        api_key=SecretStr(config.api_key or PLACEHOLDER_API_KEY),
        base_url=config.base_url,
        streaming=True,
        # Non-OpenAI base URLs turn usage off by default; OpenAI-compatible servers mostly support it, and a
        # server that ignores stream_options just reports nothing (Usage stays 0).
        stream_usage=True,
        use_responses_api=False,
        timeout=openai.Timeout(
            max(config.first_token_timeout, config.idle_timeout) + READ_MARGIN, connect=CONNECT_TIMEOUT
        ),
        max_retries=MAX_RETRIES,
        # ChatOpenAI's per-chunk stall timer wraps every chunk read in asyncio.wait_for, which on Python 3.11
        # swallows a cancellation that lands while a chunk is ready: /stop would then wait for the whole answer
        # (or the stall timeout). The run loop's silence deadlines catch a stalled stream.
        stream_chunk_timeout=None,
    )


async def close_model(model: BaseChatModel) -> None:
    """Close the HTTP connections of a model built by `build_model`.

    ChatOpenAI's client keeps a connection pool open for its lifetime; nothing closes it when the model object is
    dropped, so the agent closes it when it shuts down.
    """
    if isinstance(model, ChatOpenAI) and model.root_async_client is not None:
        await model.root_async_client.close()
