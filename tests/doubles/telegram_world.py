"""The world behind the Telegram Bot API double: users, chats, topics, messages, drafts and what the bot did.

Kept apart from HTTP so a test can set the scene (`add_user`, `add_group`, `add_topic`) and inspect the outcome
(`StoredMessage.text`, `edit_count`, drafts, chat actions) with plain objects, while the JSON the bot receives is
produced in one place (`to_api`) in the shape python-telegram-bot's `de_json` expects.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

DRAFT_LIFETIME = 30.0
"""Seconds a draft preview stays visible after its last update unless a real message replaces it sooner."""
KEPT_AFTER_STOP = 10.0
"""(Bot API 10.3, length guessed) a stopped draft sent with `keep_on_stop` stays this long, unless a real message
replaces it sooner."""


class ApiError(Exception):
    """A Bot API error answer: `{"ok": false, "error_code": status, "description": ...}`."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error."""
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    """A 400 with Telegram's "Bad Request: " prefix (which python-telegram-bot strips and capitalises after)."""
    return ApiError(400, f"Bad Request: {detail}")


@dataclass(frozen=True)
class User:
    """A Telegram account: a person, this bot, or another bot."""

    id: int
    first_name: str
    username: str | None = None
    is_bot: bool = False
    last_name: str | None = None
    language_code: str | None = "en"

    def to_api(self) -> dict[str, Any]:
        """The `User` object as the Bot API sends it (absent fields omitted, as Telegram does)."""
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for name in ("last_name", "username"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        if self.language_code and not self.is_bot:
            data["language_code"] = self.language_code
        return data


@dataclass
class Chat:
    """A private chat, group or supergroup (a forum when `is_forum`, with `topics` by thread id)."""

    id: int
    type: str
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    is_forum: bool = False
    bot_is_admin: bool = False
    topics: dict[int, str] = field(default_factory=dict)
    admins: set[int] = field(default_factory=set)
    """Users who administer the group (the bot is one when `bot_is_admin`)."""

    @property
    def is_private(self) -> bool:
        """Private chats have their own flood budget and are the only place drafts work."""
        return self.type == "private"

    def to_api(self) -> dict[str, Any]:
        """The `Chat` object embedded in messages."""
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        for name in ("title", "username", "first_name", "last_name"):
            if getattr(self, name):
                data[name] = getattr(self, name)
        if self.is_forum:
            data["is_forum"] = True
        return data


@dataclass
class StoredMessage:
    """One message in a chat, as it currently is (and how it got there).

    Attributes:
        by_bot: Sent by the bot under test (not by a user or another bot).
        history: Every text the message had, first to current (edits append).
        edit_count: Successful edits (text or reply markup).
        deleted: Deleted by the bot or, via `TelegramDouble.delete_message`, by a user.
        service: Extra top-level fields of a service message, such as `forum_topic_created`.
        media: The file fields of a user's message (`photo`, `document`, `voice`, `audio`, `media_group_id`).
    """

    chat: Chat
    message_id: int
    sender: User
    by_bot: bool
    date: int
    text: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    photo: bool = False
    reply_markup: dict[str, Any] | None = None
    reply_to: StoredMessage | None = None
    message_thread_id: int | None = None
    is_topic_message: bool = False
    link_preview_options: dict[str, Any] | None = None
    edit_count: int = 0
    edit_date: int | None = None
    deleted: bool = False
    history: list[str | None] = field(default_factory=list)
    service: dict[str, Any] | None = None
    media: dict[str, Any] | None = None

    @property
    def reply_to_message_id(self) -> int | None:
        """The id of the message this one replies to (in a forum topic, possibly the topic's creation message)."""
        return self.reply_to.message_id if self.reply_to else None

    def to_api(self, *, nested: bool = True) -> dict[str, Any]:
        """The `Message` object; `reply_to_message` is nested one level deep, as Telegram does."""
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "from": self.sender.to_api(),
            "chat": self.chat.to_api(),
            "date": self.date,
        }
        if self.message_thread_id is not None:
            data["message_thread_id"] = self.message_thread_id
        if self.is_topic_message:
            data["is_topic_message"] = True
        if nested and self.reply_to is not None:
            data["reply_to_message"] = self.reply_to.to_api(nested=False)
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.text is not None:
            data["text"] = self.text
            if self.entities:
                data["entities"] = self.entities
        if self.photo:
            data["photo"] = [
                {
                    "file_id": f"photo-{self.chat.id}-{self.message_id}-{size}",
                    "file_unique_id": f"u{size}",
                    "width": size,
                    "height": size,
                    "file_size": size * 100,
                }
                for size in (90, 320, 800)
            ]
            if self.caption:
                data["caption"] = self.caption
                if self.caption_entities:
                    data["caption_entities"] = self.caption_entities
        if self.link_preview_options:
            data["link_preview_options"] = self.link_preview_options
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            data["reply_markup"] = self.reply_markup
        if self.service:
            data.update(self.service)
        if self.media:
            data.update(self.media)
            if self.caption:
                data["caption"] = self.caption
                if self.caption_entities:
                    data["caption_entities"] = self.caption_entities
        return data


@dataclass
class Draft:
    """The latest state of one sendMessageDraft preview, keyed by (chat, draft_id).

    Attributes:
        history: Every text sent for this draft id, in order.
        dismissed_at: When a real message in the chat, or a draft with another id, replaced the preview (None while
            it may still show).
        can_stop: The last sendMessageDraft offered the user a stop button (Bot API 10.3).
        keep_on_stop: The last sendMessageDraft asked to keep the draft visible after a stop press.
        stopped_at: When the user pressed stop; later drafts with this id are accepted and not shown.
    """

    chat_id: int
    draft_id: int
    text: str
    entities: list[dict[str, Any]]
    message_thread_id: int | None
    first_at: float
    updated_at: float
    history: list[str] = field(default_factory=list)
    dismissed_at: float | None = None
    can_stop: bool = False
    keep_on_stop: bool = False
    stopped_at: float | None = None

    def visible(self, now: float) -> bool:
        """Whether a user would still see this preview at clock time `now`."""
        if self.stopped_at is not None and now - self.stopped_at >= KEPT_AFTER_STOP:
            return False
        return self.dismissed_at is None and now - self.updated_at < DRAFT_LIFETIME


@dataclass(frozen=True)
class ChatAction:
    """One sendChatAction ("typing", ...) at clock time `at`; it would show for at most 5 s."""

    at: float
    chat_id: int
    action: str
    message_thread_id: int | None


@dataclass
class CallbackQueryRecord:
    """A button press sent to the bot, and the bot's answerCallbackQuery (if any)."""

    id: str
    user: User
    message: StoredMessage
    data: str
    answered: bool = False
    answer: dict[str, Any] | None = None


@dataclass
class Call:
    """One HTTP request to the Bot API as the double saw and answered it.

    Attributes:
        at: Clock time the request arrived.
        method: The method's canonical name ("sendMessage") when known, else as requested.
        params: The parameters after decoding (numbers as int, JSON fields as lists and dicts).
        status: 200, or the error code answered (a reset connection records 0).
        description: The error description, if any.
        retry_after: The `retry_after` of a 429.
        result: The `result` answered on success.
        chat_id: The chat the call was aimed at, if it named a known one.
        client_gone: The client had closed the connection before the answer (e.g. a long poll PTB cancelled on
            shutdown, which is then superseded with a 409 nobody reads).
    """

    at: float
    method: str
    params: dict[str, Any]
    status: int = 200
    description: str | None = None
    retry_after: int | None = None
    result: Any = None
    chat_id: int | None = None
    client_gone: bool = False

    @property
    def ok(self) -> bool:
        """True when the call was answered with `"ok": true`."""
        return self.status == 200


@dataclass(frozen=True)
class Violation:
    """A call made before a `retry_after` previously given for its chat (or for the whole bot) had passed.

    Attributes:
        call: The offending call.
        scope: `"chat:<id>"` or `"global"`.
        allowed_at: Clock time from which the call would have been allowed.
        early_by: Seconds the call came too early.
    """

    call: Call
    scope: str
    allowed_at: float
    early_by: float


@dataclass
class World:
    """All state that Bot API methods read and change."""

    bot: User
    users: dict[int, User] = field(default_factory=dict)
    chats: dict[int, Chat] = field(default_factory=dict)
    messages: dict[int, dict[int, StoredMessage]] = field(default_factory=dict)
    drafts: list[Draft] = field(default_factory=list)
    chat_actions: list[ChatAction] = field(default_factory=list)
    commands: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    callback_queries: dict[str, CallbackQueryRecord] = field(default_factory=dict)
    _user_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100_000_001))
    _group_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _message_ids: dict[int, itertools.count[int]] = field(default_factory=dict)

    def add_user(
        self,
        first_name: str,
        *,
        username: str | None = None,
        is_bot: bool = False,
        user_id: int | None = None,
        last_name: str | None = None,
    ) -> User:
        """Create a person or another bot."""
        user = User(user_id or next(self._user_ids), first_name, username, is_bot, last_name)
        self.users[user.id] = user
        return user

    def private_chat(self, user: User) -> Chat:
        """The private chat between `user` and the bot (its id is the user's id, as in Telegram)."""
        if user.id not in self.chats:
            self.chats[user.id] = Chat(
                user.id, "private", username=user.username, first_name=user.first_name, last_name=user.last_name
            )
        return self.chats[user.id]

    def add_group(
        self,
        title: str,
        *,
        supergroup: bool = True,
        forum: bool = False,
        username: str | None = None,
        chat_id: int | None = None,
        bot_is_admin: bool = False,
    ) -> Chat:
        """Create a group (negative id) or supergroup (-100... id); forums must be supergroups."""
        if forum and not supergroup:
            raise ValueError("a forum must be a supergroup")
        number = next(self._group_ids)
        default_id = -(1_000_000_000_000 + number) if supergroup else -(400_000_000 + number)
        chat = Chat(
            chat_id or default_id,
            "supergroup" if supergroup else "group",
            title=title,
            username=username,
            is_forum=forum,
            bot_is_admin=bot_is_admin,
        )
        self.chats[chat.id] = chat
        return chat

    def find_chat(self, chat_id: Any) -> Chat:
        """Resolve a `chat_id` parameter (an id or "@username") or answer 400 "chat not found"."""
        if chat_id in (None, ""):
            raise bad_request("chat_id is empty")
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            for chat in self.chats.values():
                if chat.username and chat.username.lower() == chat_id[1:].lower() and not chat.is_private:
                    return chat
            raise bad_request("chat not found")
        try:
            return self.chats[int(chat_id)]
        except (KeyError, ValueError, TypeError):
            raise bad_request("chat not found") from None

    def add_message(self, chat: Chat, sender: User, *, by_bot: bool, **fields: Any) -> StoredMessage:
        """Store a new message with the chat's next message id."""
        ids = self._message_ids.setdefault(chat.id, itertools.count(1))
        message = StoredMessage(chat, next(ids), sender, by_bot, int(time.time()), **fields)
        message.history.append(message.text if message.text is not None else message.caption)
        self.messages.setdefault(chat.id, {})[message.message_id] = message
        return message

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """The message, deleted or not, or None if it never existed."""
        return self.messages.get(chat_id, {}).get(message_id)

    def live_message(self, chat_id: int, message_id: Any) -> StoredMessage | None:
        """The message unless it never existed or was deleted."""
        try:
            message = self.message(chat_id, int(message_id))
        except (TypeError, ValueError):
            return None
        return None if message is None or message.deleted else message

    def dismiss_drafts(self, chat_id: int, now: float) -> None:
        """A real message in the chat replaces any draft preview shown there."""
        for draft in self.drafts:
            if draft.chat_id == chat_id and draft.dismissed_at is None:
                draft.dismissed_at = now

    def replace_draft(self, chat_id: int, message_thread_id: int | None, now: float) -> None:
        """A draft with a new id replaces the one shown in the chat's topic (None: outside topics)."""
        for draft in self.drafts:
            if (draft.chat_id, draft.message_thread_id) == (chat_id, message_thread_id) and draft.dismissed_at is None:
                draft.dismissed_at = now

    def stopped_draft(self, chat_id: int, draft_id: int) -> Draft | None:
        """The user's stop on draft `draft_id` holds (None if not stopped): until the bot's next real message."""
        for draft in reversed(self.drafts):
            if (draft.chat_id, draft.draft_id) == (chat_id, draft_id):
                return draft if draft.stopped_at is not None and draft.dismissed_at is None else None
        return None

    def current_draft(self, chat_id: int, draft_id: int, now: float) -> Draft | None:
        """The draft a sendMessageDraft with this id animates: the latest one still visible, if any."""
        for draft in reversed(self.drafts):
            if (draft.chat_id, draft.draft_id) == (chat_id, draft_id):
                return draft if draft.visible(now) else None
        return None
