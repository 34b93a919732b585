"""The start-up check of the model: one request that tells a wrong setting from a working server.

A wrong OPENAI_BASE_URL, a refused OPENAI_API_KEY or an LLM_MODEL the server does not serve otherwise shows up only
when the first user asks something, as a notice in their chat. Asking once at start-up (`GET /models`, or a
one-token completion where a server does not list its models) names the setting to fix before anyone is answered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import openai

from agent.config import AgentConfig
from agent.model import PLACEHOLDER_API_KEY

logger = logging.getLogger(__name__)

OPENAI_URL = "https://api.openai.com/v1"


@dataclass(frozen=True, slots=True)
class ModelProblem:
    """What the check found wrong.

    Attributes:
        line: One line for the operator, naming the setting to fix.
        fatal: A setting is wrong (no reply can succeed): servers refuse to start. False for a server error or
            a timeout, which may pass.
    """

    line: str
    fatal: bool


async def check_model(config: AgentConfig, *, timeout: float = 10.0) -> ModelProblem | None:
    """Ask the configured model server whether it serves `config.model` with `config.api_key`.

    Returns:
        None when it does (or the offline demo answers), else the problem.
    """
    if config.uses_demo:
        return None
    where = _shown_url(config.base_url or OPENAI_URL)
    client = openai.AsyncOpenAI(
        api_key=config.api_key or PLACEHOLDER_API_KEY,
        base_url=config.base_url,
        timeout=openai.Timeout(timeout, connect=min(timeout, 5.0)),
        max_retries=0,
    )
    try:
        async with client:
            return await _ask(client, config.model, where)
    except openai.APITimeoutError:
        return ModelProblem(f"the model server at OPENAI_BASE_URL ({where}) did not answer within {timeout:g} s", False)
    except openai.APIConnectionError as exc:
        logger.warning("model check: %s", _cause(exc))
        return ModelProblem(f"cannot reach the model server at OPENAI_BASE_URL ({where}): {_cause(exc)}", True)
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        return ModelProblem(f"the model server at {where} refused OPENAI_API_KEY (HTTP {exc.status_code})", True)
    except openai.APIStatusError as exc:
        return ModelProblem(f"the model server at OPENAI_BASE_URL ({where}) answered HTTP {exc.status_code}", False)


async def _ask(client: openai.AsyncOpenAI, model: str, where: str) -> ModelProblem | None:
    try:
        served = [entry.id async for entry in client.models.list()]
    except openai.NotFoundError:
        served = None  # the server does not list its models: ask the model itself for one token
    except openai.APIStatusError as exc:
        if exc.status_code in (401, 403):
            raise
        served = None
    if served is not None:
        if model in served:
            return None
        sample = ", ".join(sorted(served)[:5]) + (", …" if len(served) > 5 else "")
        return ModelProblem(f"the model server at {where} does not serve LLM_MODEL={model} (it serves: {sample})", True)
    try:
        await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=1, stream=False
        )
    except openai.NotFoundError:
        return ModelProblem(
            f"the model server at {where} does not know LLM_MODEL={model}, or OPENAI_BASE_URL is not its API root "
            "(usually ending in /v1)",
            True,
        )
    return None


def _shown_url(url: str) -> str:
    """`url` without a user or password, which may be in it and must not be printed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _cause(exc: BaseException) -> str:
    """The innermost reason of a connection error, in a few words ("Connection refused", a DNS failure)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip() or type(exc).__name__
    return text.split("\n", 1)[0][:120]
