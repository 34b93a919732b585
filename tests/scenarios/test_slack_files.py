"""Photos, voice clips and documents in Slack, and charts back: the real Bolt app against the Slack double (files in
message events, `url_private_download` for the bot token only, the external upload flow) and the OpenAI double."""

from __future__ import annotations

import io
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.doubles.openai_server import Text, ToolCalls, image_parts, text_parts
from tests.media.samples import jpeg, pdf
from tests.scenarios.slack_scene import DM, SlackScene, clean_environment, running_scene


@pytest.fixture
async def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SlackScene]:
    clean_environment(monkeypatch)
    async with running_scene(tmp_path) as running:
        yield running


def with_files(event: dict[str, Any], *files: dict[str, Any]) -> dict[str, Any]:
    """The event as Slack sends a message with files shared in it."""
    return {**event, "subtype": "file_share", "files": list(files)}


async def test_a_photo_in_a_dm_reaches_the_model_with_its_question(scene: SlackScene) -> None:
    scene.llm.script(Text("A red square."))
    photo = scene.slack.files.user_file("square.jpg", "image/jpeg", jpeg(1280, 960))
    await scene.post(with_files(scene.dm("what is this?"), photo))
    await scene.replied(timeout=30)
    (message,) = scene.slack.messages(DM)
    assert message.text == "A red square."
    (url,) = image_parts(scene.llm.requests[0])
    assert url.startswith("data:image/jpeg;base64,")
    assert any("what is this?" in text and "1280×960" in text for text in text_parts(scene.llm.requests[0]))
    assert scene.slack.files.downloads == [(photo["id"], True)]  # fetched with the bot token


async def test_a_voice_clip_in_a_thread_is_quoted_then_answered(scene: SlackScene) -> None:
    scene.llm.transcripts = deque(["How long is a marathon?"])
    scene.llm.script(Text("42.195 km."))
    clip = scene.slack.files.user_file("audio_message.webm", "audio/webm", b"\x1aE\xdf\xa3 webm voice clip")
    mention = with_files(scene.mention(""), clip)
    await scene.post(mention)
    await scene.replied(timeout=30)
    (message,) = scene.thread(mention)
    assert message.text.startswith("> 🎤 _How long is a marathon?_") and message.text.endswith("42.195 km.")
    assert scene.llm.transcriptions[0]["filename"] == "audio_message.webm"
    assert scene.streaming() == []


async def test_a_pdf_becomes_text_in_the_request(scene: SlackScene) -> None:
    scene.llm.script(Text("About revenue."))
    report = scene.slack.files.user_file("report.pdf", "application/pdf", pdf(["Revenue grew 12%"]))
    await scene.post(with_files(scene.dm(""), report))
    await scene.replied(timeout=30)
    (text,) = text_parts(scene.llm.requests[0])
    assert "[Document report.pdf: a 1-page PDF]" in text and "Revenue grew 12%" in text
    assert text.endswith("Summarise this document.")


async def test_too_large_and_corrupt_files_get_specific_replies_and_no_model_call(scene: SlackScene) -> None:
    scene.llm.script(Text("Hello!"))
    huge = scene.slack.files.user_file("video.pdf", "application/pdf", b"%PDF", size=25 * 1024 * 1024)
    await scene.post(with_files(scene.dm(""), huge))
    await scene.replied(timeout=30)
    broken = scene.slack.files.user_file("cat.png", "image/png", b"\x89PNG broken")
    await scene.post(with_files(scene.dm("look"), broken))
    await scene.replied(timeout=30)
    await scene.post(scene.dm("hi"))
    await scene.replied(timeout=30)
    too_large, corrupt, answer = (message.text for message in scene.slack.messages(DM))
    assert too_large == "video.pdf is too large (25.0 MB); I read files up to 20 MB."
    assert corrupt.startswith("I could not open cat.png")
    assert answer == "Hello!"
    assert len(scene.llm.requests) == 1
    assert [file_id for file_id, _ in scene.slack.files.downloads] == [broken["id"]]  # the huge one was not fetched


async def test_a_chart_is_uploaded_between_the_text_before_and_after_the_tool(scene: SlackScene) -> None:
    scene.llm.script(
        ToolCalls(
            [("chart", {"kind": "pie", "values": [3, 1], "labels": ["yes", "no"], "title": "Votes"})],
            text_before="Drawing.",
        ),
        Text("Three to one."),
    )
    mention = scene.mention("chart the votes")
    await scene.post(mention)
    await scene.replied(timeout=30)
    thread = scene.thread(mention)
    shown = [("file" if m.files else "text", m.text) for m in thread if m.files or m.text]
    assert shown == [("text", "Drawing."), ("file", ""), ("text", "Three to one.")]
    ((message, upload),) = scene.slack.files.shared_pictures(mention["channel"])
    assert message.thread_ts == mention["ts"] and upload.title == "Votes"
    with Image.open(io.BytesIO(upload.data or b"")) as image:
        assert image.format == "PNG"
    assert [card["status"] for card in thread[1].tasks.values()] == ["complete"]  # the tool's card, above it
    assert scene.streaming() == []
    assert scene.slack.rate_limited == []
