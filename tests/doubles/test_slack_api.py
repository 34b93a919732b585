"""The Slack double against the real slack_sdk AsyncWebClient and a real Bolt AsyncApp, over loopback HTTP.

These pin what other integration tests rely on: the stream rules, the 429 shape slack_sdk surfaces, and signed
events Bolt accepts. Time-dependent rules run on a ManualClock, so nothing here sleeps or asserts a duration.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.models.messages.chunk import MarkdownTextChunk, PlanUpdateChunk, TaskUpdateChunk
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.doubles.slack_api import ManualClock, RateLimit, SlackDouble
from tests.doubles.slack_events import (
    app_mention,
    event_envelope,
    post_event,
    signed_request,
    url_verification,
)

TOKEN = "xoxb-test-token"
SECRET = "signing-secret-for-tests"
CHANNEL = "C0GENERAL"
DM = "D0ALICE"
THREAD = "1700000000.000100"
RECIPIENT = {"recipient_user_id": "U0ALICE", "recipient_team_id": "T0LIVEBOT"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def slack(clock: ManualClock) -> AsyncIterator[SlackDouble]:
    async with SlackDouble(token=TOKEN, clock=clock) as double:
        yield double


@pytest.fixture
async def client(slack: SlackDouble) -> AsyncIterator[AsyncWebClient]:
    session = aiohttp.ClientSession()
    yield AsyncWebClient(token=TOKEN, base_url=slack.base_url, session=session)
    await session.close()


async def error_of(call: object) -> SlackApiError:
    """Await `call` and return the SlackApiError it raised."""
    with pytest.raises(SlackApiError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_auth_test_and_token_check(slack: SlackDouble, client: AsyncWebClient) -> None:
    assert slack.base_url.endswith("/api/")
    who = await client.auth_test()
    assert (who["user_id"], who["bot_id"], who["team_id"]) == ("U0LIVEBOT", "B0LIVEBOT", "T0LIVEBOT")
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=slack.base_url)
    assert (await error_of(wrong.auth_test())).response["error"] == "invalid_auth"
    user = await client.users_info(user="U0ALICE")  # a GET with the query string
    assert user["user"]["id"] == "U0ALICE"
    assert (await error_of(client.users_info(user="nobody"))).response["error"] == "user_not_found"
    anonymous = AsyncWebClient(base_url=slack.base_url)
    assert (await error_of(anonymous.auth_test())).response["error"] == "not_authed"


async def test_post_update_delete(slack: SlackDouble, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel=DM, markdown_text="**hi**")
    assert posted["message"]["bot_id"] == "B0LIVEBOT"
    await client.chat_update(channel=DM, ts=posted["ts"], markdown_text="**hi** there")
    [message] = slack.messages(DM)
    assert (message.text, message.update_count, message.stream) == ("**hi** there", 1, None)

    conflict = await error_of(client.chat_update(channel=DM, ts=posted["ts"], text="a", markdown_text="b"))
    assert conflict.response["error"] == "markdown_text_conflict"
    too_long = await error_of(client.chat_postMessage(channel=DM, markdown_text="x" * 12_001))
    assert too_long.response["error"] == "msg_too_long"
    await client.chat_postMessage(channel=DM, markdown_text="x" * 12_000)
    missing = await error_of(client.chat_update(channel=DM, ts="1.000001", text="x"))
    assert missing.response["error"] == "message_not_found"

    await client.chat_delete(channel=DM, ts=posted["ts"])  # slack_sdk sends these in the query string
    assert [m.text for m in slack.messages(DM)] == ["x" * 12_000]


async def test_start_stream_needs_thread_and_recipient_in_channels(slack: SlackDouble, client: AsyncWebClient) -> None:
    no_recipient = await error_of(client.chat_startStream(channel=CHANNEL, thread_ts=THREAD))
    assert no_recipient.response["error"] == "missing_recipient_user_id"
    half = await error_of(client.chat_startStream(channel=CHANNEL, thread_ts=THREAD, recipient_user_id="U0ALICE"))
    assert half.response["error"] == "missing_recipient_team_id"
    no_thread = await error_of(client.api_call("chat.startStream", json={"channel": DM, "markdown_text": "x"}))
    assert no_thread.response["error"] == "invalid_arguments"
    await client.chat_startStream(channel=DM, thread_ts=THREAD, markdown_text="in a DM no recipient is needed")
    await client.chat_startStream(channel=CHANNEL, thread_ts=THREAD, markdown_text="ok", **RECIPIENT)
    assert [m.stream for m in slack.messages(CHANNEL) + slack.messages(DM)] == ["streaming", "streaming"]


async def test_stream_accumulates_markdown_and_chunks(slack: SlackDouble, client: AsyncWebClient) -> None:
    started = await client.chat_startStream(channel=CHANNEL, thread_ts=THREAD, markdown_text="Hel", **RECIPIENT)
    ts = started["ts"]
    await client.chat_appendStream(channel=CHANNEL, ts=ts, markdown_text="lo")
    task = TaskUpdateChunk(id="t1", title="Searching the web", status="in_progress")
    await client.chat_appendStream(channel=CHANNEL, ts=ts, chunks=[MarkdownTextChunk(text=" wor"), task])
    await client.chat_appendStream(channel=CHANNEL, ts=ts, chunks=[PlanUpdateChunk(title="Plan")])
    bad = {"type": "task_update", "id": "t1", "title": "x", "status": "done"}
    assert (await error_of(client.chat_appendStream(channel=CHANNEL, ts=ts, chunks=[bad]))).response[
        "error"
    ] == "invalid_chunks"
    busy = await error_of(client.chat_update(channel=CHANNEL, ts=ts, markdown_text="edit while streaming"))
    assert busy.response["error"] == "streaming_state_conflict"
    done = {"type": "task_update", "id": "t1", "title": "Searched", "status": "complete", "output": "3 hits"}
    await client.chat_stopStream(channel=CHANNEL, ts=ts, markdown_text="ld!", chunks=[done])

    message = slack.message(CHANNEL, ts)
    assert (message.text, message.stream, message.thread_ts, message.append_count) == (
        "Hello world!",
        "stopped",
        THREAD,
        3,
    )
    assert message.tasks == {"t1": {"id": "t1", "title": "Searched", "status": "complete", "output": "3 hits"}}
    assert message.plan_title == "Plan"
    assert [c["type"] for c in message.chunks] == ["markdown_text", "task_update", "plan_update", "task_update"]

    after = await error_of(client.chat_appendStream(channel=CHANNEL, ts=ts, markdown_text="more"))
    assert after.response["error"] == "message_not_in_streaming_state"
    again = await error_of(client.chat_stopStream(channel=CHANNEL, ts=ts))
    assert again.response["error"] == "message_not_in_streaming_state"
    await client.chat_update(channel=CHANNEL, ts=ts, markdown_text="Final")
    assert slack.messages(CHANNEL, THREAD)[0].text == "Final"


async def test_chat_stream_helper_sends_buffered_text_as_chunks(slack: SlackDouble, client: AsyncWebClient) -> None:
    streamer = await client.chat_stream(channel=DM, thread_ts=THREAD, buffer_size=10)
    await streamer.append(markdown_text="short")  # buffered: no call yet
    assert slack.calls == []
    await streamer.append(markdown_text=" and longer")
    await streamer.stop(markdown_text=" end")
    assert [c.method for c in slack.calls] == ["chat.startStream", "chat.stopStream"]
    # The helper never uses the markdown_text field: buffered text travels as a markdown_text chunk.
    assert slack.calls[0].params["chunks"] == [{"type": "markdown_text", "text": "short and longer"}]
    assert slack.calls[1].params["chunks"] == [{"type": "markdown_text", "text": " end"}]
    assert slack.messages(DM)[0].text == "short and longer end"


async def test_stream_expires_on_the_doubles_clock(
    slack: SlackDouble, client: AsyncWebClient, clock: ManualClock
) -> None:
    slack.stream_ttl = 0.5
    ts = (await client.chat_startStream(channel=DM, thread_ts=THREAD, markdown_text="a"))["ts"]
    clock.advance(0.4)
    await client.chat_appendStream(channel=DM, ts=ts, markdown_text="b")  # an append keeps it alive
    clock.advance(0.4)
    await client.chat_appendStream(channel=DM, ts=ts, markdown_text="c")
    clock.advance(0.6)
    assert slack.message(DM, ts).stream == "expired"
    expired = await error_of(client.chat_stopStream(channel=DM, ts=ts, markdown_text="d"))
    assert expired.response["error"] == "message_not_in_streaming_state"
    await client.chat_update(channel=DM, ts=ts, markdown_text="abcd")  # the documented way to finish it
    assert slack.message(DM, ts).text == "abcd"


async def test_stream_max_age_expires_even_with_appends(clock: ManualClock) -> None:
    async with SlackDouble(token=TOKEN, clock=clock, stream_max_age=10) as slack:
        client = AsyncWebClient(token=TOKEN, base_url=slack.base_url)
        ts = (await client.chat_startStream(channel=DM, thread_ts=THREAD, markdown_text="a"))["ts"]
        for _ in range(2):
            clock.advance(4)
            await client.chat_appendStream(channel=DM, ts=ts, markdown_text=".")
        clock.advance(4)
        gone = await error_of(client.chat_appendStream(channel=DM, ts=ts, markdown_text="."))
        assert gone.response["error"] == "message_not_in_streaming_state"


async def test_refused_streaming(slack: SlackDouble, client: AsyncWebClient) -> None:
    slack.refuse_streaming = "feature_not_enabled"
    refused = await error_of(client.chat_startStream(channel=DM, thread_ts=THREAD, markdown_text="x"))
    assert refused.response["error"] == "feature_not_enabled"
    assert slack.messages(DM) == []


async def test_429_surfaces_with_retry_after_and_early_calls_are_recorded(
    slack: SlackDouble, client: AsyncWebClient, clock: ManualClock
) -> None:
    # AsyncWebClient's only default retry handler is for connection errors: a 429 reaches the caller as-is.
    assert [type(h) for h in client.retry_handlers] == [AsyncConnectionErrorRetryHandler]
    slack.rate_limits["chat.postMessage"] = RateLimit(per_minute=30, burst=1, scope="channel")
    await client.chat_postMessage(channel=DM, text="one")
    limited = await error_of(client.chat_postMessage(channel=DM, text="two"))
    assert limited.response.status_code == 429
    assert limited.response.headers["Retry-After"] == "2"
    assert limited.response["error"] == "ratelimited"
    await client.chat_postMessage(channel="D0BOB", text="another channel has its own budget")

    clock.advance(1)
    await error_of(client.chat_postMessage(channel=DM, text="too early"))
    assert [c.params["text"] for c in slack.calls_inside_retry_after] == ["too early"]
    clock.advance(2)
    await client.chat_postMessage(channel=DM, text="after the wait")
    assert len(slack.calls_inside_retry_after) == 1
    assert [c.params["text"] for c in slack.rate_limited] == ["two", "too early"]
    assert [m.text for m in slack.messages(DM)] == ["one", "after the wait"]


async def test_injected_faults(slack: SlackDouble, client: AsyncWebClient) -> None:
    slack.fail_next("chat.update", retry_after=7)
    slack.fail_next("chat.postMessage", status=500)
    slack.fail_next("chat.postMessage", "channel_not_found")
    limited = await error_of(client.chat_update(channel=DM, ts="1.000001", text="x"))
    assert (limited.response.status_code, limited.response.headers["Retry-After"]) == (429, "7")
    assert (await error_of(client.chat_postMessage(channel=DM, text="x"))).response.status_code == 500
    assert (await error_of(client.chat_postMessage(channel=DM, text="x"))).response["error"] == "channel_not_found"
    await client.chat_postMessage(channel=DM, text="the faults are used up")

    # The default connection-error handler retries a dropped connection once (after a 0.5-1.5 s backoff; the
    # same handler with no wait here, to keep the test fast).
    quick = AsyncConnectionErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.0))
    retrying = AsyncWebClient(token=TOKEN, base_url=slack.base_url, retry_handlers=[quick])
    slack.fail_next("chat.postMessage", drop=True)
    await retrying.chat_postMessage(channel=DM, text="survives one dropped connection")
    assert [c.status for c in slack.calls_to("chat.postMessage")][-2:] == [0, 200]
    slack.fail_next("chat.postMessage", drop=True, times=2)
    with pytest.raises(aiohttp.ClientError):
        await retrying.chat_postMessage(channel=DM, text="lost")


async def test_assistant_status(slack: SlackDouble, client: AsyncWebClient) -> None:
    await client.assistant_threads_setStatus(channel_id=CHANNEL, thread_ts=THREAD, status="is thinking…")
    assert slack.workspace.thread_status[(CHANNEL, THREAD)] == "is thinking…"
    await client.chat_postMessage(channel=CHANNEL, thread_ts=THREAD, text="answer")  # a reply clears it
    assert slack.workspace.thread_status[(CHANNEL, THREAD)] == ""
    await client.assistant_threads_setStatus(channel_id=CHANNEL, thread_ts=THREAD, status="")
    assert [s.status for s in slack.statuses] == ["is thinking…", ""]


PROMPTS = [{"title": "Add", "message": "What is 2+2?"}, {"title": "Time", "message": "What time is it?"}]


async def test_suggested_prompts_take_no_thread_in_an_agent_app(slack: SlackDouble, client: AsyncWebClient) -> None:
    await client.assistant_threads_setSuggestedPrompts(channel_id=DM, title="Hi!", prompts=PROMPTS)
    [shown] = slack.suggested_prompts
    assert (shown.channel_id, shown.thread_ts, shown.title) == (DM, None, "Hi!")
    assert shown.prompts == (("Add", "What is 2+2?"), ("Time", "What time is it?"))
    await client.assistant_threads_setSuggestedPrompts(channel_id=DM, thread_ts=THREAD, prompts=PROMPTS)
    assert len(slack.suggested_prompts) == 1  # Slack: ok, and silently nothing for an agent app
    five = await error_of(client.assistant_threads_setSuggestedPrompts(channel_id=DM, prompts=PROMPTS * 2 + PROMPTS))
    assert five.response["error"] == "invalid_arguments"
    untitled = await error_of(client.assistant_threads_setSuggestedPrompts(channel_id=DM, prompts=[{"message": "x"}]))
    assert untitled.response["error"] == "invalid_arguments"


async def test_suggested_prompts_go_to_a_thread_in_an_assistant_app() -> None:
    async with SlackDouble(token=TOKEN, view="assistant") as slack, aiohttp.ClientSession() as session:
        client = AsyncWebClient(token=TOKEN, base_url=slack.base_url, session=session)
        await client.assistant_threads_setSuggestedPrompts(channel_id=DM, thread_ts=THREAD, prompts=PROMPTS)
        assert [p.thread_ts for p in slack.suggested_prompts] == [THREAD]


async def test_thread_titles_and_ephemeral_messages(slack: SlackDouble, client: AsyncWebClient) -> None:
    await client.assistant_threads_setTitle(channel_id=DM, thread_ts=THREAD, title="Adding numbers")
    assert slack.titles == {(DM, THREAD): "Adding numbers"}
    bad = await error_of(client.assistant_threads_setTitle(channel_id=DM, thread_ts="yesterday", title="x"))
    assert bad.response["error"] == "invalid_thread_ts"
    await client.chat_postEphemeral(channel=DM, user="U0ALICE", text="Thanks!", thread_ts=THREAD)
    [note] = slack.ephemerals
    assert (note.user, note.text, note.thread_ts) == ("U0ALICE", "Thanks!", THREAD)
    assert slack.messages(DM) == []  # nobody else sees it, and it is not in the history


FEEDBACK = {
    "type": "context_actions",
    "elements": [
        {
            "type": "feedback_buttons",
            "action_id": "feedback",
            "positive_button": {"text": {"type": "plain_text", "text": "👍"}, "value": "good"},
            "negative_button": {"text": {"type": "plain_text", "text": "👎"}, "value": "bad"},
        }
    ],
}


async def test_feedback_buttons_are_checked_and_pressed(slack: SlackDouble, client: AsyncWebClient) -> None:
    answer = {"type": "markdown", "text": "**42**"}
    posted = await client.chat_postMessage(channel=DM, thread_ts=THREAD, blocks=[answer, FEEDBACK], text="42")
    half = {**FEEDBACK, "elements": [{**FEEDBACK["elements"][0], "negative_button": None}]}
    broken = await error_of(client.chat_postMessage(channel=DM, blocks=[answer, half], text="42"))
    assert broken.response["error"] == "invalid_blocks"
    payload = slack.button_press(slack.message(DM, posted["ts"]), "feedback", value="bad")
    [action] = payload["actions"]
    assert (action["type"], action["value"], action["text"]["text"]) == ("feedback_buttons", "bad", "👎")
    assert payload["container"]["thread_ts"] == THREAD
    with pytest.raises(ValueError, match="no button with value"):
        slack.button_press(slack.message(DM, posted["ts"]), "feedback", value="meh")


async def test_form_bodies_unknown_methods_and_canned_answers(slack: SlackDouble) -> None:
    form = {"channel": DM, "thread_ts": THREAD, "chunks": '[{"type":"markdown_text","text":"form"}]'}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        async with http.post(slack.base_url + "chat.startStream", data=form) as response:
            assert (await response.json())["ok"] is True
        async with http.post(slack.base_url + "reactions.add", data={"channel": DM}) as response:
            assert (await response.json()) == {"ok": False, "error": "unknown_method"}
        slack.responses["reactions.add"] = {"ok": True}
        async with http.post(slack.base_url + "reactions.add", data={"channel": DM}) as response:
            assert (await response.json()) == {"ok": True}
    assert slack.messages(DM)[0].text == "form"


async def test_wait_for_wakes_on_calls(slack: SlackDouble, client: AsyncWebClient) -> None:
    poster = asyncio.create_task(client.chat_postMessage(channel=DM, text="later"))
    await slack.wait_for(lambda: len(slack.messages(DM)) == 1, timeout=5)
    await poster
    with pytest.raises(TimeoutError, match=r"chat\.postMessage"):
        await slack.wait_for(lambda: False, timeout=0.01)


def test_signed_request_verifies_with_slack_sdk() -> None:
    envelope = event_envelope(
        app_mention("hi", bot_user_id="U0LIVEBOT"), team_id="T0LIVEBOT", api_app_id="A0", bot_user_id="U0LIVEBOT"
    )
    body, headers = signed_request(envelope, SECRET)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    assert not verifier.is_valid_request(body.replace(b"hi", b"ho"), headers)
    stale_body, stale_headers = signed_request(envelope, SECRET, timestamp=int(time.time()) - 301)
    assert not verifier.is_valid_request(stale_body, stale_headers)
    assert envelope["authorizations"][0]["user_id"] == "U0LIVEBOT"
    assert envelope["event"]["text"] == "<@U0LIVEBOT> hi"


async def test_bolt_app_in_http_mode_answers_a_signed_mention(slack: SlackDouble) -> None:
    bolt = AsyncApp(client=AsyncWebClient(token=TOKEN, base_url=slack.base_url), signing_secret=SECRET)

    @bolt.event("app_mention")
    async def answer(event: dict, say: object) -> None:
        await say(markdown_text="pong", thread_ts=event["ts"])  # type: ignore[operator]

    runner = web.AppRunner(bolt.web_app(), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        who = slack.identity
        mention = app_mention("ping", bot_user_id=who.bot_user_id, channel=CHANNEL, ts=THREAD)
        envelope = slack.envelope(mention)
        assert (envelope["team_id"], envelope["api_app_id"]) == (who.team_id, who.app_id)
        assert envelope["authorizations"][0]["user_id"] == who.bot_user_id
        assert (await post_event(url, envelope, SECRET)).status == 200
        await slack.wait_for(lambda: len(slack.messages(CHANNEL, THREAD)) == 1)
        assert slack.messages(CHANNEL, THREAD)[0].text == "pong"
        assert (await post_event(url, envelope, SECRET, forge=True)).status == 401
        assert (await post_event(url, envelope, SECRET, retry_num=1, retry_reason="http_timeout")).status == 200
        # Bolt does not deduplicate Slack's retries (same event_id): the listener runs again.
        await slack.wait_for(lambda: len(slack.messages(CHANNEL, THREAD)) == 2)
        challenge = await post_event(url, url_verification("abc"), SECRET)
        assert (challenge.status, json.loads(challenge.text)) == (200, {"challenge": "abc"})
    finally:
        await runner.cleanup()
