"""The state and rules behind the Slack Web API double: messages, native streams, chunks, assistant status.

This module knows nothing about HTTP; `slack_api.SlackDouble` parses requests, checks the token, rate limits and
injected faults, then hands the parameters to `SlackWorkspace.call`. Keeping the rules here lets a reader check
them against Slack's documentation in one place. Rules that come from Slack's reference pages or from behaviour
other developers measured are marked "(Slack)"; error names nobody documents are marked "(guessed)", so a test
that asserts one of those asserts the double, not Slack.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MARKDOWN_LIMIT = 12_000  # (Slack) markdown_text, per field and per markdown_text chunk; msg_too_long above it
TEXT_LIMIT = 40_000  # (Slack) chat.postMessage `text`
CHUNK_TITLE_LIMIT = 256  # (Slack, measured by others) task_update / plan_update titles
MAX_BLOCKS = 50  # (Slack) blocks per message
TASK_STATUSES = frozenset({"pending", "in_progress", "complete", "error"})  # (Slack)
CHUNK_TYPES = frozenset({"markdown_text", "task_update", "plan_update", "blocks"})  # (Slack, slack_sdk's models)
MAX_SUGGESTED_PROMPTS = 4  # (Slack) assistant.threads.setSuggestedPrompts: "up to four suggested prompts"
CONTEXT_ACTIONS_MAX = 5  # (Slack) elements of a context_actions block
FEEDBACK_TEXT_LIMIT = 75  # (Slack) a feedback button's plain_text
FEEDBACK_VALUE_LIMIT = 2000  # (Slack) a feedback button's value

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_TS = re.compile(r"^\d+\.\d+$")

StreamState = Literal["streaming", "stopped", "expired"]
AppView = Literal["agent", "assistant"]
"""(Slack, 2026-07) the app's manifest has `features.agent_view` (the agent messaging experience, the only option
for new apps) or the legacy `features.assistant_view`."""


class SlackError(Exception):
    """A Slack error answer: `{"ok": false, "error": error}` with HTTP 200."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class ManualClock:
    """A clock that only moves when a test says so, for stream expiry and rate budgets without sleeping.

    Pass it as `SlackDouble(clock=clock)`; it is a zero-argument callable like `time.monotonic`.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward (expire a stream, refill a rate budget, let a Retry-After pass)."""
        self.now += seconds


@dataclass(frozen=True)
class Identity:
    """Who the bot is: what auth.test answers and what event builders should use for the bot's own ids."""

    team_id: str = "T0LIVEBOT"
    team: str = "Livebot Test"
    bot_user_id: str = "U0LIVEBOT"
    bot_id: str = "B0LIVEBOT"
    app_id: str = "A0LIVEBOT"
    user: str = "livebot"


@dataclass
class SlackMessage:
    """One message the bot wrote, as the double keeps it.

    Attributes:
        text: What the message shows now, as markdown: a post's `markdown_text` (or its markdown blocks, or
            `text`), a stream's markdown accumulated from `markdown_text` and markdown_text chunks, or the latest
            chat.update's content.
        chunks: Every chunk received by startStream/appendStream/stopStream, in order (markdown ones included).
        stream: None for a plain post; else "streaming", "stopped" or "expired".
        update_count: Successful chat.update calls on this message.
        append_count: Successful chat.appendStream calls on this message.
    """

    channel: str
    ts: str
    thread_ts: str | None
    created_at: float
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    chunks: list[dict[str, Any]] = field(default_factory=list)
    stream: StreamState | None = None
    recipient_user_id: str | None = None
    recipient_team_id: str | None = None
    update_count: int = 0
    append_count: int = 0
    deleted: bool = False
    last_append_at: float = 0.0
    files: list[dict[str, Any]] = field(default_factory=list)
    """Files the bot shared with this message (files.completeUploadExternal)."""

    @property
    def streaming(self) -> bool:
        """Whether appendStream/stopStream would be accepted now (as of the last time the double looked)."""
        return self.stream == "streaming"

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        """Task cards as shown: per id, title/status replaced by each task_update, details/output appended."""
        cards: dict[str, dict[str, Any]] = {}
        for chunk in self.chunks:
            if chunk.get("type") != "task_update":
                continue
            card = cards.setdefault(chunk["id"], {"id": chunk["id"]})
            card["title"], card["status"] = chunk["title"], chunk["status"]
            for key in ("details", "output"):
                if key in chunk:
                    card[key] = card.get(key, "") + str(chunk[key])
        return cards

    @property
    def plan_title(self) -> str | None:
        """The title of the last plan_update chunk, if any."""
        titles = [chunk["title"] for chunk in self.chunks if chunk.get("type") == "plan_update"]
        return titles[-1] if titles else None


@dataclass(frozen=True)
class StatusCall:
    """One accepted assistant.threads.setStatus call ("" clears the status)."""

    time: float
    channel_id: str
    thread_ts: str
    status: str
    loading_messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromptsCall:
    """One accepted assistant.threads.setSuggestedPrompts call that took effect."""

    time: float
    channel_id: str
    thread_ts: str | None
    title: str | None
    prompts: tuple[tuple[str, str], ...]
    """(title, message) per prompt."""


@dataclass(frozen=True)
class Ephemeral:
    """One chat.postEphemeral message: only `user` sees it, and it is not kept in the channel's history."""

    time: float
    channel: str
    user: str
    text: str
    thread_ts: str | None


class SlackWorkspace:
    """Messages and statuses of one workspace, and the per-method rules that change them."""

    def __init__(
        self,
        identity: Identity,
        *,
        clock: Callable[[], float] = time.monotonic,
        stream_ttl: float = 300.0,
        stream_max_age: float | None = None,
        view: AppView = "agent",
    ) -> None:
        self.identity = identity
        self.clock = clock
        self.stream_ttl = stream_ttl
        self.stream_max_age = stream_max_age
        self.view = view
        self.refuse_streaming: str | None = None
        self.statuses: list[StatusCall] = []
        self.suggested_prompts: list[PromptsCall] = []
        self.titles: dict[tuple[str, str], str] = {}
        self.ephemerals: list[Ephemeral] = []
        self.thread_status: dict[tuple[str, str], str] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self._messages: dict[tuple[str, str], SlackMessage] = {}
        self._ts_base = int(time.time())
        self._seq = itertools.count(1)
        self.methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "assistant.threads.setStatus": self._set_status,
            "assistant.threads.setSuggestedPrompts": self._set_suggested_prompts,
            "assistant.threads.setTitle": self._set_title,
            "chat.postEphemeral": self._post_ephemeral,
            "users.info": self._users_info,
        }

    # -- observation ----------------------------------------------------------------------------------------

    def all_messages(self) -> list[SlackMessage]:
        """Every message in creation order, stream expiry brought up to date first."""
        for message in self._messages.values():
            self._refresh(message)
        return list(self._messages.values())

    def find(self, channel: str, ts: str) -> SlackMessage | None:
        """The message `ts` in `channel`, expiry brought up to date, or None."""
        message = self._messages.get((channel, ts))
        if message is not None:
            self._refresh(message)
        return message

    # -- dispatch -------------------------------------------------------------------------------------------

    def knows(self, method: str) -> bool:
        """Whether the double models `method`."""
        return method in self.methods

    def call(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Apply one authenticated, not rate-limited call. Returns the `ok: true` body or raises SlackError."""
        return {"ok": True, **self.methods[method](dict(params))}

    # -- rules ----------------------------------------------------------------------------------------------

    def _refresh(self, message: SlackMessage) -> None:
        """Expire a stream lazily, on the double's clock, so a ManualClock expires it without any timer."""
        if message.stream != "streaming":
            return
        now = self.clock()
        idle = now - message.last_append_at > self.stream_ttl
        too_old = self.stream_max_age is not None and now - message.created_at > self.stream_max_age
        if idle or too_old:
            message.stream = "expired"

    def _new_ts(self) -> str:
        return f"{self._ts_base}.{next(self._seq):06d}"

    def message_json(self, message: SlackMessage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "message",
            "user": self.identity.bot_user_id,
            "bot_id": self.identity.bot_id,
            "app_id": self.identity.app_id,
            "team": self.identity.team_id,
            "text": message.text,
            "ts": message.ts,
        }
        if message.thread_ts:
            body["thread_ts"] = message.thread_ts
        if message.blocks:
            body["blocks"] = message.blocks
        return body

    def _target(self, params: dict[str, Any]) -> SlackMessage:
        channel, ts = _channel(params), params.get("ts")
        if not ts:
            raise SlackError("message_not_found")
        message = self.find(channel, str(ts))
        if message is None or message.deleted:
            raise SlackError("message_not_found")  # (Slack) for update/delete; (guessed) for the stream methods
        return message

    def _content(self, params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        """(Slack) content rules shared by postMessage and update: what the message will show, and its blocks."""
        markdown, text, blocks = params.get("markdown_text"), params.get("text"), params.get("blocks")
        # An empty `text` counts as absent: Bolt's say(markdown_text=...) always sends text="" alongside.
        if markdown is not None and (text or blocks):
            raise SlackError("markdown_text_conflict")
        if markdown is None and not text and not blocks and not params.get("attachments"):
            raise SlackError("no_text")
        if markdown is not None and len(str(markdown)) > MARKDOWN_LIMIT:
            raise SlackError("msg_too_long")
        if text is not None and len(str(text)) > TEXT_LIMIT:
            raise SlackError("msg_too_long")
        checked = _blocks(blocks)
        shown = "".join(str(block.get("text") or "") for block in checked if block["type"] == "markdown")
        if len(shown) > MARKDOWN_LIMIT:
            raise SlackError("msg_too_long")  # (Slack) markdown blocks share one 12,000-character budget
        if markdown is not None:
            return str(markdown), checked
        return shown if shown else str(text or ""), checked  # (Slack) blocks are shown; `text` is the fallback

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        who = self.identity
        return {
            "url": f"https://{who.team.lower().replace(' ', '-')}.slack.com/",
            "team": who.team,
            "user": who.user,
            "team_id": who.team_id,
            "user_id": who.bot_user_id,
            "bot_id": who.bot_id,
            "is_enterprise_install": False,
        }

    def add_message(
        self, channel: str, thread_ts: str | None, *, text: str = "", blocks: list[dict[str, Any]] | None = None
    ) -> SlackMessage:
        """A new message by the bot (a post, or a file share)."""
        message = SlackMessage(channel, self._new_ts(), thread_ts, self.clock(), text=text, blocks=blocks or [])
        self._messages[(channel, message.ts)] = message
        self._reply_clears_status(channel, thread_ts)
        return message

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _channel(params)
        thread_ts = _thread_ts(params, required=False)
        text, blocks = self._content(params)
        message = self.add_message(channel, thread_ts, text=text, blocks=blocks)
        return {"channel": channel, "ts": message.ts, "message": self.message_json(message)}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._target(params)
        if message.streaming:
            raise SlackError("streaming_state_conflict")  # (Slack, measured by others)
        message.text, message.blocks = self._content(params)
        message.update_count += 1
        return {
            "channel": message.channel,
            "ts": message.ts,
            "text": message.text,
            "message": self.message_json(message),
        }

    def _delete(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._target(params)
        if message.streaming:
            raise SlackError("cant_delete_message")  # (Slack, measured by others)
        message.deleted = True
        return {"channel": message.channel, "ts": message.ts}

    def _start_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _channel(params)
        if self.refuse_streaming:
            raise SlackError(self.refuse_streaming)
        thread_ts = _thread_ts(params, required=True)
        user, team = params.get("recipient_user_id"), params.get("recipient_team_id")
        if channel[0] in "CG" or user or team:  # (Slack) required in channels; reported as a pair
            if not user:
                raise SlackError("missing_recipient_user_id")
            if not team:
                raise SlackError("missing_recipient_team_id")
        if params.get("task_display_mode") not in (None, "timeline", "plan", "dense"):
            raise SlackError("invalid_arguments")  # (guessed)
        markdown = _stream_content(params, required=False)
        now = self.clock()
        message = SlackMessage(channel, self._new_ts(), thread_ts, now, stream="streaming", last_append_at=now)
        message.recipient_user_id, message.recipient_team_id = user, team
        self._messages[(channel, message.ts)] = message
        _take(message, params, markdown)
        self._reply_clears_status(channel, thread_ts)
        return {"channel": channel, "ts": message.ts}

    def _append_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._target(params)
        if not message.streaming:
            raise SlackError("message_not_in_streaming_state")  # (Slack)
        markdown = _stream_content(params, required=True)
        _take(message, params, markdown)
        message.append_count += 1
        message.last_append_at = self.clock()
        return {"channel": message.channel, "ts": message.ts}

    def _stop_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self._target(params)
        if not message.streaming:
            raise SlackError("message_not_in_streaming_state")  # (Slack)
        markdown = _stream_content(params, required=False)
        blocks = _blocks(params.get("blocks"))
        _take(message, params, markdown)
        if blocks:
            message.blocks = blocks
        message.stream = "stopped"
        return {"channel": message.channel, "ts": message.ts, "message": self.message_json(message)}

    def _set_status(self, params: dict[str, Any]) -> dict[str, Any]:
        channel_id, thread_ts, status = params.get("channel_id"), params.get("thread_ts"), params.get("status")
        if not channel_id or not _CHANNEL_ID.match(str(channel_id)):
            raise SlackError("channel_not_found")
        if not thread_ts or status is None:
            raise SlackError("invalid_arguments")  # (guessed)
        loading = params.get("loading_messages") or ()
        self.statuses.append(StatusCall(self.clock(), str(channel_id), str(thread_ts), str(status), tuple(loading)))
        self.thread_status[(str(channel_id), str(thread_ts))] = str(status)
        return {}

    def _set_suggested_prompts(self, params: dict[str, Any]) -> dict[str, Any]:
        """(Slack) up to four prompts, each with a title and a message; `thread_ts` only for assistant_view apps.

        (Slack) "Including [thread_ts] in a call for an agent app will cause the call to silently fail": the
        answer is ok and nothing is shown, so the double records nothing. Without thread_ts the prompts are set
        for the latest message of the channel (the DM the user opened).
        """
        channel_id, thread_ts, title = params.get("channel_id"), params.get("thread_ts"), params.get("title")
        if not channel_id or not _CHANNEL_ID.match(str(channel_id)):
            raise SlackError("channel_not_found")
        prompts = params.get("prompts")
        if not isinstance(prompts, list) or not 1 <= len(prompts) <= MAX_SUGGESTED_PROMPTS:
            raise SlackError("invalid_arguments")  # (guessed)
        pairs = []
        for prompt in prompts:
            fields = (prompt.get("title"), prompt.get("message")) if isinstance(prompt, dict) else (None, None)
            if not all(isinstance(value, str) and value.strip() for value in fields):
                raise SlackError("invalid_arguments")  # (guessed) a prompt without its title or message
            pairs.append((str(fields[0]), str(fields[1])))
        if title is not None and not isinstance(title, str):
            raise SlackError("invalid_arguments")  # (guessed)
        if thread_ts not in (None, ""):
            if not _TS.match(str(thread_ts)):
                raise SlackError("invalid_thread_ts")  # (Slack)
            if self.view == "agent":
                return {}  # (Slack) silently fails for agent apps
        thread = str(thread_ts) if thread_ts else None
        self.suggested_prompts.append(PromptsCall(self.clock(), str(channel_id), thread, title, tuple(pairs)))
        return {}

    def _set_title(self, params: dict[str, Any]) -> dict[str, Any]:
        """(Slack) a thread's title, shown in the app's thread list (History); a new title replaces the old."""
        channel_id, thread_ts, title = params.get("channel_id"), params.get("thread_ts"), params.get("title")
        if not channel_id or not _CHANNEL_ID.match(str(channel_id)):
            raise SlackError("channel_not_found")
        if not thread_ts or not _TS.match(str(thread_ts)):
            raise SlackError("invalid_thread_ts")  # (Slack)
        if not isinstance(title, str) or not title.strip():
            raise SlackError("invalid_arguments")  # (guessed)
        self.titles[(str(channel_id), str(thread_ts))] = title
        return {}

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        """(Slack) a message only `user` sees; the same content rules as chat.postMessage."""
        channel = _channel(params)
        user = params.get("user")
        if not user:
            raise SlackError("user_not_in_channel")  # (Slack's name when the user cannot see it; guessed for none)
        thread_ts = _thread_ts(params, required=False)
        text, _ = self._content(params)
        self.ephemerals.append(Ephemeral(self.clock(), channel, str(user), text, thread_ts))
        return {"message_ts": self._new_ts()}

    def _reply_clears_status(self, channel: str, thread_ts: str | None) -> None:
        """(Slack) an app's reply in the thread clears its assistant status."""
        if thread_ts is not None and self.thread_status.get((channel, thread_ts)):
            self.thread_status[(channel, thread_ts)] = ""

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = str(params.get("user") or "")
        if user_id in self.users:
            return {"user": self.users[user_id]}
        if user_id == self.identity.bot_user_id:
            return {
                "user": {"id": user_id, "team_id": self.identity.team_id, "name": self.identity.user, "is_bot": True}
            }
        if not re.match(r"^[UW][A-Z0-9]{2,}$", user_id):
            raise SlackError("user_not_found")
        name = f"user-{user_id.lower()}"
        profile = {"display_name": name, "real_name": name.title()}
        return {
            "user": {"id": user_id, "team_id": self.identity.team_id, "name": name, "is_bot": False, "profile": profile}
        }


# -- parameter checks -----------------------------------------------------------------------------------------


def _channel(params: Mapping[str, Any]) -> str:
    channel = params.get("channel")
    if not channel or not _CHANNEL_ID.match(str(channel)):
        raise SlackError("channel_not_found")  # (Slack) also for a name like "#general": the double wants ids
    return str(channel)


def _thread_ts(params: Mapping[str, Any], *, required: bool) -> str | None:
    thread_ts = params.get("thread_ts")
    if thread_ts in (None, ""):
        if required:
            raise SlackError("invalid_arguments")  # (guessed) startStream without thread_ts
        return None
    if not _TS.match(str(thread_ts)):
        raise SlackError("invalid_thread_ts")  # (Slack) chat.postMessage
    return str(thread_ts)


def _blocks(blocks: Any) -> list[dict[str, Any]]:
    if blocks is None:
        return []
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and b.get("type") for b in blocks):
        raise SlackError("invalid_blocks")  # (Slack)
    if len(blocks) > MAX_BLOCKS:
        raise SlackError("invalid_blocks")  # (Slack: "no more than 50 items allowed")
    for block in blocks:
        if block["type"] == "context_actions":
            _context_actions(block)
        elif block["type"] == "actions":
            _actions(block)
    return blocks


def _actions(block: Mapping[str, Any]) -> None:
    """(Slack) an actions block: 1-25 elements; a button has a plain_text text of at most 75 characters, an
    action_id, a value of at most 2000 characters and a style of primary or danger, if any."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
        raise SlackError("invalid_blocks")
    for element in elements:
        if not isinstance(element, dict) or element.get("type") != "button":
            continue  # (other interactive elements: not used by the bot)
        text = element.get("text")
        if not isinstance(text, dict) or text.get("type") != "plain_text" or not 1 <= len(str(text.get("text"))) <= 75:
            raise SlackError("invalid_blocks")
        if not isinstance(element.get("action_id"), str) or not element["action_id"]:
            raise SlackError("invalid_blocks")
        if len(str(element.get("value", ""))) > 2000 or element.get("style", "primary") not in ("primary", "danger"):
            raise SlackError("invalid_blocks")


def _context_actions(block: Mapping[str, Any]) -> None:
    """(Slack) a context_actions block: 1-5 elements, each feedback_buttons (both buttons) or icon_button."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= CONTEXT_ACTIONS_MAX:
        raise SlackError("invalid_blocks")
    for element in elements:
        kind = element.get("type") if isinstance(element, dict) else None
        if kind == "icon_button":
            continue
        if kind != "feedback_buttons":
            raise SlackError("invalid_blocks")
        for side in ("positive_button", "negative_button"):
            button = element.get(side)
            text = button.get("text") if isinstance(button, dict) else None
            value = button.get("value") if isinstance(button, dict) else None
            if not isinstance(text, dict) or text.get("type") != "plain_text" or not text.get("text"):
                raise SlackError("invalid_blocks")
            if len(str(text["text"])) > FEEDBACK_TEXT_LIMIT:
                raise SlackError("invalid_blocks")
            if not isinstance(value, str) or not value or len(value) > FEEDBACK_VALUE_LIMIT:
                raise SlackError("invalid_blocks")


def _stream_content(params: Mapping[str, Any], *, required: bool) -> str:
    """Check a stream call's markdown_text and chunks; return the markdown they add (markdown_text first)."""
    markdown, chunks = params.get("markdown_text"), params.get("chunks")
    if required and not markdown and not chunks:
        raise SlackError("no_text")  # (guessed) appendStream with nothing to append
    if markdown is not None and len(str(markdown)) > MARKDOWN_LIMIT:
        raise SlackError("msg_too_long")  # (Slack) per field, not cumulative
    added = str(markdown or "")
    for chunk in _chunks(chunks):
        if chunk["type"] == "markdown_text":
            added += chunk["text"]
    return added


def _chunks(chunks: Any) -> list[dict[str, Any]]:
    """(Slack) chunk shapes, as slack_sdk's Chunk models define them; `invalid_chunks` is the documented name."""
    if chunks is None:
        return []
    if not isinstance(chunks, list):
        raise SlackError("invalid_chunks")
    for chunk in chunks:
        if not isinstance(chunk, dict) or chunk.get("type") not in CHUNK_TYPES:
            raise SlackError("invalid_chunks")
        kind = chunk["type"]
        if kind == "markdown_text":
            if not isinstance(chunk.get("text"), str):
                raise SlackError("invalid_chunks")
            if len(chunk["text"]) > MARKDOWN_LIMIT:
                raise SlackError("msg_too_long")  # (Slack, measured by others: per chunk)
        elif kind == "task_update":
            fields = [chunk.get(key) for key in ("id", "title", "status")]
            if not all(isinstance(value, str) and value for value in fields):
                raise SlackError("invalid_chunks")
            if chunk["status"] not in TASK_STATUSES or len(chunk["title"]) > CHUNK_TITLE_LIMIT:
                raise SlackError("invalid_chunks")  # (guessed name for these two)
        elif kind == "plan_update":
            title = chunk.get("title")
            if not isinstance(title, str) or len(title) > CHUNK_TITLE_LIMIT:
                raise SlackError("invalid_chunks")
        elif not isinstance(chunk.get("blocks"), list):
            raise SlackError("invalid_chunks")
    return chunks


def _take(message: SlackMessage, params: Mapping[str, Any], markdown: str) -> None:
    """Record an accepted stream call's content on its message."""
    message.text += markdown
    message.chunks.extend(params.get("chunks") or [])
