"""Deciding what to do with a Telegram update: answer it, refuse it politely, or ignore it.

In a private chat every message with text or a file (photo, document, voice note, audio) is for the bot. In a
group the bot answers only when addressed: an @mention of its username (in the text or a caption), a reply to one
of its messages, or a command (bare, or `/cmd@thisbot`); the later items of an album it was addressed in count
too. Everything else is ignored without a model call. Edited messages, other bots' messages and service messages
are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatType

from channels.inbound import Incoming
from channels.telegram.files import Downloader
from channels.telegram.surface import STOP_DATA, Target

NOT_ALLOWED = "Sorry, this bot is private: it only answers the people it was set up for."
ONLY_TEXT = "I can't read that kind of message: send me text, a photo, a voice note or a document."
TOO_LONG = "That message is too long for me ({length:,} characters; I read up to {limit:,}). Could you shorten it?"


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the bot is and whom it serves."""

    id: int
    username: str
    allowed: frozenset[str] = frozenset()
    """User ids and lower-case usernames allowed to talk to the bot; empty for everyone."""
    max_input_chars: int = 4000


@dataclass(frozen=True, slots=True)
class Answer:
    """Run the agent on `incoming` and stream the reply to `target`."""

    incoming: Incoming
    target: Target


@dataclass(frozen=True, slots=True)
class Refuse:
    """Reply `text` to `target`, with no model call."""

    target: Target
    text: str


@dataclass(frozen=True, slots=True)
class Ignore:
    """Do nothing; `reason` is for the debug log."""

    reason: str


Verdict = Answer | Refuse | Ignore


def read_update(update: Update, me: BotIdentity, files: Downloader | None = None, *, in_album: bool = False) -> Verdict:
    """What to do with one update.

    Args:
        update: The update.
        me: The bot.
        files: Makes the attachments of a message with files; None reads text only.
        in_album: The message belongs to an album already being answered (in a group, its items after the
            first carry no mention, yet are part of the question).
    """
    message = update.message
    if message is None:
        return Ignore("not a new message (edited, channel post, callback, ...)")
    user = message.from_user
    if user is None or user.is_bot:
        return Ignore("from a bot or anonymous")
    private = message.chat.type == ChatType.PRIVATE
    text = message.text if message.text is not None else message.caption
    if not private and not (in_album or _addressed(message, me)):
        return Ignore("group message not addressed to the bot")
    target = _target(message)
    if me.allowed and str(user.id) not in me.allowed and (user.username or "").lower() not in me.allowed:
        return Refuse(target, NOT_ALLOWED)
    attachments = files.attachments(message) if files is not None else ()
    if text is None and not attachments:
        return Refuse(target, ONLY_TEXT)
    text = _without_mention(text or "", me.username).strip()
    if not text and not attachments:
        text = "/help"
    if len(text) > me.max_input_chars:
        return Refuse(target, TOO_LONG.format(length=len(text), limit=me.max_input_chars))
    key = conversation_key(target)
    name = user.username or user.first_name
    return Answer(Incoming(key, text, user_id=str(user.id), user_name=name, attachments=attachments), target)


def conversation_key(target: Target) -> str:
    """The memory key: one conversation per chat, and per topic in a forum."""
    suffix = f":{target.thread_id}" if target.kind == "topic" else ""
    return f"telegram:{target.chat_id}{suffix}"


@dataclass(frozen=True, slots=True)
class StopPress:
    """A press of the Stop button on the bot's message `message_id`, which went to `target`."""

    target: Target
    message_id: int

    @property
    def conversation(self) -> str:
        """The conversation whose reply the press asks to stop."""
        return conversation_key(self.target)


def stop_request(update: Update) -> StopPress | None:
    """The Stop button press in `update`, or None for any other update."""
    query = update.callback_query
    if query is None or query.data != STOP_DATA or not isinstance(query.message, Message):
        return None
    return StopPress(_target(query.message), query.message.message_id)


def _target(message: Message) -> Target:
    chat = message.chat
    if chat.type == ChatType.PRIVATE:
        return Target(chat.id, "private", reply_to=None)
    topic = message.message_thread_id if message.is_topic_message else None
    kind = "topic" if topic is not None else ("supergroup" if chat.type == ChatType.SUPERGROUP else "group")
    return Target(chat.id, kind, thread_id=topic, reply_to=message.message_id)


def _addressed(message: Message, me: BotIdentity) -> bool:
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == me.id:
        return True
    entities = message.parse_entities() if message.text is not None else message.parse_caption_entities()
    for entity, value in entities.items():
        if entity.type == MessageEntity.MENTION and value[1:].lower() == me.username.lower():
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == me.id:
            return True
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            _, _, addressee = value.partition("@")
            return not addressee or addressee.lower() == me.username.lower()
    return False


def _without_mention(text: str, username: str) -> str:
    """The text with "@thisbot" removed and "/cmd@thisbot" shortened to "/cmd"."""
    return re.sub(rf"@{re.escape(username)}\b", "", text, flags=re.IGNORECASE)
