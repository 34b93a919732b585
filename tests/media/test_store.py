"""Files are stored once per conversation by content hash, bounded in number, and forgotten with it."""

from __future__ import annotations

from pathlib import Path

from media.store import FileStore


def test_the_same_file_is_stored_once_and_read_back(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    first = store.put("telegram:1", b"photo bytes", ".jpg")
    again = store.put("telegram:1", b"photo bytes", ".jpg")
    assert first == again and first.startswith("livebot-file:")
    assert store.read("telegram:1", first) == b"photo bytes"
    assert len(list(tmp_path.rglob("*.jpg"))) == 1
    assert store.read("telegram:2", first) is None  # another conversation has no access to it


def test_each_conversation_keeps_its_newest_files_only(tmp_path: Path) -> None:
    store = FileStore(tmp_path, keep=3)
    refs = [store.put("c", f"file {n}".encode(), ".png") for n in range(5)]
    assert [store.read("c", ref) is not None for ref in refs] == [False, False, True, True, True]


def test_forget_removes_the_conversations_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    ref = store.put("c", b"x", ".jpg")
    kept = store.put("other", b"x", ".jpg")
    store.forget("c")
    assert store.read("c", ref) is None
    assert store.read("other", kept) == b"x"


def test_a_reference_cannot_name_a_path_outside_the_store(tmp_path: Path) -> None:
    (tmp_path / "secret.jpg").write_bytes(b"secret")
    store = FileStore(tmp_path / "files")
    assert store.read("c", "livebot-file:../../secret.jpg") is None
    assert store.read("c", "/etc/passwd") is None
