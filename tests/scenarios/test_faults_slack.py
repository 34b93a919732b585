"""The fault matrix of issue 6 through the Slack channel: the real Bolt app, signed events and the strict Slack
Web API double, with Slack expiring the native stream while the answer is still being written."""

from __future__ import annotations

import pytest

from tests.doubles.openai_server import Text
from tests.scenarios.slack_scene import SlackScene


@pytest.mark.parametrize("rule", ["idle", "max_age"])
async def test_a_native_stream_slack_expires_mid_reply_is_finished_whole_by_an_update(
    rule: str, scene: SlackScene
) -> None:
    """Slack expires a stream left idle (a slow model) or simply too old; appending to it then fails with
    message_not_in_streaming_state. The words already in the message and the rest of the answer must end up in
    it once, and it must not be left looking half-written."""
    if rule == "idle":
        scene.slack.stream_ttl = 0.5  # shorter than the 1 s between appends
    else:
        scene.slack.workspace.stream_max_age = 0.8
    answer = " ".join(f"word{i}" for i in range(50))
    scene.llm.script(Text(answer, chunk_size=10, delay=0.05), Text("Still here."))  # about 1.8 s of streaming
    mention = scene.mention("count for me")
    await scene.post(mention)
    await scene.replied()

    [message] = scene.thread(mention)
    assert message.text == answer  # (with the feedback buttons of a finished answer, and no Stop button)
    assert [block["type"] for block in message.blocks] == ["markdown", "context_actions"]
    assert message.stream == "expired" and message.update_count >= 1  # it expired, and an update finished it
    refused = [call for call in scene.slack.calls if call.error == "message_not_in_streaming_state"]
    assert refused and refused[0].method in ("chat.appendStream", "chat.stopStream")
    assert scene.streaming() == []

    again = scene.mention("and now?", thread_ts=mention["ts"])
    await scene.post(again)
    await scene.replied()
    assert [m.text for m in scene.thread(mention)] == [answer, "Still here."]
