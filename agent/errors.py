"""Turn a failed model call into one short sentence a user may see.

Notices never contain the exception's text: provider messages can echo request details (a key prefix, a URL
with credentials, the prompt). The full exception goes to the log instead. LangChain maps every provider's
errors onto `langchain_core.exceptions.ModelError` subclasses, so matching those covers OpenAI, Ollama, vLLM
and the rest alike; the OpenAI SDK's and Python's own classes are the fallback for errors raised outside that
mapping (a stalled stream raises TimeoutError, for one).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import openai
from langchain_core.exceptions import (
    ContextOverflowError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelPermissionDeniedError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from langgraph.errors import GraphRecursionError

if TYPE_CHECKING:
    from agent.silence import SilenceWatch

GENERIC = "Something went wrong while answering. Please try again."
COULD_NOT_CONNECT = "Could not connect to the model server. Please try again later."
CONNECTION_LOST = "The connection to the model server was lost mid-answer."

# Most specific first: several of these classes inherit from one another. Each row: the classes, the notice, and
# the kind (a short label for the `livebot_model_errors_total` metric).
_NOTICES: tuple[tuple[tuple[type[BaseException], ...], str, str], ...] = (
    (
        (ContextOverflowError,),
        "The conversation is too long for the model. Reset it to start over (help lists the commands).",
        "context_overflow",
    ),
    ((ModelTimeoutError, openai.APITimeoutError, TimeoutError), "The model took too long to answer.", "timeout"),
    (
        (ModelConnectionError, openai.APIConnectionError, ConnectionError),
        CONNECTION_LOST,  # or COULD_NOT_CONNECT: see describe_failure
        "connection",
    ),
    ((ModelAuthenticationError, openai.AuthenticationError), "The model server rejected the API key.", "auth"),
    (
        (ModelPermissionDeniedError, openai.PermissionDeniedError),
        "The model server refused access to this model.",
        "permission",
    ),
    (
        (ModelNotFoundError, openai.NotFoundError),
        "The model server does not know this model (check LLM_MODEL).",
        "not_found",
    ),
    (
        (ModelRateLimitError, openai.RateLimitError),
        "The model is rate-limited right now. Please try again in a moment.",
        "rate_limited",
    ),
    ((ModelInvalidRequestError, openai.BadRequestError), "The model server rejected the request.", "bad_request"),
    (
        (ModelAPIError, openai.APIStatusError),
        "The model server had an error ({status}). Please try again.",
        "server_error",
    ),
    ((GraphRecursionError,), "The answer took too many steps and was stopped.", "too_many_steps"),
)


def failure_kind(exc: BaseException) -> str:
    """A short label for what went wrong (`timeout`, `auth`, `connection`, ...; `other` when none fits)."""
    return next((kind for classes, _, kind in _NOTICES if isinstance(exc, classes)), "other")


def describe_failure(exc: BaseException) -> str:
    """Return a short notice for `exc`, safe to show a user (no secrets, no traceback)."""
    for kinds, notice, _ in _NOTICES:
        if isinstance(exc, kinds):
            if notice is CONNECTION_LOST and _never_connected(exc):
                return COULD_NOT_CONNECT
            status = getattr(exc, "status_code", None)
            return notice.format(status=f"HTTP {status}" if isinstance(status, int) else "no details")
    return GENERIC


# A model that goes quiet mid-reply (agent/silence.py): the reply ends with the text so far and one of these.
MODEL_SILENT = "The model sent nothing for {seconds:g} s, so I stopped waiting. Please try again."
MODEL_STALLED = "The model stopped writing for {seconds:g} s, so the answer ends here."


def silence_notice(watch: SilenceWatch) -> str:
    """The notice for a run `watch` gave up on: silent from the start, or stalled after its first words."""
    if watch.started:
        return MODEL_STALLED.format(seconds=watch.idle)
    return MODEL_SILENT.format(seconds=watch.first_token)


def _never_connected(exc: BaseException) -> bool:
    """Whether a connection error happened before any connection was made (refused, no such host, timed out
    connecting) rather than during an answer. The HTTP library's error is in the chain of causes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError | socket.gaierror) or type(seen).__name__ in (
            "ConnectError",
            "ConnectTimeout",
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
