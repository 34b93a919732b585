"""Files in the Slack Web API double: what users share, served to the bot token only, and the external upload flow.

As on Slack: a shared file appears in the message event's `files` with `url_private_download`; a GET of it with
`Authorization: Bearer <bot token>` returns the bytes, and one without (or with another token) gets the HTML
sign-in page with status 200, not an error. The bot shares a file with the flow `files_upload_v2` runs:
`files.getUploadURLExternal` (filename, length) gives an upload URL and a file id; a POST of the bytes to that URL
answers "OK - <length>"; `files.completeUploadExternal` (files=[{id, title}], channel_id, thread_ts) shares them,
which posts a message with the files in that channel or thread. A file completed before its bytes arrived, or
whose bytes differ in length from the announced one, is refused as Slack does.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.doubles.slack_workspace import SlackError, SlackMessage, SlackWorkspace

SIGN_IN_PAGE = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"


@dataclass
class Upload:
    """A file the bot is uploading (or has shared)."""

    file_id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str = ""
    shared_in: str | None = None


@dataclass
class SlackFiles:
    """The files side of the double; `SlackDouble` routes to it."""

    workspace: SlackWorkspace
    token: str
    base_url: str = ""
    """The server root, "http://127.0.0.1:PORT" (set when the double starts)."""
    user_files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)
    downloads: list[tuple[str, bool]] = field(default_factory=list)
    """Every download attempt: (file id, whether the bot token came with it)."""
    uploads: dict[str, Upload] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def register(self, methods: dict[str, Any]) -> None:
        methods["files.getUploadURLExternal"] = self.get_upload_url
        methods["files.completeUploadExternal"] = self.complete_upload

    # -- users' files ---------------------------------------------------------------------------------------

    def user_file(self, name: str, mimetype: str, data: bytes, *, size: int | None = None) -> dict[str, Any]:
        """Store a file a user shares; returns its object for an event's `files` (`size` may claim more)."""
        file_id = f"F0USER{next(self._ids):04d}"
        self.user_files[file_id] = (name, mimetype, data)
        team = self.workspace.identity.team_id
        return {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rpartition(".")[2],
            "size": size if size is not None else len(data),
            "mode": "hosted",
            "url_private": f"{self.base_url}/files-pri/{team}-{file_id}/{name}",
            "url_private_download": f"{self.base_url}/files-pri/{team}-{file_id}/download/{name}",
        }

    async def serve(self, request: web.Request) -> web.Response:
        """GET /files-pri/<team>-<file id>/download/<name>: the bytes for the bot token, else the sign-in page."""
        file_id = request.match_info["team_file"].partition("-")[2]
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        authorised = scheme.lower() == "bearer" and value.strip() == self.token
        self.downloads.append((file_id, authorised))
        if not authorised:
            return web.Response(text=SIGN_IN_PAGE, content_type="text/html")
        found = self.user_files.get(file_id)
        if found is None:
            return web.Response(status=404, text="Not Found")
        _, mimetype, data = found
        return web.Response(body=data, content_type=mimetype)

    # -- the bot's uploads ----------------------------------------------------------------------------------

    def get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = str(params.get("filename") or "")
        try:
            length = int(params.get("length") or 0)
        except ValueError:
            raise SlackError("invalid_arguments") from None
        if not filename or length <= 0:
            raise SlackError("invalid_arguments")
        file_id = f"F0BOT{next(self._ids):04d}"
        self.uploads[file_id] = Upload(file_id, filename, length)
        return {"upload_url": f"{self.base_url}/upload/v1/{file_id}", "file_id": file_id}

    async def receive(self, request: web.Request) -> web.Response:
        """POST /upload/v1/<file id>: the bytes (raw, or a multipart `file` field)."""
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="Not Found")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = next((value for value in form.values() if isinstance(value, web.FileField)), None)
            data = part.file.read() if part is not None else b""
        else:
            data = await request.read()
        upload.data = data
        return web.Response(text=f"OK - {len(data)}")

    def complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        if not isinstance(files, list) or not files:
            raise SlackError("invalid_arguments")
        channel = params.get("channel_id")
        shared: list[Upload] = []
        for item in files:
            upload = self.uploads.get(str(item.get("id") if isinstance(item, dict) else ""))
            if upload is None or upload.data is None:
                raise SlackError("file_not_found")
            if len(upload.data) != upload.length:
                raise SlackError("file_upload_size_mismatch")
            upload.title = str(item.get("title") or upload.filename)
            shared.append(upload)
        if channel:
            thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
            message = self.workspace.add_message(str(channel), thread_ts, text=str(params.get("initial_comment") or ""))
            message.files = [{"id": u.file_id, "name": u.filename, "title": u.title} for u in shared]
            for upload in shared:
                upload.shared_in = str(channel)
        return {"files": [{"id": u.file_id, "title": u.title} for u in shared]}

    def shared_pictures(self, channel: str) -> list[tuple[SlackMessage, Upload]]:
        """The bot's files shared in `channel`, with the message that carries each, in order."""
        found = []
        for message in self.workspace.all_messages():
            if message.channel == channel:
                found.extend((message, self.uploads[file["id"]]) for file in message.files)
        return found
