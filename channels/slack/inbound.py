"""Deciding what to do with a Slack event: answer it, refuse it politely, or ignore it.

An `app_mention` in a channel is answered in that message's thread (in the same thread when the mention is a
reply). A user's `message` in a DM (channel_type "im") is answered in its thread too: under Slack's agent
messaging experience (`agent_view`) each message in the app's Messages tab is the root of a thread the agent
answers in, and under the legacy `assistant_view` every message already arrives inside an assistant thread, so
the message itself says where the answer goes and no setting is needed. Files shared with such a message come
along as attachments (`channels.slack.files`). Memory is kept per thread (`slack:<channel>:<thread_ts>`).
Messages from bots (this one included), edits, deletions and other subtypes are ignored, as are channel messages
without a mention. Slack reserves a leading "/" for its own slash commands, so
the plain words "help", "reset", "stop" and "tools" are the commands here.

Slack retries an event it thinks was not acknowledged (same event_id, X-Slack-Retry-Num): `SeenEvents` lets the
bot answer each event once.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.commands import from_word
from channels.inbound import (
    NOT_ALLOWED,
    ONLY_TEXT,
    Answer,
    ApprovalPress,
    Identity,
    Ignore,
    Incoming,
    Refuse,
    StopPress,
    Verdict,
    read_approval_data,
    screen,
)
from channels.slack.files import SlackDownloader
from channels.slack.surface import APPROVE_ACTION, DENY_ACTION, STOP_ACTION, SlackTarget

__all__ = [
    "NOT_ALLOWED",
    "ONLY_TEXT",
    "SeenEvents",
    "SlackIdentity",
    "approval_request",
    "clean_text",
    "read_event",
    "stop_request",
]

USER_SUBTYPES = frozenset({"file_share", "thread_broadcast"})
"""Message subtypes that are still a person writing to the bot; every other subtype is ignored."""

_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackIdentity(Identity):
    """Who the bot is (from auth.test) and whom it serves (`allowed`: member ids, upper case)."""

    user_id: str
    bot_id: str | None = None


def read_event(
    event: Mapping[str, Any],
    me: SlackIdentity,
    *,
    team_id: str | None = None,
    files: SlackDownloader | None = None,
) -> Verdict[SlackTarget]:
    """What to do with one Events API event.

    Args:
        event: The envelope's `event`.
        me: The bot.
        team_id: The envelope's team, for a stream's recipient_team_id when the event names none.
        files: Makes the attachments of the event's `files` (nothing is downloaded yet); None reads text only.
    """
    subtype = event.get("subtype")
    if subtype and subtype not in USER_SUBTYPES:
        return Ignore(f"message subtype {subtype}")
    user = event.get("user")
    if event.get("bot_id") or event.get("bot_profile") or not user or user == me.user_id:
        return Ignore("from a bot or without a user")
    channel = str(event.get("channel") or "")
    target = _locate(event, channel, str(user), str(event.get("team") or team_id or "") or None)
    if isinstance(target, Ignore):
        return target
    cleaned = clean_text(str(event.get("text") or ""), me.user_id)
    attachments = files.attachments(event) if files is not None else ()
    text = None if not cleaned and event.get("files") else cleaned
    screened = screen(target, text, me, allowed=me.allows(str(user).upper()), files=bool(attachments))
    if isinstance(screened, Refuse):
        return screened
    text = from_word(screened) if not attachments else screened  # "reset" with a file is a question, no command
    incoming = Incoming(target.conversation, text, str(user), attachments=attachments, sent=_sent(event))
    return Answer(incoming, target)


def _sent(event: Mapping[str, Any]) -> float:
    """The message's ts as a number (its place in the channel's order); 0 when it has none that reads as one."""
    try:
        return float(event.get("ts") or 0)
    except (TypeError, ValueError):
        return 0.0


def _locate(event: Mapping[str, Any], channel: str, user: str, team: str | None) -> SlackTarget | Ignore:
    """Where the reply goes, or why the event is not for the bot."""
    ts = str(event.get("ts") or "")
    thread = str(event.get("thread_ts") or "") or None
    if not channel or not ts:
        return Ignore("no channel or ts")
    if event.get("type") == "app_mention" and channel.startswith("D"):
        return Ignore("a mention in a DM: its message event is answered")
    if event.get("type") == "app_mention" or (event.get("type") == "message" and event.get("channel_type") == "im"):
        thread = thread or ts
        return SlackTarget(channel, "thread", thread, user, team)
    return Ignore("not a mention and not a DM")


def stop_request(payload: Mapping[str, Any], me: SlackIdentity) -> StopPress[SlackTarget] | None:
    """A Stop button press (its message is the pressed message as quoted), or None for any other interaction."""
    actions = payload.get("actions") or []
    if not any(a.get("action_id") == STOP_ACTION for a in actions) or (pressed := _pressed(payload, me)) is None:
        return None
    target, user, message = pressed
    return StopPress(target, message, user=user)


def approval_request(payload: Mapping[str, Any], me: SlackIdentity) -> ApprovalPress[SlackTarget] | None:
    """An Approve or Deny press (its value says which approval and what), or None for any other interaction."""
    actions = payload.get("actions") or []
    action = next((a for a in actions if a.get("action_id") in (APPROVE_ACTION, DENY_ACTION)), None)
    decided = read_approval_data(str(action.get("value") or "")) if action is not None else None
    if decided is None or (pressed := _pressed(payload, me)) is None:
        return None
    target, user, message = pressed
    who = payload.get("user") or {}
    return ApprovalPress(target, message["ts"], user, str(who.get("name") or who.get("username") or user), *decided)


def _pressed(payload: Mapping[str, Any], me: SlackIdentity) -> tuple[SlackTarget, str, dict[str, Any]] | None:
    """Where a button was pressed (the message's thread: where the reply goes), by whom (someone the bot serves),
    and the pressed message as quoted (with its ts); None for anything else."""
    user = str((payload.get("user") or {}).get("id") or "")
    if payload.get("type") != "block_actions" or not user or not me.allows(user.upper()):
        return None
    container = payload.get("container") or {}
    message = payload.get("message") or {}
    channel = str(container.get("channel_id") or "")
    ts = str(container.get("message_ts") or message.get("ts") or "")
    if not channel or not ts:
        return None
    thread = container.get("thread_ts") or message.get("thread_ts")
    return SlackTarget(channel, "thread", str(thread) if thread else None), user, {**message, "ts": ts}


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
