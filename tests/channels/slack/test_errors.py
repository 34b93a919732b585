"""slack_sdk's failures as channel errors (the 429's gate is the limiter's business: tests/channels/test_ratelimit)."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.slack_response import SlackResponse

from channels.errors import (
    MessageGone,
    MessageTooLong,
    PermanentError,
    RateLimited,
    StreamingRefused,
    TransientError,
)
from channels.slack.errors import retry_after, translate


def api_error(error: str, *, status: int = 200, headers: dict[str, str] | None = None) -> SlackApiError:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/x",
        req_args={},
        data={"ok": False, "error": error},
        headers=headers or {},
        status_code=status,
    )
    return SlackApiError(f"The request failed: {error}", response)


def test_429_is_rate_limited_for_the_retry_after() -> None:
    error = translate(api_error("ratelimited", status=429, headers={"Retry-After": "7"}), "chat.update")
    assert isinstance(error, RateLimited) and error.retry_after == 7


@pytest.mark.parametrize(
    ("method", "error", "status", "expected"),
    [
        ("chat.startStream", "feature_not_enabled", 200, StreamingRefused),
        ("chat.startStream", "not_allowed", 200, StreamingRefused),
        ("chat.startStream", "channel_not_found", 200, StreamingRefused),  # any refusal: fall back to posts
        ("chat.startStream", "internal_error", 500, TransientError),  # not a refusal: try again
        ("chat.appendStream", "message_not_in_streaming_state", 200, StreamingRefused),  # expired
        ("chat.stopStream", "message_not_in_streaming_state", 200, StreamingRefused),
        ("chat.postMessage", "msg_too_long", 200, MessageTooLong),
        ("chat.update", "message_not_found", 200, MessageGone),
        ("chat.update", "cant_update_message", 200, PermanentError),  # the message is still there
        ("chat.postMessage", "invalid_auth", 200, PermanentError),
        ("chat.postMessage", "channel_not_found", 200, PermanentError),
        ("chat.postMessage", "not_in_channel", 200, PermanentError),
        ("chat.update", "fatal_error", 200, TransientError),
        ("chat.update", "", 503, TransientError),
    ],
)
def test_slack_errors(method: str, error: str, status: int, expected: type) -> None:
    translated = translate(api_error(error, status=status), method)
    assert type(translated) is expected
    assert method in str(translated)


def test_connection_errors_are_transient() -> None:
    for exc in (aiohttp.ClientConnectionError("reset"), TimeoutError(), ConnectionRefusedError()):
        assert isinstance(translate(exc, "chat.update"), TransientError)


def test_retry_after_header_is_read_case_insensitively() -> None:
    assert retry_after({"retry-after": "3"}) == 3
    assert retry_after({"Retry-After": "nonsense"}) == 1
    assert retry_after({}) == 1
