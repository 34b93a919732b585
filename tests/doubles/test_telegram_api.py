"""The Telegram Bot API double, driven by the real python-telegram-bot over real HTTP.

If the double accepted what Telegram refuses (or refused what it accepts, or answered in another shape), every
integration test built on it would prove the wrong thing. These tests pin the behaviours the streaming bot depends
on, through `telegram.Bot` itself, so PTB's encodings and its error parsing are part of what is checked.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import telegram
from aiohttp import web
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity, ReplyParameters, Update
from telegram.error import BadRequest, Conflict, InvalidToken, NetworkError, RetryAfter
from telegram.ext import Application, CommandHandler, ContextTypes

from tests.doubles.telegram_api import RateLimits, TelegramDouble
from tests.doubles.telegram_markup import parse_html, parse_markdown, parse_markdown_v2
from tests.doubles.telegram_text import EntityError, detect_entities, trim, utf16_len

NO_LIMITS = RateLimits(enabled=False)
# PTB 22 warns on every RetryAfter that `retry_after` will become a timedelta; that is PTB's concern, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class FakeClock:
    """A monotonic clock the test moves by hand, so flood-control arithmetic is exact and nothing sleeps."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def tg() -> AsyncIterator[TelegramDouble]:
    async with TelegramDouble(limits=NO_LIMITS, webhook_retry_delay=0.01) as double:
        yield double


@pytest.fixture
async def bot(tg: TelegramDouble) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(tg.token, base_url=tg.base_url) as client:
        yield client


def retry_seconds(error: RetryAfter) -> float:
    """`RetryAfter.retry_after` as seconds, whether PTB gives an int or (with PTB_TIMEDELTA) a timedelta."""
    value = error.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else value


# -- basics ---------------------------------------------------------------------------------------------------


async def test_initialize_calls_get_me_and_learns_the_bot(tg: TelegramDouble, bot: telegram.Bot) -> None:
    assert bot.username == "livebot_test"
    assert bot.id == tg.bot.id == 123456789
    assert tg.calls[0].method == "getMe" and tg.calls[0].ok


async def test_wrong_token_is_unauthorized_and_unknown_methods_are_not_found(tg: TelegramDouble) -> None:
    with pytest.raises(InvalidToken):
        async with telegram.Bot("999:wrong", base_url=tg.base_url):
            pass
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{tg.base_url}{tg.token}/noSuchMethod") as response:
            assert response.status == 404
            assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.post(f"{tg.base_url}999:wrong/getMe") as response:
            assert await response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_get_query_string_json_body_and_any_method_case(tg: TelegramDouble) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{tg.base_url}{tg.token}/GETME") as response:
            assert (await response.json())["result"]["username"] == "livebot_test"
        body = {"chat_id": dm.id, "text": "hi there", "entities": [{"type": "bold", "offset": 0, "length": 2}]}
        async with http.post(f"{tg.base_url}{tg.token}/sendmessage", json=body) as response:
            result = (await response.json())["result"]
    assert result["entities"] == [{"type": "bold", "offset": 0, "length": 2}]
    assert tg.calls[-1].method == "sendMessage"
    assert tg.calls[-1].params["chat_id"] == dm.id


# -- sending and editing --------------------------------------------------------------------------------------


async def test_send_and_edit_with_entities(tg: TelegramDouble, bot: telegram.Bot) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Stop", callback_data="stop")]])
    sent = await bot.send_message(dm.id, "😀 bold", entities=[MessageEntity("bold", 3, 4)], reply_markup=keyboard)
    assert sent.parse_entities() == {MessageEntity("bold", 3, 4): "bold"}
    assert sent.reply_markup == keyboard

    edited = await bot.edit_message_text("😀 bolder", dm.id, sent.message_id, entities=[MessageEntity("bold", 3, 6)])
    assert edited.text == "😀 bolder" and edited.edit_date is not None
    assert edited.reply_markup is None  # leaving reply_markup out removes the keyboard, as Telegram does
    stored = tg.message(dm, sent.message_id)
    assert stored.edit_count == 1 and stored.history == ["😀 bold", "😀 bolder"]
    assert stored.entities == [{"type": "bold", "offset": 3, "length": 6}]
    assert tg.visible_texts(dm) == ["😀 bolder"]


async def test_identical_edit_is_not_modified(tg: TelegramDouble, bot: telegram.Bot) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    sent = await bot.send_message(dm.id, "same")
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("same", dm.id, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_text("same \n", dm.id, sent.message_id)  # Telegram trims: still the same text
    assert tg.calls[-1].description is not None
    assert tg.calls[-1].description.startswith("Bad Request: message is not modified: specified new message")
    assert tg.message(dm, sent.message_id).edit_count == 0


async def test_text_limit_counts_utf16_units(tg: TelegramDouble, bot: telegram.Bot) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    await bot.send_message(dm.id, "a" * 4096)
    await bot.send_message(dm.id, "😀" * 2048)  # 4096 units
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(dm.id, "😀" * 2049)  # 2049 characters, 4098 units
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(dm.id, " \n\t ")
    assert len(tg.bot_messages(dm)) == 2


async def test_bad_entities_cannot_be_parsed(tg: TelegramDouble, bot: telegram.Bot) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(dm.id, "😀", entities=[MessageEntity("bold", 0, 3)])  # 2 units long
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(dm.id, "hello", api_kwargs={"entities": [{"type": "shiny", "offset": 0, "length": 1}]})
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(dm.id, "hello", entities=[MessageEntity("text_link", 0, 5)])  # no url
    await bot.send_message(dm.id, "😀", entities=[MessageEntity("bold", 0, 2)])
    assert tg.visible_texts(dm) == ["😀"]


async def test_real_wording_of_entity_errors_is_available() -> None:
    async with TelegramDouble(limits=NO_LIMITS, real_entity_errors=True) as tg:
        dm = tg.private_chat(tg.add_user("Alice"))
        async with telegram.Bot(tg.token, base_url=tg.base_url) as bot:
            with pytest.raises(BadRequest, match=r"(?i)entity beginning at UTF-16 offset 0 ends after the end"):
                await bot.send_message(dm.id, "x", entities=[MessageEntity("bold", 0, 2)])


async def test_parse_modes_are_checked_and_rendered(tg: TelegramDouble, bot: telegram.Bot) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    with pytest.raises(
        BadRequest, match=r"(?i)can't parse entities: can't find end tag corresponding to start tag \"b\""
    ):
        await bot.send_message(dm.id, "<b>open", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)character '.' is reserved"):
        await bot.send_message(dm.id, "End.", parse_mode="MarkdownV2")
    sent = await bot.send_message(dm.id, "<b>bold</b> &amp; <a href='https://example.org'>link</a>", parse_mode="HTML")
    assert sent.text == "bold & link"
    assert [(e.type, e.offset, e.length, e.url) for e in sent.entities] == [
        ("bold", 0, 4, None),
        ("text_link", 7, 4, "https://example.org"),
    ]


async def test_replies_and_forum_topics(tg: TelegramDouble, bot: telegram.Bot) -> None:
    alice = tg.add_user("Alice", username="alice")
    forum = tg.add_group("Team", forum=True)
    topic = tg.add_topic(forum, "Questions")
    question = tg.user_message(forum, alice, "@livebot_test what time is it?", message_thread_id=topic)
    update = (await bot.get_updates())[0]
    assert update.message.is_topic_message and update.message.message_thread_id == topic
    assert update.message.reply_to_message.forum_topic_created.name == "Questions"
    assert update.message.entities == (MessageEntity("mention", 0, 13),)

    answer = await bot.send_message(
        forum.id, "Noon.", message_thread_id=topic, reply_parameters=ReplyParameters(question.message_id)
    )
    assert answer.reply_to_message.message_id == question.message_id
    assert tg.visible_texts(forum, message_thread_id=topic) == ["Noon."]
    with pytest.raises(BadRequest, match=r"(?i)message thread not found"):
        await bot.send_message(forum.id, "lost", message_thread_id=999)
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(forum.id, "lost", reply_parameters=ReplyParameters(999))


async def test_deleted_message_cannot_be_edited(tg: TelegramDouble, bot: telegram.Bot) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    first = await bot.send_message(dm.id, "one")
    second = await bot.send_message(dm.id, "two")
    tg.delete_message(dm, first.message_id)  # the user deletes it
    assert await bot.delete_message(dm.id, second.message_id)
    for message in (first, second):
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text("again", dm.id, message.message_id)
    assert tg.visible_texts(dm) == []


# -- drafts and chat actions ----------------------------------------------------------------------------------


async def test_drafts_only_in_private_chats_and_replaced_by_the_message(tg: TelegramDouble, bot: telegram.Bot) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    group = tg.add_group("Team")
    with pytest.raises(BadRequest, match=r"(?i)textdraft_peer_invalid"):
        await bot.send_message_draft(group.id, 7, "hi")
    with pytest.raises(BadRequest, match=r"(?i)draft_id"):
        await bot.send_message_draft(dm.id, 0, "hi")
    assert await bot.send_message_draft(dm.id, 7, "Hel")
    assert await bot.send_message_draft(dm.id, 7, "Hello wor")
    [draft] = tg.active_drafts(dm)
    assert (draft.text, draft.history) == ("Hello wor", ["Hel", "Hello wor"])
    await bot.send_message(dm.id, "Hello world")
    assert tg.active_drafts(dm) == [] and tg.drafts(dm) == [draft]


async def test_a_draft_with_another_id_replaces_the_one_shown(tg: TelegramDouble, bot: telegram.Bot) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    assert await bot.send_message_draft(dm.id, 7, "An answer cut short")
    assert await bot.send_message_draft(dm.id, 9, "The whole answer, from the start")  # not animated: replaced
    [first, second] = tg.drafts(dm)
    assert tg.active_drafts(dm) == [second] and first.text == "An answer cut short"
    assert await bot.send_message_draft(dm.id, 7, "Again")  # an id seen before, its draft gone: a new preview
    assert [d.text for d in tg.active_drafts(dm)] == ["Again"] and len(tg.drafts(dm)) == 3


async def test_a_draft_sent_with_can_stop_can_be_stopped_by_the_user(tg: TelegramDouble, bot: telegram.Bot) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    assert await bot.send_message_draft(dm.id, 7, "Plain draft")
    with pytest.raises(ValueError, match="stop button"):
        tg.stop_draft(dm, 7)  # no can_stop: the user sees no stop button
    stoppable = {"can_stop": True, "keep_on_stop": True}
    assert await bot.send_message_draft(dm.id, 8, "Writing", api_kwargs=stoppable)
    [_, draft] = tg.drafts(dm)
    assert (draft.can_stop, draft.keep_on_stop) == (True, True)
    update = tg.stop_draft(dm)
    assert update["stopped_message_generation"] == {"chat": dm.to_api(), "draft_id": 8}
    assert await bot.send_message_draft(dm.id, 8, "Writing more", api_kwargs=stoppable)  # accepted, not shown
    assert draft.text == "Writing" and draft in tg.active_drafts(dm)  # kept on stop
    await bot.send_message(dm.id, "Writing ⏹")
    assert tg.active_drafts(dm) == []


async def test_a_stopped_draft_without_keep_on_stop_disappears_at_once(tg: TelegramDouble, bot: telegram.Bot) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    assert await bot.send_message_draft(dm.id, 3, "Writing", api_kwargs={"can_stop": True})
    tg.stop_draft(dm, 3)
    assert tg.active_drafts(dm) == []


async def test_draft_stop_flags_must_be_booleans(tg: TelegramDouble, bot: telegram.Bot) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    with pytest.raises(BadRequest, match=r"(?i)can_stop must be a boolean"):
        await bot.send_message_draft(dm.id, 3, "Writing", api_kwargs={"can_stop": "yes"})
    with pytest.raises(BadRequest, match=r"(?i)keep_on_stop must be a boolean"):
        await bot.send_message_draft(dm.id, 3, "Writing", api_kwargs={"keep_on_stop": 1})


async def test_stopped_message_generation_is_delivered_only_when_asked_for(
    tg: TelegramDouble, bot: telegram.Bot
) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    await bot.send_message_draft(dm.id, 5, "Writing", api_kwargs={"can_stop": True})
    tg.stop_draft(dm, 5)
    assert await bot.get_updates(timeout=0) == ()  # the default set leaves it out
    await bot.send_message_draft(dm.id, 6, "Writing", api_kwargs={"can_stop": True})
    tg.stop_draft(dm, 6)
    [update] = await bot.get_updates(timeout=0, allowed_updates=["message", "stopped_message_generation"])
    assert update.api_kwargs["stopped_message_generation"]["draft_id"] == 6  # PTB 22 predates the type


async def test_chat_actions_are_recorded(tg: TelegramDouble, bot: telegram.Bot) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    assert await bot.send_chat_action(dm.id, "typing")
    with pytest.raises(BadRequest):
        await bot.send_chat_action(dm.id, "dancing")
    assert [action.action for action in tg.chat_actions(dm)] == ["typing"]


# -- flood control --------------------------------------------------------------------------------------------


async def test_private_chat_burst_then_retry_after_and_violations() -> None:
    clock = FakeClock()
    limits = RateLimits(private_burst=2, private_per_second=0.5)
    async with TelegramDouble(limits=limits, clock=clock) as tg:
        dm = tg.private_chat(tg.add_user("Alice"))
        async with telegram.Bot(tg.token, base_url=tg.base_url) as bot:
            await bot.send_message(dm.id, "1")
            await bot.send_message(dm.id, "2")
            with pytest.raises(RetryAfter) as refused:
                await bot.send_message(dm.id, "3")
            assert retry_seconds(refused.value) == 2  # one token at 0.5/s
            assert tg.calls_inside_retry_after == []

            clock.advance(1)
            with pytest.raises(RetryAfter) as again:
                await bot.send_message(dm.id, "3")  # the bot ignored the wait
            assert retry_seconds(again.value) == 1
            [violation] = tg.calls_inside_retry_after
            assert (violation.scope, violation.early_by) == (f"chat:{dm.id}", 1.0)
            assert violation.call.method == "sendMessage"

            clock.advance(1)
            await bot.send_message(dm.id, "3")
            assert len(tg.calls_inside_retry_after) == 1
            assert [call.status for call in tg.rate_limited] == [429, 429]
    assert tg.visible_texts(dm) == ["1", "2", "3"]


async def test_group_window_and_global_budget() -> None:
    clock = FakeClock()
    limits = RateLimits(group_messages=2, group_window=60, global_calls=3, global_window=1)
    async with TelegramDouble(limits=limits, clock=clock) as tg:
        group = tg.add_group("Team")
        others = [tg.private_chat(tg.add_user(f"U{n}")) for n in range(3)]
        async with telegram.Bot(tg.token, base_url=tg.base_url) as bot:
            sent = await bot.send_message(group.id, "a")
            clock.advance(10)
            await bot.edit_message_text("ab", group.id, sent.message_id)  # edits count too
            with pytest.raises(RetryAfter) as refused:
                await bot.send_message(group.id, "c")
            assert retry_seconds(refused.value) == 50  # the first call leaves the 60 s window at t=60

            await bot.send_message(others[0].id, "x")
            await bot.send_chat_action(others[1].id, "typing")  # counts against the global budget only
            with pytest.raises(RetryAfter):
                await bot.send_message(others[2].id, "y")
            assert tg.rate_limited[-1].chat_id == others[2].id
            with pytest.raises(RetryAfter):
                await bot.send_message(others[1].id, "z")  # global flood wait applies to every chat
            assert tg.calls_inside_retry_after[-1].scope == "global"


async def test_injected_429_is_enforced_and_recorded(tg: TelegramDouble, bot: telegram.Bot) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    sent = await bot.send_message(dm.id, "one")
    tg.fail_next("editMessageText", retry_after=30)
    with pytest.raises(RetryAfter) as refused:
        await bot.edit_message_text("one two", dm.id, sent.message_id)
    assert retry_seconds(refused.value) == 30
    assert tg.calls[-1].description == "Too Many Requests: retry after 30"
    with pytest.raises(RetryAfter):
        await bot.send_message(dm.id, "too early")
    assert [v.call.method for v in tg.calls_inside_retry_after] == ["sendMessage"]
    assert tg.visible_texts(dm) == ["one"]


async def test_server_errors_and_connection_resets(tg: TelegramDouble, bot: telegram.Bot) -> None:
    dm = tg.private_chat(tg.add_user("Alice"))
    tg.fail_next("sendMessage", status=502, raw_body="<html>Bad Gateway</html>")
    with pytest.raises(NetworkError):
        await bot.send_message(dm.id, "one")
    tg.fail_next("sendMessage", chat_id=dm.id, reset_connection=True)
    with pytest.raises(NetworkError):
        await bot.send_message(dm.id, "one")
    tg.fail_next("sendmessage", after_effect=True)  # sent, but the answer is lost
    with pytest.raises(NetworkError):
        await bot.send_message(dm.id, "one")
    await bot.send_message(dm.id, "two")
    assert tg.visible_texts(dm) == ["one", "two"]
    assert [call.status for call in tg.calls_to("sendMessage")] == [502, 0, 500, 200]
    assert tg.unfired_faults == []


# -- updates --------------------------------------------------------------------------------------------------


async def test_long_poll_returns_an_injected_command_promptly(tg: TelegramDouble, bot: telegram.Bot) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await tg.wait_for(lambda: tg.waiting_polls == 1)
    tg.user_message(dm, alice, "/start now")
    [update] = await asyncio.wait_for(poll, timeout=5)  # long before the 30 s poll timeout
    assert update.message.text == "/start now"
    assert update.message.entities == (MessageEntity("bot_command", 0, 6),)
    assert update.message.from_user.username == "alice"

    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    assert tg.pending_updates == []


async def test_edits_callbacks_and_allowed_updates(tg: TelegramDouble, bot: telegram.Bot) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    said = tg.user_message(dm, alice, "helo")
    tg.edit_user_message(dm, said.message_id, "hello")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Stop", callback_data="stop")]])
    sent = await bot.send_message(dm.id, "working", reply_markup=keyboard)
    query = tg.press_button(dm, sent.message_id, alice, "stop")

    updates = await bot.get_updates(allowed_updates=["edited_message", "callback_query"])
    assert [update.edited_message.text for update in updates if update.edited_message] == ["hello"]
    [pressed] = [update.callback_query for update in updates if update.callback_query]
    assert (pressed.data, pressed.message.message_id) == ("stop", sent.message_id)
    assert await bot.answer_callback_query(pressed.id, text="Stopped")
    assert query.answered and query.answer == {"text": "Stopped"}
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query(pressed.id)


async def test_application_polling_round_trip(tg: TelegramDouble) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        reply = await update.message.reply_text("Hello")
        await reply.edit_text("Hello Alice")

    app = Application.builder().token(tg.token).base_url(tg.base_url).build()
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=10)
        tg.user_message(dm, alice, "/start")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Hello Alice"])
        await app.updater.stop()
        await app.stop()
    assert [call.method for call in tg.calls[:2]] == ["getMe", "deleteWebhook"]
    assert tg.pending_updates == []  # the shutdown poll confirmed the update
    assert all(call.ok for call in tg.calls if not call.client_gone)


async def test_photos_and_other_bots(tg: TelegramDouble, bot: telegram.Bot) -> None:
    alice = tg.add_user("Alice")
    helper = tg.add_user("Helper", username="helper_bot", is_bot=True)
    group = tg.add_group("Team")
    tg.user_message(group, alice, caption="look #cats", photo=True)
    tg.user_message(group, helper, "beep")
    photo, beep = [update.message for update in await bot.get_updates()]
    assert photo.text is None and photo.caption == "look #cats" and len(photo.photo) == 3
    assert photo.parse_caption_entities() == {MessageEntity("hashtag", 5, 5): "#cats"}
    assert beep.from_user.is_bot and beep.from_user.username == "helper_bot"
    with pytest.raises(ValueError, match="private chat"):
        tg.user_message(tg.private_chat(helper), alice, "not my chat")


async def test_webhook_delivery_with_secret_and_retries(tg: TelegramDouble, bot: telegram.Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(status=500 if len(received) == 1 else 200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        alice = tg.add_user("Alice")
        dm = tg.private_chat(alice)
        assert await bot.set_webhook(url, secret_token="s3cret-Value_1")
        assert (await bot.get_webhook_info()).url == url
        with pytest.raises(Conflict):
            await bot.get_updates()
        tg.user_message(dm, alice, "hi")
        await tg.wait_for(lambda: any(delivery.ok for delivery in tg.deliveries))
        assert [delivery.status for delivery in tg.deliveries] == [500, 200]
        assert [secret for secret, _ in received] == ["s3cret-Value_1"] * 2
        assert received[1][1]["message"]["text"] == "hi"
        assert (await bot.get_webhook_info()).pending_update_count == 0
        assert await bot.delete_webhook()
        assert await bot.get_updates(timeout=0) == ()
    finally:
        await runner.cleanup()


async def test_my_commands(tg: TelegramDouble, bot: telegram.Bot) -> None:
    assert await bot.set_my_commands([BotCommand("start", "Say hello"), BotCommand("reset", "Forget")])
    assert [command.command for command in await bot.get_my_commands()] == ["start", "reset"]
    with pytest.raises(BadRequest):
        await bot.set_my_commands([BotCommand("Bad Command", "nope")])
    assert await bot.delete_my_commands()
    assert tg.commands() == []


async def test_wait_for_times_out_with_context(tg: TelegramDouble) -> None:
    with pytest.raises(TimeoutError, match="last calls"):
        await tg.wait_for(lambda: False, timeout=0.05)


# -- text rules -----------------------------------------------------------------------------------------------


def test_utf16_trim_and_detection() -> None:
    assert utf16_len("a😀é") == 4
    assert trim("  😀 bold \n", [{"type": "bold", "offset": 0, "length": 9}]) == (
        "😀 bold",
        [{"type": "bold", "offset": 0, "length": 7}],
    )
    found = detect_entities("😀 /help@livebot_test mail me@example.com #tag")
    assert [(e["type"], e["offset"], e["length"]) for e in found] == [
        ("bot_command", 3, 18),
        ("email", 27, 14),
        ("hashtag", 42, 4),
    ]


def test_markup_parsers() -> None:
    assert parse_markdown_v2(r"*bold* _it_ `x.y` [a](https://e.org) \.") == (
        "bold it x.y a .",
        [
            {"type": "bold", "offset": 0, "length": 4},
            {"type": "italic", "offset": 5, "length": 2},
            {"type": "code", "offset": 8, "length": 3},
            {"type": "text_link", "offset": 12, "length": 1, "url": "https://e.org"},
        ],
    )
    with pytest.raises(EntityError, match="Can't find end of Bold entity at byte offset 0"):
        parse_markdown_v2("*open")
    assert parse_html('<pre><code class="language-py">x = 1</code></pre>') == (
        "x = 1",
        [{"type": "pre", "offset": 0, "length": 5, "language": "py"}],
    )
    with pytest.raises(EntityError, match='Unsupported start tag "br"'):
        parse_html("a<br>b")
    with pytest.raises(EntityError, match="Can't find end of the entity starting at byte offset 2"):
        parse_markdown("a *b")
