"""Deciding what to do with a Slack event: answer it, refuse it politely, or ignore it.

An `app_mention` in a channel is answered in that message's thread (in the same thread when the mention is a
reply). A user's `message` in a DM (channel_type "im") is answered in its thread too: under Slack's agent
messaging experience (`agent_view`) each message in the app's Messages tab is the root of a thread the agent
answers in, and under the legacy `assistant_view` every message already arrives inside an assistant thread, so
the message itself says where the answer goes and no setting is needed. Memory is kept per thread
(`slack:<channel>:<thread_ts>`). Messages from
bots (this one included), edits, deletions and other subtypes are ignored, as are channel messages without a
mention. Slack reserves a leading "/" for its own slash commands, so the plain words "help" and "reset" are the
commands here.

Slack retries an event it thinks was not acknowledged (same event_id, X-Slack-Retry-Num): `SeenEvents` lets the
bot answer each event once.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.inbound import Incoming
from channels.slack.surface import STOP_ACTION, Target

NOT_ALLOWED = "Sorry, this bot is private: it only answers the people it was set up for."
ONLY_TEXT = "I read text: send me your question as a message."
TOO_LONG = "That message is too long for me ({length:,} characters; I read up to {limit:,}). Could you shorten it?"
COMMAND_WORDS = {"help": "/help", "reset": "/reset", "stop": "/stop"}
USER_SUBTYPES = frozenset({"file_share", "thread_broadcast"})
"""Message subtypes that are still a person writing to the bot; every other subtype is ignored."""

_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


@dataclass(frozen=True, slots=True)
class SlackIdentity:
    """Who the bot is (from auth.test) and whom it serves."""

    user_id: str
    bot_id: str | None = None
    allowed: frozenset[str] = frozenset()
    """Slack member ids (upper case) allowed to talk to the bot; empty for everyone."""
    max_input_chars: int = 4000


@dataclass(frozen=True, slots=True)
class Answer:
    """Run the agent on `incoming` and stream the reply to `target`."""

    incoming: Incoming
    target: Target


@dataclass(frozen=True, slots=True)
class Refuse:
    """Reply `text` to `target` in `conversation`'s turn, with no model call."""

    target: Target
    conversation: str
    text: str


@dataclass(frozen=True, slots=True)
class Ignore:
    """Do nothing; `reason` is for the debug log."""

    reason: str


Verdict = Answer | Refuse | Ignore


def read_event(event: Mapping[str, Any], me: SlackIdentity, *, team_id: str | None = None) -> Verdict:
    """What to do with one Events API event.

    Args:
        event: The envelope's `event`.
        me: The bot.
        team_id: The envelope's team, for a stream's recipient_team_id when the event names none.
    """
    subtype = event.get("subtype")
    if subtype and subtype not in USER_SUBTYPES:
        return Ignore(f"message subtype {subtype}")
    user = event.get("user")
    if event.get("bot_id") or event.get("bot_profile") or not user or user == me.user_id:
        return Ignore("from a bot or without a user")
    channel = str(event.get("channel") or "")
    located = _locate(event, channel, str(user), str(event.get("team") or team_id or "") or None)
    if isinstance(located, Ignore):
        return located
    target, conversation = located
    if me.allowed and str(user).upper() not in me.allowed:
        return Refuse(target, conversation, NOT_ALLOWED)
    text = clean_text(str(event.get("text") or ""), me.user_id)
    if not text:
        if event.get("files"):
            return Refuse(target, conversation, ONLY_TEXT)
        text = "/help"
    if len(text) > me.max_input_chars:
        return Refuse(target, conversation, TOO_LONG.format(length=len(text), limit=me.max_input_chars))
    text = COMMAND_WORDS.get(text.lower().rstrip(".!"), text)
    return Answer(Incoming(conversation, text, user_id=str(user)), target)


def _locate(event: Mapping[str, Any], channel: str, user: str, team: str | None) -> tuple[Target, str] | Ignore:
    """Where the reply goes and the conversation key, or why the event is not for the bot."""
    ts = str(event.get("ts") or "")
    thread = str(event.get("thread_ts") or "") or None
    if not channel or not ts:
        return Ignore("no channel or ts")
    if event.get("type") == "app_mention" and channel.startswith("D"):
        return Ignore("a mention in a DM: its message event is answered")
    if event.get("type") == "app_mention" or (event.get("type") == "message" and event.get("channel_type") == "im"):
        thread = thread or ts
        return Target(channel, "thread", thread, user, team), conversation_key(channel, thread)
    return Ignore("not a mention and not a DM")


def conversation_key(channel: str, thread_ts: str | None) -> str:
    """A thread is one conversation (a message outside any thread names only its channel, which no reply uses)."""
    return f"slack:{channel}:{thread_ts}" if thread_ts else f"slack:{channel}"


def stop_request(payload: Mapping[str, Any], me: SlackIdentity) -> str | None:
    """The conversation whose reply a Stop button press asks to stop, or None for any other interaction.

    The reply's message sits where the reply goes: in the conversation's thread.
    """
    actions = payload.get("actions") or []
    if payload.get("type") != "block_actions" or not any(a.get("action_id") == STOP_ACTION for a in actions):
        return None
    user = str((payload.get("user") or {}).get("id") or "")
    if me.allowed and user.upper() not in me.allowed:
        return None
    container = payload.get("container") or {}
    channel = str(container.get("channel_id") or "")
    if not channel:
        return None
    thread = container.get("thread_ts") or (payload.get("message") or {}).get("thread_ts")
    return conversation_key(channel, str(thread) if thread else None)


def clean_text(text: str, bot_user_id: str) -> str:
    """The text as the user meant it: the bot's mention removed, links as plain URLs, Slack's escapes undone."""
    text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text)
    text = _LINK.sub(lambda m: m[1] if not m[2] or m[2] == m[1] else f"{m[2]} ({m[1]})", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text.strip()


class SeenEvents:
    """The event ids of the last `limit` events, to answer each event once however often Slack delivers it.

    Args:
        limit: How many ids to remember. Slack retries within minutes, so a few thousand cover any burst.
    """

    def __init__(self, limit: int = 4096) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def first_time(self, event_id: str) -> bool:
        """Record `event_id`; True if it was not seen before."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)
        return True
