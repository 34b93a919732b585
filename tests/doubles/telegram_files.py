"""Files in the Telegram Bot API double: what users send (photos, documents, voice notes, audio), `getFile` and the
download URL `/file/bot<token>/<file_path>`, and the bot's `sendPhoto`.

As on the real server: a message names its files by `file_id` (a photo as several sizes, the largest last); the
bot calls `getFile` to learn a `file_path`, then downloads from the file URL with its token in the path; files over
20 MB get "file is too big" from `getFile` (bots cannot download them). `sendPhoto` takes a multipart upload up to
10 MB, which must be an image, with a caption of at most 1024 characters; it counts against the chat's message
budget like `sendMessage`.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from tests.doubles.telegram_world import bad_request

DOWNLOAD_LIMIT = 20 * 1024 * 1024
PHOTO_LIMIT = 10 * 1024 * 1024
CAPTION_LIMIT = 1024


@dataclass
class StoredFile:
    """A file on the server."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    size: int


@dataclass
class SentPhoto:
    """A photo the bot sent: where, its message, and the bytes it uploaded."""

    chat_id: int
    message_id: int
    data: bytes
    caption: str | None


@dataclass
class Files:
    """Files by id, the downloads the bot made, and the photos it sent."""

    by_id: dict[str, StoredFile] = field(default_factory=dict)
    downloads: list[str] = field(default_factory=list)
    """file_path of every download the bot made, in order."""
    sent_photos: list[SentPhoto] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, data: bytes, folder: str, suffix: str, *, size: int | None = None) -> StoredFile:
        """Store a file a user sent; `size` may claim more than `data` holds (a huge file, without the bytes)."""
        number = next(self._ids)
        stored = StoredFile(
            f"AgAD{number:06d}-file", f"uniq{number}", data, f"{folder}/file_{number}{suffix}", size or len(data)
        )
        self.by_id[stored.file_id] = stored
        return stored

    def photo_sizes(self, data: bytes) -> list[dict[str, Any]]:
        """A photo as Telegram lists it: smaller copies first, the original size last."""
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        sizes = []
        for scale in (0.1, 0.25, 1.0):
            stored = self.add(data, "photos", ".jpg")
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": max(1, int(width * scale)),
                    "height": max(1, int(height * scale)),
                    "file_size": stored.size if scale == 1.0 else max(1, int(stored.size * scale * scale)),
                }
            )
        return sizes

    def described(self, stored: StoredFile, **fields: Any) -> dict[str, Any]:
        """A Document / Voice / Audio object for `stored`."""
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": stored.size, **fields}

    def get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        """getFile: the file's path for the download URL."""
        stored = self.by_id.get(str(params.get("file_id") or ""))
        if stored is None:
            raise bad_request("wrong file_id or the file is temporarily unavailable")
        if stored.size > DOWNLOAD_LIMIT:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    def download(self, file_path: str) -> bytes | None:
        """The bytes at the download URL's path, or None (404)."""
        for stored in self.by_id.values():
            if stored.file_path == file_path and stored.size <= DOWNLOAD_LIMIT:
                self.downloads.append(file_path)
                return stored.data
        return None


def check_photo(params: dict[str, Any]) -> tuple[bytes, str | None]:
    """sendPhoto's rules for the upload and the caption; returns the photo's bytes and the caption."""
    upload = params.get("photo")
    if not isinstance(upload, dict) or "data" not in upload:
        raise bad_request("there is no photo in the request")
    data: bytes = upload["data"]
    if len(data) > PHOTO_LIMIT:
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception:
        raise bad_request("IMAGE_PROCESS_FAILED") from None
    caption = params.get("caption")
    if caption is not None and len(str(caption)) > CAPTION_LIMIT:
        raise bad_request("message caption is too long")
    return data, None if caption is None else str(caption)
