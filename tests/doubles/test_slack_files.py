"""The Slack double's files against the real slack_sdk: downloads need the bot token, uploads use the external flow."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.doubles.slack_api import SlackDouble

TOKEN = "xoxb-test-token"


@pytest.fixture
async def slack() -> AsyncIterator[SlackDouble]:
    async with SlackDouble(token=TOKEN) as double:
        yield double


async def test_a_shared_file_downloads_only_with_the_bot_token(slack: SlackDouble) -> None:
    shared = slack.files.user_file("notes.txt", "text/plain", b"hello")
    url = shared["url_private_download"]
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            assert (response.status, await response.read()) == (200, b"hello")
        async with session.get(url) as response:  # Slack answers 200 with its sign-in page, not the file
            assert response.status == 200 and response.content_type == "text/html"
            assert b"hello" not in await response.read()
    assert slack.files.downloads == [(shared["id"], True), (shared["id"], False)]


async def test_files_upload_v2_shares_the_file_in_the_thread(slack: SlackDouble) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.base_url)
    await client.files_upload_v2(
        channel="C0GENERAL", thread_ts="1700000000.000100", file=b"\x89PNG", filename="c.png", title="Chart"
    )
    methods = [call.method for call in slack.calls]
    assert methods == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    ((message, upload),) = slack.files.shared_pictures("C0GENERAL")
    assert (message.thread_ts, upload.title, upload.data) == ("1700000000.000100", "Chart", b"\x89PNG")


async def test_completing_an_upload_whose_bytes_never_came_is_refused(slack: SlackDouble) -> None:
    client = AsyncWebClient(token=TOKEN, base_url=slack.base_url)
    issued = await client.files_getUploadURLExternal(filename="c.png", length=4)
    with pytest.raises(SlackApiError, match="file_not_found"):
        await client.files_completeUploadExternal(files=[{"id": issued["file_id"]}], channel_id="C0GENERAL")
