"""The scene behind the Telegram Bot API double: who exists, what users do, and what a test can observe.

Split from `telegram_api` so the HTTP side stays readable. Everything here acts on the world directly (no HTTP),
the way Telegram's other clients act on the real server while the bot only sees the updates that result.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from tests.doubles.telegram_methods import BotApi
from tests.doubles.telegram_text import EntityError, detect_entities, validate_entities
from tests.doubles.telegram_updates import STOPPED_GENERATION, Delivery, UpdateHub, Webhook
from tests.doubles.telegram_world import CallbackQueryRecord, Chat, ChatAction, Draft, StoredMessage, User, World


class Scene:
    """Set-up, user actions and observation; `TelegramDouble` adds the server, faults and call records."""

    api: BotApi  # set by TelegramDouble

    def __init__(self, world: World, hub: UpdateHub, clock: Callable[[], float]) -> None:
        self.world = world
        self.bot = world.bot
        self.hub = hub
        self.clock = clock
        self._changed = asyncio.Event()
        self._query_ids = itertools.count(4_000_000_000_000_001)
        self._admin: User | None = None

    # -- the scene ----------------------------------------------------------------------------------------------

    def add_user(
        self,
        first_name: str,
        *,
        username: str | None = None,
        is_bot: bool = False,
        user_id: int | None = None,
        last_name: str | None = None,
    ) -> User:
        """A person (or, with `is_bot`, another bot) who can write in chats."""
        return self.world.add_user(first_name, username=username, is_bot=is_bot, user_id=user_id, last_name=last_name)

    def private_chat(self, user: User) -> Chat:
        """The private chat of `user` with the bot; its id is the user's id."""
        return self.world.private_chat(user)

    def add_group(
        self,
        title: str,
        *,
        supergroup: bool = True,
        forum: bool = False,
        username: str | None = None,
        chat_id: int | None = None,
        bot_is_admin: bool = False,
        admins: tuple[User, ...] = (),
    ) -> Chat:
        """A group or supergroup (a forum with topics when `forum`); every message in it reaches the bot."""
        chat = self.world.add_group(
            title, supergroup=supergroup, forum=forum, username=username, chat_id=chat_id, bot_is_admin=bot_is_admin
        )
        chat.admins.update(user.id for user in admins)
        return chat

    def add_topic(self, chat: Chat | int, name: str, *, creator: User | None = None, announce: bool = False) -> int:
        """Open a forum topic; returns its `message_thread_id` (the id of its `forum_topic_created` message).

        With `announce`, the service message is also sent to the bot as an update, as Telegram does.
        """
        forum = self._chat(chat)
        if not forum.is_forum:
            raise ValueError(f"chat {forum.id} is not a forum")
        if creator is None:
            self._admin = self._admin or self.add_user("Group Admin", username="group_admin")
            creator = self._admin
        service = {"forum_topic_created": {"name": name, "icon_color": 7322096}}
        message = self.world.add_message(forum, creator, by_bot=False, is_topic_message=True, service=service)
        message.message_thread_id = message.message_id
        forum.topics[message.message_id] = name
        if announce:
            self.hub.push("message", message.to_api())
        return message.message_id

    # -- users acting -------------------------------------------------------------------------------------------

    def user_message(
        self,
        chat: Chat | int,
        user: User,
        text: str | None = None,
        *,
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
        caption: str | None = None,
        photo: bool = False,
        entities: list[dict[str, Any]] | None = None,
    ) -> StoredMessage:
        """`user` (a person or another bot) writes in `chat`; the bot gets a `message` update.

        Entities (bot_command, mention, url, email, hashtag) are detected in UTF-16 units unless given. A photo
        message has no text: `caption` (or `text`) becomes its caption. In a forum, a message in a topic replies
        to the topic's creation message unless it replies to something else; in a plain supergroup a reply carries
        the thread id of what it replies to. Raises ValueError for scenes Telegram could not produce.
        """
        target = self._chat(chat)
        if user.id == self.bot.id:
            raise ValueError("the bot's own messages go through the Bot API, not user_message")
        if target.is_private and user.id != target.id:
            raise ValueError(f"only user {target.id} writes in this private chat")
        if photo:
            text, caption = None, caption if caption is not None else text
        elif text is None:
            raise ValueError("a message needs text (or photo=True)")
        reply_to = None
        if reply_to_message_id is not None:
            reply_to = self.world.live_message(target.id, reply_to_message_id)
            if reply_to is None:
                raise ValueError(f"no message {reply_to_message_id} in chat {target.id} to reply to")
        thread, root = self._thread_of(target, message_thread_id, reply_to)
        message = self.world.add_message(
            target,
            user,
            by_bot=False,
            text=text,
            entities=self._user_entities(text, entities),
            caption=caption,
            caption_entities=detect_entities(caption) if caption else [],
            photo=photo,
            reply_to=reply_to or root,
            message_thread_id=thread,
            is_topic_message=target.is_forum and thread is not None,
        )
        self.hub.push("message", message.to_api())
        return message

    def user_file(
        self,
        chat: Chat | int,
        user: User,
        *,
        photo: bytes | None = None,
        document: tuple[str, str, bytes] | None = None,
        voice: tuple[bytes, int] | None = None,
        audio: tuple[str, str, bytes, int] | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        claimed_size: int | None = None,
    ) -> StoredMessage:
        """`user` sends one file in `chat` (a private chat, or a group with a caption that addresses the bot).

        Args:
            photo: A photo's bytes (listed in three sizes, as Telegram does).
            document: (file name, mime type, bytes) of a file sent as a document.
            voice: (OGG bytes, seconds) of a voice note.
            audio: (file name, mime type, bytes, seconds) of an audio file.
            caption: The text under the file.
            media_group_id: Shared by the messages of one album.
            claimed_size: The file size the message reports (a file larger than the bytes given).
        """
        target = self._chat(chat)
        files = self.api.files
        media: dict[str, Any] = {}
        if photo is not None:
            media["photo"] = files.photo_sizes(photo)
        elif document is not None:
            name, mime, data = document
            stored = files.add(data, "documents", "." + name.rpartition(".")[2], size=claimed_size)
            media["document"] = files.described(stored, file_name=name, mime_type=mime)
        elif voice is not None:
            data, seconds = voice
            stored = files.add(data, "voice", ".oga", size=claimed_size)
            media["voice"] = files.described(stored, duration=seconds, mime_type="audio/ogg")
        elif audio is not None:
            name, mime, data, seconds = audio
            stored = files.add(data, "music", "." + name.rpartition(".")[2], size=claimed_size)
            media["audio"] = files.described(stored, duration=seconds, mime_type=mime, file_name=name)
        else:
            raise ValueError("a file message needs a photo, document, voice or audio")
        if media_group_id is not None:
            media["media_group_id"] = media_group_id
        message = self.world.add_message(
            target,
            user,
            by_bot=False,
            caption=caption,
            caption_entities=detect_entities(caption) if caption else [],
            media=media,
        )
        self.hub.push("message", message.to_api())
        return message

    def edit_user_message(self, chat: Chat | int, message_id: int, text: str) -> StoredMessage:
        """A user edits their message (the text, or a photo's caption); the bot gets an `edited_message` update."""
        message = self._live(chat, message_id)
        if message.by_bot:
            raise ValueError("the bot edits its messages through the Bot API")
        if message.photo:
            message.caption, message.caption_entities = text, detect_entities(text)
        else:
            message.text, message.entities = text, detect_entities(text)
        message.edit_count += 1
        message.edit_date = max(message.date, int(time.time()))
        message.history.append(text)
        self.hub.push("edited_message", message.to_api())
        return message

    def press_button(
        self, chat: Chat | int, message_id: int, user: User, data: str, *, stale: bool = False
    ) -> CallbackQueryRecord:
        """`user` presses the inline button with `callback_data == data` on a message; the bot gets a callback_query.

        With `stale`, the button is gone but the user's app still showed it (the edit that took it away had not
        reached them): Telegram delivers such a press all the same, with the message as it is now.

        Raises ValueError when the message has no such button and the press is not `stale` (a test asking for the
        impossible).
        """
        message = self._live(chat, message_id)
        buttons = [button for row in (message.reply_markup or {}).get("inline_keyboard", []) for button in row]
        if not stale and not any(button.get("callback_data") == data for button in buttons):
            raise ValueError(f"message {message_id} has no button with callback_data {data!r}: {buttons}")
        query = CallbackQueryRecord(str(next(self._query_ids)), user, message, data)
        self.world.callback_queries[query.id] = query
        payload = {
            "id": query.id,
            "from": user.to_api(),
            "message": message.to_api(),
            "chat_instance": str(abs(message.chat.id) * 7919 % 10**18),
            "data": data,
        }
        self.hub.push("callback_query", payload)
        return query

    def stop_draft(self, chat: Chat | int, draft_id: int | None = None) -> dict[str, Any]:
        """The user presses the stop button of a draft (Bot API 10.3); the bot gets `stopped_message_generation`.

        `draft_id` None presses it on the draft a user sees now (the last visible one). The draft disappears at once
        unless it was sent with `keep_on_stop`. Raises ValueError when no such draft shows a stop button (it was not
        sent with `can_stop`, or a real message already replaced it).
        """
        target = self._chat(chat)
        now = self.clock()
        shown = [d for d in self.drafts(target) if d.visible(now) and draft_id in (None, d.draft_id)]
        if not shown or not shown[-1].can_stop:
            raise ValueError(f"no visible draft {draft_id or ''} with a stop button in chat {target.id}")
        draft = shown[-1]
        draft.stopped_at = now
        if not draft.keep_on_stop:
            draft.dismissed_at = now
        payload: dict[str, Any] = {"chat": target.to_api(), "draft_id": draft.draft_id}
        if draft.message_thread_id is not None:
            payload["message_thread_id"] = draft.message_thread_id
        return self.hub.push(STOPPED_GENERATION, payload)

    def delete_message(self, chat: Chat | int, message_id: int) -> None:
        """Someone deletes a message (Telegram tells the bot nothing); editing it then fails "not found"."""
        self._live(chat, message_id).deleted = True
        self._notify()

    def push_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue a raw update of any type (for what the helpers do not model); returns it with its update_id."""
        return self.hub.push(kind, payload)

    # -- observation --------------------------------------------------------------------------------------------

    def messages(self, chat: Chat | int, *, include_deleted: bool = False) -> list[StoredMessage]:
        """All messages in the chat (users' and the bot's, service messages included) in order."""
        stored = self.world.messages.get(self._chat(chat).id, {}).values()
        return [message for message in stored if include_deleted or not message.deleted]

    def message(self, chat: Chat | int, message_id: int) -> StoredMessage:
        """One message, deleted or not."""
        message = self.world.message(self._chat(chat).id, message_id)
        if message is None:
            raise KeyError(f"no message {message_id} in chat {self._chat(chat).id}")
        return message

    def bot_messages(self, chat: Chat | int, *, include_deleted: bool = False) -> list[StoredMessage]:
        """The messages the bot sent in the chat, in order."""
        return [message for message in self.messages(chat, include_deleted=include_deleted) if message.by_bot]

    def visible_texts(self, chat: Chat | int, *, message_thread_id: int | None = None) -> list[str]:
        """What a user sees of the bot in the chat (or one topic): the current texts of its undeleted messages."""
        return [
            message.text
            for message in self.bot_messages(chat)
            if message.text is not None
            and (message_thread_id is None or message.message_thread_id == message_thread_id)
        ]

    def drafts(self, chat: Chat | int) -> list[Draft]:
        """Every draft preview the bot streamed in the chat, in order of first appearance."""
        return [draft for draft in self.world.drafts if draft.chat_id == self._chat(chat).id]

    def active_drafts(self, chat: Chat | int) -> list[Draft]:
        """Drafts a user would still see now: not replaced by a real message and updated in the last 30 s."""
        now = self.clock()
        return [draft for draft in self.drafts(chat) if draft.visible(now)]

    def chat_actions(self, chat: Chat | int) -> list[ChatAction]:
        """sendChatAction calls that succeeded for the chat, in order."""
        return [action for action in self.world.chat_actions if action.chat_id == self._chat(chat).id]

    def commands(self, *, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, str]]:
        """The command list set for a scope (default scope if None) and language."""
        return self.world.commands.get(BotApi.commands_key({"scope": scope, "language_code": language_code}), [])

    @property
    def updates(self) -> list[dict[str, Any]]:
        """Every update created so far, delivered or not."""
        return self.hub.log

    @property
    def waiting_polls(self) -> int:
        """getUpdates requests parked right now, waiting for an update (a test can wait for one to be parked)."""
        return self.hub.waiting_polls

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        """Updates not yet confirmed by getUpdates or accepted by the webhook."""
        return self.hub.pending

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook POST attempt with its outcome."""
        return self.hub.deliveries

    @property
    def webhook(self) -> Webhook | None:
        """The webhook currently set, if any."""
        return self.hub.webhook

    @property
    def callback_queries(self) -> dict[str, CallbackQueryRecord]:
        """Button presses by query id, with the bot's answers."""
        return self.world.callback_queries

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _chat(self, chat: Chat | int) -> Chat:
        chat_id = chat.id if isinstance(chat, Chat) else chat
        if chat_id not in self.world.chats:
            raise KeyError(f"no chat {chat_id}; create it with private_chat or add_group")
        return self.world.chats[chat_id]

    def _live(self, chat: Chat | int, message_id: int) -> StoredMessage:
        message = self.world.live_message(self._chat(chat).id, message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in chat {self._chat(chat).id} (or it was deleted)")
        return message

    def _thread_of(
        self, chat: Chat, thread: int | None, reply_to: StoredMessage | None
    ) -> tuple[int | None, StoredMessage | None]:
        if chat.is_forum:
            thread = thread if thread is not None else (reply_to.message_thread_id if reply_to else None)
            if thread is not None and thread not in chat.topics:
                raise ValueError(f"no topic {thread} in forum {chat.id}")
            return thread, self.world.message(chat.id, thread) if thread is not None else None
        if thread is None and reply_to is not None and chat.type == "supergroup":
            thread = reply_to.message_thread_id or reply_to.message_id
        return thread, None

    @staticmethod
    def _user_entities(text: str | None, given: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        if text is None:
            return []
        if given is None:
            return detect_entities(text)
        try:
            return validate_entities(text, given)
        except EntityError as error:
            raise ValueError(f"invalid entities for a user message: {error.detail}") from None
