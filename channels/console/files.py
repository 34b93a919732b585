"""Files in the console: `/attach PATH [question]`, or a path dropped into the terminal, in; pictures saved, out.

A terminal turns a file dragged onto it into its path, quoted or with escaped spaces ('/tmp/my cat.jpg' or
/tmp/my\\ cat.jpg); a line that starts with such a path to an existing file attaches it, and the rest of the line
is the question.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import shlex
from pathlib import Path

from channels.inbound import Attachment, FileKind
from media.errors import DownloadFailed, TooLarge

ATTACH = "/attach"
NO_FILE = "No such file: {path}"
USAGE = "Usage: /attach PATH [question] (or drop a file onto the terminal)"


def read_line(line: str) -> tuple[str, tuple[Attachment, ...]]:
    """The question and the files of one console line.

    Raises:
        ValueError: `/attach` without a path, or with a path that is not a file (the message says which).
    """
    stripped = line.strip()
    attach = stripped.lower() == ATTACH or stripped.lower().startswith(ATTACH + " ")
    if not attach and not stripped.startswith(("/", "~", "'", '"', "./")):
        return stripped, ()
    try:
        words = shlex.split(stripped[len(ATTACH) :] if attach else stripped)
    except ValueError:  # an unbalanced quote: not a path
        words = stripped.split()
    if not words:
        if attach:
            raise ValueError(USAGE)
        return stripped, ()
    path = Path(words[0]).expanduser()
    if not path.is_file():
        if attach:
            raise ValueError(NO_FILE.format(path=words[0]))
        return stripped, ()  # "/help", or text that happens to start with a slash
    return " ".join(words[1:]), (attachment(path),)


def attachment(path: Path) -> Attachment:
    """A local file as an attachment (its kind from its name)."""
    mime = mimetypes.guess_type(path.name)[0] or ""
    kind = FileKind.IMAGE if mime.startswith("image/") else FileKind.VOICE if mime.startswith("audio/") else None

    async def fetch(limit: int) -> bytes:
        return await asyncio.to_thread(_read, path, limit)

    return Attachment(path.name, kind or FileKind.DOCUMENT, mime, path.stat().st_size, fetch)


def _read(path: Path, limit: int) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise DownloadFailed(f"I could not read {path.name}: {exc.strerror or exc}.") from None
    if len(data) > limit:
        raise TooLarge(path.name)
    return data


def save_picture(folder: Path, data: bytes) -> Path:
    """Write a picture into `folder` under a name from its content; return the path (blocking: use a thread)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"picture-{hashlib.sha256(data).hexdigest()[:12]}.png"
    path.write_bytes(data)
    return path.resolve()
