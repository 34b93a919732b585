"""slack_sdk's failures as `channels.errors`, so the StreamingHandler's rules apply to Slack unchanged.

Slack answers almost every failure with HTTP 200 and `{"ok": false, "error": "<name>"}`; slack_sdk raises
`SlackApiError` for those and for 429 / 5xx, and aiohttp's own exceptions for a connection that failed (after its
one default retry). The names below are Slack's documented error codes for the chat.* and stream methods.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError

from channels.errors import (
    ChannelError,
    MessageGone,
    MessageTooLong,
    PermanentError,
    RateLimited,
    StreamingRefused,
    TransientError,
)

DEFAULT_RETRY_AFTER = 1.0
"""Seconds to wait after a 429 that came without a Retry-After header (Slack always sends one)."""
TRANSIENT = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
GONE = frozenset({"message_not_found"})
"""Only a deleted message: continuing in a new one would repeat the text under a message that still shows it."""
TOO_LONG = frozenset({"msg_too_long", "msg_blocks_too_long", "markdown_text_too_long"})
EXPIRED_STREAM = "message_not_in_streaming_state"
START_STREAM = "chat.startStream"


def translate(exc: Exception, method: str) -> ChannelError:
    """The channel error for a failed call of `method` (a 429 is bookkept by the limiter it leaves through).

    Args:
        exc: What slack_sdk or aiohttp raised.
        method: The Web API method called ("chat.update", ...).

    Returns:
        RateLimited for a 429; StreamingRefused for any refusal of chat.startStream and for a stream that is no
        longer streaming (expired or stopped); TransientError for network errors and 5xx; MessageTooLong,
        MessageGone; PermanentError for everything else (invalid_auth, channel_not_found, not_in_channel, ...).
    """
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = int(getattr(response, "status_code", 200) or 200)
        error = str(_get(response, "error") or "")
        if status == 429 or error in ("ratelimited", "rate_limited"):
            wait = retry_after(getattr(response, "headers", None) or {})
            return RateLimited(wait, f"{method}: rate limited for {wait:g} s")
        message = f"{method}: {error or f'HTTP {status}'}"
        if status >= 500 or error in TRANSIENT:
            return TransientError(message)
        if error == EXPIRED_STREAM or method == START_STREAM:
            return StreamingRefused(message)
        if error in TOO_LONG:
            return MessageTooLong(message)
        if error in GONE:
            return MessageGone(message)
        return PermanentError(message)
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | OSError | SlackClientError):
        return TransientError(f"{method}: {type(exc).__name__}: {exc}")
    return PermanentError(f"{method}: {type(exc).__name__}: {exc}")


def retry_after(headers: Mapping[str, Any]) -> float:
    """The Retry-After header in seconds (header names compared case-insensitively)."""
    for name, value in headers.items():
        if str(name).lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                break
    return DEFAULT_RETRY_AFTER


def _get(response: Any, name: str) -> Any:
    try:
        return response.get(name)
    except (AttributeError, TypeError):
        return None
