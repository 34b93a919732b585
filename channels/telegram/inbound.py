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

from channels.inbound import (
    NOT_ALLOWED,
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
from channels.telegram.files import Downloader
from channels.telegram.surface import STOP_DATA, TelegramTarget

__all__ = [
    "NOT_ALLOWED",
    "ONLY_TEXT",
    "TelegramIdentity",
    "addressed",
    "approval_request",
    "read_update",
    "stop_request",
]

ONLY_TEXT = "I can't read that kind of message: send me text, a photo, a voice note or a document."


@dataclass(frozen=True, slots=True, kw_only=True)
class TelegramIdentity(Identity):
    """Who the bot is (from getMe) and whom it serves (`allowed`: user ids and lower-case usernames)."""

    id: int
    username: str


def read_update(
    update: Update, me: TelegramIdentity, files: Downloader | None = None, *, in_album: bool = False
) -> Verdict[TelegramTarget]:
    """What to do with one update.

    Args:
        update: The update.
        me: The bot.
        files: Makes the attachments of a message with files (nothing is downloaded yet); None reads text only.
        in_album: The message belongs to an album already being answered (in a group, its items after the
            first carry no mention, yet are part of the question).
    """
    message = update.message
    if message is None:
        return Ignore("not a new message (edited, channel post, callback, ...)")
    user = message.from_user
    if user is None or user.is_bot:
        return Ignore("from a bot or anonymous")
    if not (in_album or addressed(message, me)):
        return Ignore("group message not addressed to the bot")
    target = _target(message)
    text = message.text if message.text is not None else message.caption
    allowed = me.allows(str(user.id), (user.username or "").lower())
    attachments = files.attachments(message) if files is not None else ()
    screened = screen(
        target,
        None if text is None else _without_mention(text, me.username).strip(),
        me,
        allowed=allowed,
        only_text=ONLY_TEXT,
        files=bool(attachments),
    )
    if isinstance(screened, Refuse):
        return screened
    name = user.username or user.first_name
    incoming = Incoming(target.conversation, screened, str(user.id), name, attachments, message.message_id)
    return Answer(incoming, target)


def stop_request(update: Update) -> StopPress[TelegramTarget] | None:
    """The Stop button press in `update` (its message is the message id), or None for any other update."""
    query = update.callback_query
    if query is None or query.data != STOP_DATA or not isinstance(query.message, Message):
        return None
    return StopPress(_target(query.message), query.message.message_id, user=str(query.from_user.id))


def approval_request(update: Update) -> ApprovalPress[TelegramTarget] | None:
    """The Approve or Deny press in `update`, or None for any other update."""
    query = update.callback_query
    decided = read_approval_data(query.data if query is not None else None)
    if query is None or decided is None or not isinstance(query.message, Message):
        return None
    who = query.from_user
    name = who.first_name or (f"@{who.username}" if who.username else str(who.id))
    return ApprovalPress(_target(query.message), query.message.message_id, str(who.id), name, *decided)


def _target(message: Message) -> TelegramTarget:
    chat = message.chat
    if chat.type == ChatType.PRIVATE:
        return TelegramTarget(chat.id, "private", reply_to=None)
    topic = message.message_thread_id if message.is_topic_message else None
    kind = "topic" if topic is not None else ("supergroup" if chat.type == ChatType.SUPERGROUP else "group")
    return TelegramTarget(chat.id, kind, thread_id=topic, reply_to=message.message_id)


def addressed(message: Message, me: TelegramIdentity) -> bool:
    """Whether `message` is for the bot by itself: every message of a private chat; in a group, one that mentions
    the bot, replies to it or is a command for it (an album's later items are not, yet belong to the question)."""
    if message.chat.type == ChatType.PRIVATE:
        return True
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
