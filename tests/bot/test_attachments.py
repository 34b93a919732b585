"""Turning a message's files into the user's turn: the rules that hold whatever the channel."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.attachments import MAX_FILES, Attachments
from channels.inbound import Attachment, FileKind, Incoming
from media.errors import DownloadFailed, FileProblem, TooLarge, Unsupported
from media.store import FileStore
from tests.media.samples import jpeg


def file(name: str, data: bytes, *, kind: FileKind = FileKind.DOCUMENT, mime: str = "") -> Attachment:
    async def fetch(limit: int) -> bytes:
        if len(data) > limit:
            raise TooLarge(name)
        return data

    return Attachment(name, kind, mime, len(data), fetch)


def attachments(tmp_path: Path, **limits: int) -> Attachments:
    return Attachments(
        FileStore(tmp_path), max_bytes=limits.get("max_bytes", 1_000_000), max_chars=limits.get("max_chars", 1000)
    )


def message(*files: Attachment, text: str = "") -> Incoming:
    return Incoming("console:test", text, "u", attachments=files)


async def test_documents_of_one_turn_share_the_character_cap(tmp_path: Path) -> None:
    turn = await attachments(tmp_path, max_chars=100).prepare(
        message(file("a.txt", b"a" * 80), file("b.txt", b"b" * 80), text="compare them")
    )
    assert isinstance(turn.content, str)
    assert "a" * 80 in turn.content and "b" * 20 in turn.content and "b" * 21 not in turn.content
    assert "[Document b.txt: a text file; first 20 of 80 characters shown]" in turn.content
    assert turn.content.endswith("compare them")


async def test_images_become_parts_that_refer_to_the_store(tmp_path: Path) -> None:
    turn = await attachments(tmp_path).prepare(message(file("p.jpg", jpeg(100, 50), kind=FileKind.IMAGE)))
    assert isinstance(turn.content, list)
    text, image = turn.content
    assert text == {"type": "text", "text": "[Photo 1: p.jpg, 100×50]\n\nDescribe this image."}
    assert image["image_url"]["url"].startswith("livebot-file:")
    assert FileStore(tmp_path).read("console:test", image["image_url"]["url"]) is not None


async def test_too_many_files_a_video_and_a_broken_download_are_refused(tmp_path: Path) -> None:
    prepare = attachments(tmp_path).prepare
    with pytest.raises(FileProblem, match=f"up to {MAX_FILES}"):
        await prepare(message(*[file(f"{n}.txt", b"x") for n in range(MAX_FILES + 1)]))
    with pytest.raises(Unsupported, match="videos"):
        await prepare(message(file("clip.mp4", b"....", mime="video/mp4")))

    async def broken(limit: int) -> bytes:
        raise ConnectionResetError("peer went away")

    with pytest.raises(DownloadFailed, match=r"could not download notes\.txt"):
        await prepare(message(Attachment("notes.txt", FileKind.DOCUMENT, "text/plain", 10, broken)))


async def test_a_file_over_the_limit_is_refused_before_and_during_download(tmp_path: Path) -> None:
    prepare = attachments(tmp_path, max_bytes=10).prepare
    with pytest.raises(TooLarge, match=r"big\.txt is too large"):
        await prepare(message(file("big.txt", b"x" * 11)))
    unknown_size = Attachment("big.txt", FileKind.DOCUMENT, "", None, file("big.txt", b"x" * 11).fetch)
    with pytest.raises(TooLarge, match="I read files up to"):
        await prepare(message(unknown_size))
