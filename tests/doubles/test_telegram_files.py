"""The Telegram double's files against the real python-telegram-bot: getFile, the download URL, sendPhoto."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import telegram
from telegram.error import BadRequest

from tests.doubles.telegram_api import RateLimits, TelegramDouble
from tests.media.samples import jpeg, png


@pytest.fixture
async def tg() -> AsyncIterator[TelegramDouble]:
    async with TelegramDouble(limits=RateLimits(enabled=False)) as double:
        yield double


@pytest.fixture
async def bot(tg: TelegramDouble) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(tg.token, base_url=tg.base_url, base_file_url=f"{tg.root}/file/bot") as client:
        yield client


async def test_a_photo_is_listed_in_sizes_and_downloads_through_get_file(tg: TelegramDouble, bot: telegram.Bot) -> None:
    alice = tg.add_user("Alice")
    photo = jpeg(1000, 800)
    sent = tg.user_file(tg.private_chat(alice), alice, photo=photo, caption="look")
    message = telegram.Message.de_json(sent.to_api(), bot)
    assert message is not None and message.caption == "look"
    assert [(size.width, size.height) for size in message.photo] == [(100, 80), (250, 200), (1000, 800)]
    file = await bot.get_file(message.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == photo


async def test_files_over_20_mb_cannot_be_fetched_and_unknown_ids_are_refused(
    tg: TelegramDouble, bot: telegram.Bot
) -> None:
    alice = tg.add_user("Alice")
    huge = tg.user_file(
        tg.private_chat(alice), alice, document=("big.pdf", "application/pdf", b"%PDF"), claimed_size=21 * 1024 * 1024
    )
    with pytest.raises(BadRequest, match="too big"):
        await bot.get_file(huge.media["document"]["file_id"])  # type: ignore[index]
    with pytest.raises(BadRequest, match=r"(?i)wrong file_id"):
        await bot.get_file("no-such-file")


async def test_send_photo_takes_an_image_and_refuses_anything_else(tg: TelegramDouble, bot: telegram.Bot) -> None:
    alice = tg.add_user("Alice")
    chat = tg.private_chat(alice)
    sent = await bot.send_photo(chat.id, png(80, 60), caption="A chart")
    assert sent.caption == "A chart" and sent.photo
    assert [(p.chat_id, p.caption) for p in tg.api.files.sent_photos] == [(chat.id, "A chart")]
    with pytest.raises(BadRequest, match=r"(?i)image_process_failed"):
        await bot.send_photo(chat.id, b"not an image")
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(chat.id, png(), caption="x" * 1025)
