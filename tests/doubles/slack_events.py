"""Signed Slack Events API requests, for posting to a bot's `/slack/events` the way Slack does.

    envelope = event_envelope(app_mention("what is 2+2?", bot_user_id=slack.identity.bot_user_id),
                              team_id=slack.identity.team_id, api_app_id=slack.identity.app_id,
                              bot_user_id=slack.identity.bot_user_id)
    reply = await post_event(f"{bot_url}/slack/events", envelope, SIGNING_SECRET)
    assert reply.status == 200

Slack signs the exact bytes it sends: "v0=" + hex HMAC-SHA256(secret, f"v0:{timestamp}:{body}"), checked within a
5-minute window, so the body is serialised once here and posted as those bytes. Retries carry X-Slack-Retry-Num
and X-Slack-Retry-Reason and the same event_id; Bolt does not deduplicate them, the bot has to.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp

__all__ = [
    "EventReply",
    "app_context_changed",
    "app_home_opened",
    "app_mention",
    "assistant_thread_started",
    "block_actions",
    "bot_message",
    "channel_message",
    "dm_message",
    "event_envelope",
    "interaction_form",
    "message_changed",
    "post_event",
    "signed_request",
    "url_verification",
]

_seq = itertools.count(1)


def _ts() -> str:
    """A fresh, increasing message ts in Slack's "seconds.micro" shape."""
    return f"{int(time.time())}.{next(_seq):06d}"


def signed_request(
    body: dict[str, Any] | str, signing_secret: str, *, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """Serialise `body` once and sign those bytes as Slack does.

    Args:
        body: An envelope (sent as compact JSON) or a ready string (JSON, or form-encoded `payload=...`).
        signing_secret: The app's signing secret.
        timestamp: Unix seconds to sign with; default now. An old one tests the 5-minute replay window.

    Returns:
        The raw body and the headers to send with it (signature, timestamp and content type).
    """
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), f"v0:{stamp}:{text}".encode(), hashlib.sha256).hexdigest()
    is_json = text.lstrip().startswith("{")
    headers = {
        "Content-Type": "application/json" if is_json else "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
    }
    return text.encode(), headers


def event_envelope(
    event: dict[str, Any],
    *,
    team_id: str,
    api_app_id: str,
    bot_user_id: str | None = None,
    event_id: str | None = None,
    event_time: int | None = None,
    authorizations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Wrap `event` in an `event_callback` payload as the Events API delivers it.

    Args:
        event: From one of the builders below (or hand-made).
        team_id: The workspace id (Bolt's single-team authorize compares nothing, but the bot may key on it).
        api_app_id: The app id.
        bot_user_id: Used for the default `authorizations` entry (Slack lists the installation the event is for).
        event_id: Keep it when simulating a retry: the retry carries the same event_id. Default: a fresh one.
        event_time: Unix seconds; default now.
        authorizations: Overrides the default single bot authorization.
    """
    if authorizations is None:
        authorizations = [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ]
    return {
        "token": "legacy-verification-token",
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_seq):010d}",
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": authorizations,
        "is_ext_shared_channel": False,
    }


def block_actions(
    message: dict[str, Any],
    *,
    channel: str,
    action_id: str,
    user: str = "U0ALICE",
    team_id: str = "T0LIVEBOT",
    api_app_id: str = "A0LIVEBOT",
    value: str | None = None,
) -> dict[str, Any]:
    """Someone pressed the button `action_id` of the bot's `message` (as `message_json` gives it) in `channel`.

    Returns the `block_actions` payload: over HTTP it goes as a form (`interaction_form`) to the same request URL
    as events in this app; in Socket Mode it is the payload of an `interactive` envelope. A `feedback_buttons`
    element (in a `context_actions` block) has two buttons: `value` says which was pressed, and the action carries
    that button's value and text.
    """
    button = next(
        (
            element
            for block in message.get("blocks") or []
            for element in block.get("elements") or []
            if element.get("action_id") == action_id
        ),
        None,
    )
    if button is None:
        raise ValueError(f"message {message.get('ts')} has no button {action_id!r}")
    if button.get("type") == "feedback_buttons":
        pressed = [b for b in (button["positive_button"], button["negative_button"]) if b["value"] == value]
        if not pressed:
            raise ValueError(f"feedback buttons {action_id!r} have no button with value {value!r}")
        button = {**button, "text": pressed[0]["text"], "value": value}
    container = {"type": "message", "message_ts": message["ts"], "channel_id": channel, "is_ephemeral": False}
    if message.get("thread_ts"):
        container["thread_ts"] = message["thread_ts"]
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team_id},
        "api_app_id": api_app_id,
        "token": "legacy-verification-token",
        "container": container,
        "trigger_id": f"{next(_seq)}.{team_id}",
        "team": {"id": team_id, "domain": "livebot-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "directmessage" if channel.startswith("D") else "general"},
        "message": message,
        "state": {"values": {}},
        "response_url": f"https://hooks.slack.com/actions/{team_id}/{next(_seq)}/x",
        "actions": [
            {
                "action_id": action_id,
                "block_id": button.get("block_id", "b"),
                "text": button.get("text"),
                "value": button.get("value", ""),
                "type": button.get("type", "button"),
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return payload


def app_home_opened(
    *, user: str = "U0ALICE", channel: str = "D0ALICE", tab: str = "messages", event_ts: str | None = None
) -> dict[str, Any]:
    """`app_home_opened`: `user` opened the app's `tab` ("messages", or "home"). Slack sends it every time.

    Under `agent_view` the Messages tab is where the agent's conversations live, and this event (tab "messages")
    replaces `assistant_thread_started` as the signal that the user opened it.
    """
    return {"type": "app_home_opened", "user": user, "channel": channel, "tab": tab, "event_ts": event_ts or _ts()}


def app_context_changed(
    *, user: str = "U0ALICE", channel: str = "D0ALICE", context_channel: str = "C0GENERAL", team: str = "T0LIVEBOT"
) -> dict[str, Any]:
    """`app_context_changed` (agent_view): the user, with the app open, now looks at `context_channel`.

    The payload's shape is not documented where the double's authors could read it; this one follows
    `assistant_thread_context_changed` (a `context` with channel_id and team_id) and is guessed.
    """
    return {
        "type": "app_context_changed",
        "user": user,
        "channel": channel,
        "context": {"channel_id": context_channel, "team_id": team, "enterprise_id": None},
        "event_ts": _ts(),
    }


def assistant_thread_started(
    *, user: str = "U0ALICE", channel: str = "D0ALICE", thread_ts: str | None = None, context_channel: str = ""
) -> dict[str, Any]:
    """`assistant_thread_started` (legacy assistant_view): the user opened a new assistant thread `thread_ts`."""
    thread_ts = thread_ts or _ts()
    context: dict[str, Any] = {"channel_id": context_channel} if context_channel else {}
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {"user_id": user, "context": context, "channel_id": channel, "thread_ts": thread_ts},
        "event_ts": _ts(),
    }


def interaction_form(payload: dict[str, Any]) -> str:
    """The form body Slack posts for an interaction: one field, `payload`, holding the JSON."""
    return "payload=" + urllib.parse.quote(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))


def url_verification(challenge: str = "challenge-token") -> dict[str, Any]:
    """The handshake Slack sends when the request URL is configured; the bot must echo `challenge`."""
    return {"token": "legacy-verification-token", "challenge": challenge, "type": "url_verification"}


def app_mention(
    question: str,
    *,
    bot_user_id: str,
    channel: str = "C0GENERAL",
    user: str = "U0ALICE",
    team: str = "T0LIVEBOT",
    ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """An `app_mention` in a channel: text "<@BOT> question"; `thread_ts` when the mention is inside a thread."""
    ts = ts or _ts()
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": f"<@{bot_user_id}> {question}",
        "ts": ts,
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "client_msg_id": f"msg-{ts}",
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def _message(text: str, channel: str, channel_type: str, ts: str | None, thread_ts: str | None) -> dict[str, Any]:
    ts = ts or _ts()
    event: dict[str, Any] = {
        "type": "message",
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def dm_message(
    text: str,
    *,
    channel: str = "D0ALICE",
    user: str = "U0ALICE",
    team: str = "T0LIVEBOT",
    ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """A user's `message` in a DM with the bot (channel_type "im", channel D...)."""
    event = _message(text, channel, "im", ts, thread_ts)
    event.update({"user": user, "team": team, "client_msg_id": f"msg-{event['ts']}"})
    return event


def channel_message(
    text: str,
    *,
    channel: str = "C0GENERAL",
    user: str = "U0ALICE",
    team: str = "T0LIVEBOT",
    ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """A user's `message` in a public channel (channel_type "channel"); a bot usually ignores it without a mention."""
    event = _message(text, channel, "channel", ts, thread_ts)
    event.update({"user": user, "team": team, "client_msg_id": f"msg-{event['ts']}"})
    return event


def bot_message(
    text: str,
    *,
    bot_id: str,
    user: str | None = None,
    channel: str = "D0ALICE",
    channel_type: str = "im",
    legacy_subtype: bool = False,
    ts: str | None = None,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    """A message written by a bot, e.g. the bot's own reply echoed back, which the bot must not answer.

    An app posting with a bot token arrives with `bot_id` (and `user` = the bot user); `legacy_subtype=True` adds
    `subtype: "bot_message"` as integrations and some older apps produce.
    """
    event = _message(text, channel, channel_type, ts, thread_ts)
    event["bot_id"] = bot_id
    if user:
        event["user"] = user
    if legacy_subtype:
        event["subtype"] = "bot_message"
    return event


def message_changed(
    new_text: str,
    *,
    ts: str,
    previous_text: str = "",
    channel: str = "D0ALICE",
    channel_type: str = "im",
    user: str = "U0ALICE",
    bot_id: str | None = None,
) -> dict[str, Any]:
    """A `message_changed` event for message `ts` (an edit; the bot's own stream updates look like this too)."""
    edited: dict[str, Any] = {"type": "message", "text": new_text, "user": user, "ts": ts}
    previous: dict[str, Any] = {"type": "message", "text": previous_text, "user": user, "ts": ts}
    if bot_id:
        edited["bot_id"] = previous["bot_id"] = bot_id
    event_ts = _ts()
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": channel,
        "channel_type": channel_type,
        "ts": event_ts,
        "event_ts": event_ts,
        "message": edited,
        "previous_message": previous,
    }


@dataclass(frozen=True)
class EventReply:
    """What the bot answered: HTTP status, body text and headers."""

    status: int
    text: str
    headers: dict[str, str]


async def post_event(
    url: str,
    body: dict[str, Any] | str,
    signing_secret: str,
    *,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    timestamp: int | None = None,
    forge: bool = False,
    session: aiohttp.ClientSession | None = None,
) -> EventReply:
    """POST a signed Events API request to `url` (the bot's `/slack/events`) and return its answer.

    Args:
        url: Full URL of the bot's endpoint.
        body: An envelope or a raw body string.
        signing_secret: The app's signing secret.
        retry_num: Adds X-Slack-Retry-Num (1, 2, 3 for Slack's retries).
        retry_reason: Adds X-Slack-Retry-Reason ("http_timeout", "http_error", ...).
        timestamp: Signing timestamp; default now.
        forge: Sign with a wrong secret, as an attacker without the secret would; the bot must answer 401.
        session: Reuse a client session; default a short-lived one.
    """
    secret = f"{signing_secret}-forged" if forge else signing_secret
    raw, headers = signed_request(body, secret, timestamp=timestamp)
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
    if retry_reason is not None:
        headers["X-Slack-Retry-Reason"] = retry_reason
    owned = session is None
    client = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        async with client.post(url, data=raw, headers=headers) as response:
            return EventReply(response.status, await response.text(), dict(response.headers))
    finally:
        if owned:
            await client.close()
