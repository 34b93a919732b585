"""Files in Slack: the `files` of a message event as attachments (in), and pictures uploaded into the thread (out).

In: each file names `url_private_download`, which serves the file only to a request carrying the bot token
(`files:read`); without it Slack answers with its HTML sign-in page, which is reported as a failed download, not
read as the file. The token goes only to Slack's own hosts (and to the host of SLACK_API_URL, a test double), so a
crafted URL cannot collect it. Downloads stop at the size limit while streaming.

Out: the external upload flow that slack_sdk's `files_upload_v2` runs (`files.getUploadURLExternal`, the upload,
`files.completeUploadExternal` sharing the file into the channel and thread), `files:write`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from channels.inbound import Attachment, FileKind
from media.errors import DownloadFailed, TooLarge

CHUNK = 64 * 1024
SKIPPED_MODES = frozenset({"tombstone", "hidden_by_limit", "external"})
"""Files a message names that have nothing to download (deleted, past the free plan's limit, links)."""


class SlackDownloader:
    """Makes the attachments of message events, downloading with the bot token.

    Args:
        session: The bot's HTTP session.
        token: The bot token (xoxb-...).
        api_url: SLACK_API_URL; its host may serve files too (a test double).
    """

    def __init__(self, session: aiohttp.ClientSession, token: str, api_url: str) -> None:
        self._session = session
        self._token = token
        self._api_host = urlsplit(api_url).hostname or ""

    def attachments(self, event: Mapping[str, Any]) -> tuple[Attachment, ...]:
        """The files of a message event, in order."""
        found = []
        for file in event.get("files") or []:
            if not isinstance(file, dict) or file.get("mode") in SKIPPED_MODES:
                continue
            url = str(file.get("url_private_download") or file.get("url_private") or "")
            mime = str(file.get("mimetype") or "")
            kind = FileKind.IMAGE if mime.startswith("image/") else FileKind.DOCUMENT
            if mime.startswith("audio/") or file.get("subtype") == "slack_audio":
                kind = FileKind.VOICE
            duration = file.get("duration_ms")
            size = file.get("size")
            found.append(
                Attachment(
                    str(file.get("name") or file.get("title") or "file"),
                    kind,
                    mime,
                    size if isinstance(size, int) else None,
                    self._fetch(url),
                    duration / 1000 if isinstance(duration, int | float) else None,
                    {"url": url},
                )
            )
        return tuple(found)

    def fetcher(self, source: dict[str, Any]) -> Callable[[int], Awaitable[bytes]]:
        """The download of a file another replica was sent (`Attachment.source`)."""
        return self._fetch(str(source["url"]))

    def _fetch(self, url: str) -> Callable[[int], Awaitable[bytes]]:
        async def fetch(limit: int) -> bytes:
            host = urlsplit(url).hostname or ""
            if not (host == "slack.com" or host.endswith(".slack.com") or host == self._api_host):
                raise DownloadFailed(f"the file is not on Slack ({host or 'no address'})")
            headers = {"Authorization": f"Bearer {self._token}"}
            try:
                async with self._session.get(url, headers=headers) as response:
                    if response.status != 200 or response.content_type == "text/html":
                        raise DownloadFailed(f"Slack did not hand over the file (HTTP {response.status})")
                    data = bytearray()
                    async for chunk in response.content.iter_chunked(CHUNK):
                        data += chunk
                        if len(data) > limit:
                            raise TooLarge(url)
                    return bytes(data)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise DownloadFailed(type(exc).__name__) from None

        return fetch
