"""Which Telegram updates the bot answers, refuses or ignores (real python-telegram-bot Update objects)."""

from __future__ import annotations

from typing import Any

import pytest
from telegram import Update

from channels.inbound import NOT_ALLOWED, Answer, Ignore, Refuse
from channels.telegram.inbound import ONLY_TEXT, TelegramIdentity, addressed, read_update

ME = TelegramIdentity(id=999, username="LiveBot")
ALICE = {"id": 1, "is_bot": False, "first_name": "Alice", "username": "alice"}
PRIVATE = {"id": 1, "type": "private", "first_name": "Alice"}
GROUP = {"id": -100, "type": "supergroup", "title": "Team"}


def update(text: str | None = "hello", *, chat: dict = PRIVATE, sender: dict = ALICE, **message: Any) -> Update:
    body: dict[str, Any] = {"message_id": 10, "date": 0, "chat": chat, "from": sender, **message}
    if text is not None:
        body["text"] = text
    entities = []
    for word in (text or "").split():
        offset = (text or "").index(word)
        if word.startswith("@"):
            entities.append({"type": "mention", "offset": offset, "length": len(word)})
        elif word.startswith("/") and offset == 0:
            entities.append({"type": "bot_command", "offset": 0, "length": len(word)})
    if entities:
        body["entities"] = entities
    return Update.de_json({"update_id": 1, "message": body}, None)


def test_private_text_is_answered() -> None:
    verdict = read_update(update("What is 2+2?"), ME)
    assert isinstance(verdict, Answer)
    assert (verdict.incoming.conversation, verdict.incoming.text) == ("telegram:1", "What is 2+2?")
    assert verdict.target.kind == "private" and verdict.target.reply_to is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@livebot what is 2+2?", "what is 2+2?"),  # mention, any case
        ("/help", "/help"),
        ("/reset@LiveBot", "/reset"),
        ("@LiveBot", "/help"),  # a bare mention asks what the bot does
    ],
)
def test_group_messages_addressed_to_the_bot_are_answered(text: str, expected: str) -> None:
    verdict = read_update(update(text, chat=GROUP), ME)
    assert isinstance(verdict, Answer)
    assert verdict.incoming.text == expected
    assert verdict.target.reply_to == 10  # answers quote the question in groups


def test_a_reply_to_the_bot_is_addressed() -> None:
    bot_message = {"message_id": 5, "date": 0, "chat": GROUP, "from": {"id": 999, "is_bot": True, "first_name": "B"}}
    assert isinstance(read_update(update("and 3+3?", chat=GROUP, reply_to_message=bot_message), ME), Answer)


@pytest.mark.parametrize("text", ["just chatting", "@otherbot hi", "/help@OtherBot"])
def test_unaddressed_group_messages_are_ignored(text: str) -> None:
    assert isinstance(read_update(update(text, chat=GROUP), ME), Ignore)


def test_an_albums_later_item_is_not_addressed_by_itself_yet_is_read_as_part_of_the_album() -> None:
    first, later = update("@livebot compare these", chat=GROUP), update("the second photo", chat=GROUP)
    assert first.message is not None and later.message is not None
    assert addressed(first.message, ME) and not addressed(later.message, ME)
    assert isinstance(read_update(later, ME), Ignore)
    verdict = read_update(later, ME, in_album=True)
    assert isinstance(verdict, Answer) and verdict.incoming.text == "the second photo"
    private = update("hi").message
    assert private is not None and addressed(private, ME)  # every private message is for the bot


def test_forum_topics_are_their_own_conversation_and_reply_in_the_topic() -> None:
    verdict = read_update(
        update("@livebot hi", chat={**GROUP, "is_forum": True}, message_thread_id=42, is_topic_message=True), ME
    )
    assert isinstance(verdict, Answer)
    assert verdict.incoming.conversation == "telegram:-100:42"
    assert (verdict.target.kind, verdict.target.thread_id) == ("topic", 42)


def test_other_bots_and_edits_are_ignored() -> None:
    robot = {"id": 7, "is_bot": True, "first_name": "R"}
    assert isinstance(read_update(update(sender=robot), ME), Ignore)
    edited = Update.de_json(
        {"update_id": 2, "edited_message": {"message_id": 1, "date": 0, "chat": PRIVATE, "from": ALICE, "text": "x"}},
        None,
    )
    assert isinstance(read_update(edited, ME), Ignore)


def test_non_text_gets_a_short_reply_and_captions_count_as_text() -> None:
    sticker = read_update(
        update(
            None,
            sticker={
                "file_id": "s",
                "file_unique_id": "u",
                "width": 1,
                "height": 1,
                "is_animated": False,
                "is_video": False,
                "type": "regular",
            },
        ),
        ME,
    )
    assert sticker == Refuse(sticker.target, ONLY_TEXT)  # type: ignore[union-attr]
    photo = read_update(update(None, caption="what is in this picture?", photo=[]), ME)
    assert isinstance(photo, Answer) and photo.incoming.text == "what is in this picture?"


def test_allowlist_by_id_or_username() -> None:
    by_name = TelegramIdentity(id=999, username="LiveBot", allowed=frozenset({"alice"}))
    by_id = TelegramIdentity(id=999, username="LiveBot", allowed=frozenset({"1"}))
    stranger = TelegramIdentity(id=999, username="LiveBot", allowed=frozenset({"bob"}))
    assert isinstance(read_update(update(), by_name), Answer)
    assert isinstance(read_update(update(), by_id), Answer)
    refused = read_update(update(), stranger)
    assert isinstance(refused, Refuse) and refused.text == NOT_ALLOWED


def test_over_long_input_is_refused_politely() -> None:
    verdict = read_update(update("x" * 4001), ME)
    assert isinstance(verdict, Refuse) and "too long" in verdict.text
