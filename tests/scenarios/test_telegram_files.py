"""Photos, voice notes and documents in Telegram, and charts back: the real python-telegram-bot against the Bot API
double (getFile, downloads, sendPhoto) and the OpenAI double (image parts, transcriptions), asserting what the
model was sent and what the user sees."""

from __future__ import annotations

import base64
import io
from collections import deque
from pathlib import Path

from PIL import Image

from tests.doubles.openai_server import OpenAIDouble, Text, ToolCalls, image_parts, text_parts
from tests.doubles.telegram_api import TelegramDouble
from tests.media.samples import jpeg, pdf, png
from tests.scenarios.conftest import running


def decoded_size(data_url: str) -> tuple[int, int]:
    with Image.open(io.BytesIO(base64.b64decode(data_url.partition(",")[2]))) as image:
        return image.size


async def test_a_photo_with_a_caption_reaches_the_model_as_an_image_and_a_question(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("A red square."), Text("Red."))
    async with running(tg, llm, tmp_path):
        tg.user_file(dm, alice, photo=jpeg(3000, 2000), caption="What is in this picture?")
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["A red square."], timeout=30)
        tg.user_message(dm, alice, "and what colour is it?")  # a follow-up about the same photo
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["A red square.", "Red."], timeout=30)
    first, follow_up = llm.requests
    (url,) = image_parts(first)
    assert url.startswith("data:image/jpeg;base64,")
    assert decoded_size(url) == (2048, 1365)  # downscaled before it left
    assert any("What is in this picture?" in text and "3000×2000" in text for text in text_parts(first))
    assert image_parts(follow_up) == [url]  # memory kept the photo for the next turn (by reference, not inline)
    assert len(list((tmp_path / "files").rglob("*.jpg"))) == 1


async def test_an_image_sent_as_a_file_and_an_album_each_make_one_turn(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("A screenshot."), Text("Two photos."))
    async with running(tg, llm, tmp_path):
        tg.user_file(dm, alice, document=("screen.png", "image/png", png(640, 480)))
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["A screenshot."], timeout=30)
        tg.user_file(dm, alice, photo=jpeg(800, 600), caption="Which is brighter?", media_group_id="album-1")
        tg.user_file(dm, alice, photo=jpeg(800, 600, color="white"), media_group_id="album-1")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2, timeout=30)
    screenshot, album = llm.requests
    assert [url.split(";")[0] for url in image_parts(screenshot)] == ["data:image/png"]
    assert any("Describe this image." in text for text in text_parts(screenshot))  # no caption: a default question
    assert len(image_parts(album)) == 3  # the screenshot from memory, then the album's two photos in one turn
    assert any("Which is brighter?" in text for text in text_parts(album))


async def test_a_voice_note_is_transcribed_quoted_and_answered(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.transcripts = deque(["What's the capital of France?"])
    llm.script(Text("Paris."))
    async with running(tg, llm, tmp_path):
        tg.user_file(dm, alice, voice=(b"OggS fake opus recording", 4))
        await tg.wait_for(lambda: tg.visible_texts(dm), timeout=30)
    (shown,) = tg.visible_texts(dm)
    assert shown.startswith("🎤 What's the capital of France?")  # the quote comes first
    assert shown.endswith("Paris.")
    assert llm.transcriptions == [{"model": "whisper-1", "filename": "voice.ogg", "size": 24}]
    assert any("What's the capital of France?" in text for text in text_parts(llm.requests[0]))


async def test_without_a_transcription_server_a_voice_note_gets_one_clear_note(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("I could not hear it."))  # the double answers 404 for transcriptions: llm.transcripts is None
    async with running(tg, llm, tmp_path):
        tg.user_file(dm, alice, voice=(b"OggS fake opus recording", 4))
        await tg.wait_for(lambda: tg.visible_texts(dm), timeout=30)
    (shown,) = tg.visible_texts(dm)
    assert "TRANSCRIBE_BASE_URL" in shown and shown.endswith("I could not hear it.")


async def test_a_pdf_becomes_text_in_the_request(tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("It is about revenue."))
    async with running(tg, llm, tmp_path):
        tg.user_file(
            dm,
            alice,
            document=("report.pdf", "application/pdf", pdf(["Revenue grew 12%", "Costs fell"])),
            caption="tl;dr?",
        )
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["It is about revenue."], timeout=30)
    (text,) = text_parts(llm.requests[0])
    assert "[Document report.pdf: a 2-page PDF]" in text
    assert "Revenue grew 12%" in text and "Costs fell" in text and text.endswith("tl;dr?")


async def test_too_large_and_corrupt_files_get_specific_replies_and_no_model_call(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("Hello!"))
    async with running(tg, llm, tmp_path):
        tg.user_file(dm, alice, document=("film.pdf", "application/pdf", b"%PDF-1.4"), claimed_size=30 * 1024 * 1024)
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 1, timeout=30)
        tg.user_file(dm, alice, document=("cat.jpg", "image/jpeg", b"\xff\xd8\xff not really a jpeg"))
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2, timeout=30)
        tg.user_file(dm, alice, document=("scan.pdf", "application/pdf", pdf(["", ""])))
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 3, timeout=30)
        tg.user_message(dm, alice, "hi")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 4, timeout=30)
    too_large, corrupt, scanned, answer = tg.visible_texts(dm)
    assert too_large == "film.pdf is too large (30.0 MB); I read files up to 20 MB."
    assert corrupt.startswith("I could not open cat.jpg")
    assert "scanned PDF" in scanned
    assert answer == "Hello!"
    assert len(llm.requests) == 1  # only "hi" reached the model
    assert tg.api.files.downloads == [tg.api.files.by_id[f].file_path for f in list(tg.api.files.by_id)[1:]]


async def test_a_chart_arrives_between_the_text_before_and_after_the_tool(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    group = tg.add_group("Team")
    llm.script(
        ToolCalls([("chart", {"kind": "bar", "values": [1, 4, 9, 16], "title": "Squares"})], text_before="Drawing."),
        Text("Each bar is a square."),
    )
    async with running(tg, llm, tmp_path):
        tg.user_message(group, alice, "@livebot_test plot the squares")
        await tg.wait_for(lambda: "Each bar is a square." in tg.visible_texts(group), timeout=30)
    shown = [(m.text, m.caption) for m in tg.bot_messages(group)]
    assert shown == [("Drawing.", None), (None, "Squares"), ("Each bar is a square.", None)]
    (photo,) = tg.api.files.sent_photos
    with Image.open(io.BytesIO(photo.data)) as image:
        assert image.format == "PNG" and image.size == (800, 500)
    assert tg.rate_limited == []


async def test_a_model_that_cannot_see_still_answers_the_text_and_says_so_once(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.cannot_see = True
    llm.script(Text("Nice photo, I'm told."), Text("Still blind."))
    async with running(tg, llm, tmp_path):
        tg.user_file(dm, alice, photo=jpeg(640, 480), caption="what's this?")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 1, timeout=30)
        tg.user_file(dm, alice, photo=jpeg(640, 480, color="blue"), caption="and this?")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2, timeout=30)
    first, second = tg.visible_texts(dm)
    assert first.startswith(f"The model {llm.model} (LLM_MODEL) cannot see images")
    assert first.endswith("Nice photo, I'm told.")
    assert second == "Still blind."  # told once
    refused, answered, blind = llm.requests
    assert image_parts(refused) and not image_parts(answered) and not image_parts(blind)
    assert any("what's this?" in text for text in text_parts(answered))


async def test_reset_forgets_the_conversations_files(tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path) -> None:
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    llm.script(Text("A photo."))
    async with running(tg, llm, tmp_path):
        tg.user_file(dm, alice, photo=jpeg(640, 480))
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["A photo."], timeout=30)
        assert list((tmp_path / "files").rglob("*.jpg"))
        tg.user_message(dm, alice, "/reset")
        await tg.wait_for(lambda: len(tg.visible_texts(dm)) == 2, timeout=30)
    assert list((tmp_path / "files").rglob("*.jpg")) == []
