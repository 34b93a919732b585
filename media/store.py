"""The files of each conversation, stored once by content hash; messages in memory hold only a reference.

A photo inlined as base64 into the stored conversation would be written again with every checkpoint and read
back with every turn. Instead the image goes to `BOT_DATA_DIR/files/<conversation>/<sha256>.jpg` once, and the
user's message in memory carries the URL `livebot-file:<sha256>.jpg`, which is turned back into the image only
for the model request (`agent.files`). Each conversation keeps its newest `keep` files (an older reference then
reads as "an image no longer kept"), and `forget` removes them all with the conversation (/reset).

Blocking file I/O: call from a worker thread.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

SCHEME = "livebot-file:"
"""Prefix of a stored file's reference in a message (where an image's data URL would be)."""
KEEP = 32
"""Files kept per conversation."""
_REF = re.compile(r"[0-9a-f]{64}\.(?:jpg|png)")


class FileStore:
    """Files by conversation and content hash, under `root`.

    Args:
        root: The directory (created on first use).
        keep: Files kept per conversation; the least recently stored go first.
    """

    def __init__(self, root: Path, *, keep: int = KEEP) -> None:
        self.root = root
        self.keep = keep

    def put(self, conversation: str, data: bytes, suffix: str) -> str:
        """Store `data` (once: the same bytes again only refresh it) and return its reference URL."""
        name = hashlib.sha256(data).hexdigest() + suffix
        if not _REF.fullmatch(name):
            raise ValueError(f"unsupported suffix {suffix!r}")
        folder = self._folder(conversation)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        if path.exists():
            path.touch()
        else:
            with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".part") as part:
                part.write(data)
            os.replace(part.name, path)  # never a half-written file under the final name
        self._prune(folder)
        return SCHEME + name

    def read(self, conversation: str, ref: str) -> bytes | None:
        """The bytes behind `ref`, or None when it is not a reference or the file is no longer kept."""
        name = ref.removeprefix(SCHEME)
        if not ref.startswith(SCHEME) or not _REF.fullmatch(name):
            return None
        try:
            return (self._folder(conversation) / name).read_bytes()
        except OSError:
            return None

    def forget(self, conversation: str) -> None:
        """Remove every file of `conversation`."""
        shutil.rmtree(self._folder(conversation), ignore_errors=True)

    def _folder(self, conversation: str) -> Path:
        # A hash, so no conversation key ("slack:C1:17.3", a console name) can name a path outside `root`.
        return self.root / hashlib.sha256(conversation.encode()).hexdigest()[:32]

    def _prune(self, folder: Path) -> None:
        files = sorted(folder.glob("*.*g"), key=lambda path: path.stat().st_mtime_ns, reverse=True)
        for old in files[self.keep :]:
            with contextlib.suppress(OSError):
                old.unlink()


def is_reference(url: str) -> bool:
    """Whether `url` is a stored file's reference rather than a real URL."""
    return url.startswith(SCHEME)
