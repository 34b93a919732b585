"""The Slack reply surface: one reply in one thread (of a channel or of a DM), through slack_sdk's AsyncWebClient.

Text is always sent as `markdown_text`: Slack renders standard Markdown itself, so a partial text (an unclosed
fence) cannot make a call fail, and nothing here raises FormattingRejected (so `plain` is never asked for). The
answer streams with Slack's native stream (chat.startStream / appendStream / stopStream); wherever the stream is
refused, it is a message that chat.update rewrites (the StreamingHandler picks the mode from the profile and falls
back on StreamingRefused).

A picture (a chart) is uploaded into the thread with the external upload flow (`image`); it ends the stream of the
tool's task cards first, so the answer after it opens a new stream below the picture.

A message that chat.update rewrites carries a Stop button (action_id "stop") until its final text; a native
stream cannot carry one (chat.startStream takes no blocks), so there the word "stop" in the thread is the way.
The last message of an answer carries Slack's feedback buttons (`ask_feedback`, then the next final call: the
stream's chat.stopStream `blocks`, or a message's blocks).

Tool calls are task cards (task_update chunks) in a stream. The handler finishes the text before a tool
(`stream_stop`) and then reports the tool (`task`): the first card opens a new stream whose first content is the
card, and the answer after the tool continues in that same stream, because `stream_start` (or `send`, for an
answer that arrived whole) appends to it instead of opening another. A card update the rate budget holds back
rides on the next call to that stream. `close` stops every stream still open, so no message is left streaming.

"is thinking…" is assistant.threads.setStatus on the thread (Slack clears it when the app replies there). It is
not refreshed while a stream of this reply is open (the stream shows the progress), and a workspace that refuses
it is not asked again during the reply.

Every call passes the bot's shared RateLimiter with Slack's own budgets (`SlackBudgets`): each method "per
workspace per app" at its tier, and chat.postMessage about once a second per channel plus a workspace-wide limit.
One token is installed in one workspace, and the limiter is the token's, so a workspace budget is keyed by the
method alone. A 429's Retry-After holds back that method in the workspace, and lowers the limiter's idea of its
tier. Intermediate calls never wait and take turns with the other replies streaming in the workspace (so with
ten replies each one's appends come less often and carry more text); first and final ones wait in line. Under
overload a first message (a stream's start, a DM's first post) is urgent only while its line is short; otherwise
it goes when there is room, and an answer complete before that arrives as one message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from channels.capabilities import LiveMode, Profile
from channels.clock import Clock
from channels.errors import ChannelError, PermanentError, StreamingRefused
from channels.inbound import approval_data
from channels.ratelimit import Budget, RateLimiter, Scope
from channels.slack.agent_view import feedback_block
from channels.slack.errors import translate
from channels.surface import PlatformSurface

log = logging.getLogger(__name__)

BOT_BUDGET = Budget(20, 1.0)
"""Slack has no per-bot limit, only per method; this only keeps a burst of replies from hitting all at once."""
METHOD_TIERS: dict[str, int] = {
    "chat.update": 3,
    "chat.delete": 3,
    "chat.startStream": 3,
    "chat.stopStream": 3,
    "chat.appendStream": 4,
    "chat.postEphemeral": 4,
    "assistant.threads.setStatus": 3,
    "assistant.threads.setSuggestedPrompts": 4,
    "assistant.threads.setTitle": 4,
    "files.completeUploadExternal": 4,  # the three calls of one upload (files_upload_v2) pass as one
}
"""Slack's rate-limit tier of each method the surface calls (chat.postMessage has its own rules)."""
POST = "chat.postMessage"
START = "chat.startStream"
STOP_ACTION = "stop"
"""The action_id of the Stop button on a message the bot is still writing."""
APPROVE_ACTION = "approval_approve"
DENY_ACTION = "approval_deny"
"""The action_ids of the Approve and Deny buttons under a request to approve a tool call."""
THINKING = "is thinking…"
"""Slack shows the status after the app's name: "livebot is thinking…"."""
TITLE_LIMIT = 256
"""Longest task card title Slack accepts."""

_NETWORK_ERRORS = (SlackApiError, SlackClientError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


def new_limiter(*, clock: Clock | None = None) -> RateLimiter:
    """The rate limiter of one Slack token: Slack limits each method per workspace, never the bot as a whole."""
    return RateLimiter(BOT_BUDGET, bot_is_platform_limit=False, clock=clock)


@dataclass(frozen=True, slots=True)
class SlackBudgets:
    """Slack's published limits for one app in one workspace, in calls per minute (SLACK_TIER*_PER_MINUTE, ...).

    Slack allows bursts above the tiers, so these are where a 429 is certain not to come from our pace alone;
    each becomes a window of a tenth of the minute's calls per sixth of a minute, which Slack's burst allowance
    takes. A 429 still teaches the limiter (the numbers are "at least" numbers, and workspaces differ).
    """

    tier2: int = 20
    tier3: int = 50
    tier4: int = 100
    posts_per_channel: int = 60
    posts_per_workspace: int = 300

    def scopes(self, channel: str, method: str) -> tuple[Scope, ...]:
        """The budgets one call of `method` in `channel` spends from, narrowest first."""
        if method == POST:
            return (
                Scope((channel, POST), Budget.per_minute(self.posts_per_channel, burst=3)),
                Scope(POST, Budget.per_minute(self.posts_per_workspace), learns=True),
            )
        tier = METHOD_TIERS.get(method)
        if tier is None:
            return ()
        per_minute = {2: self.tier2, 3: self.tier3, 4: self.tier4}[tier]
        return (Scope(method, Budget.per_minute(per_minute), paced=True, learns=True),)


@dataclass(frozen=True, slots=True)
class SlackTarget:
    """Where a reply goes (a `channels.inbound.Target`).

    Attributes:
        channel: The channel or DM id.
        kind: "thread" (the capability-registry kind: every answer goes in a thread).
        thread_ts: The thread the reply is posted in, where its status shows "is thinking…"; None only for a late
            final message from an outbox entry written before every answer went in a thread.
        user_id: The user asking: the stream's recipient_user_id in channels.
        team_id: That user's team: the stream's recipient_team_id in channels.
    """

    channel: str
    kind: str
    thread_ts: str | None
    user_id: str | None = None
    team_id: str | None = None

    @property
    def in_channel(self) -> bool:
        """A channel or group rather than a DM: streams there must name their recipient."""
        return not self.channel.startswith("D")

    @property
    def chat(self) -> str:
        return self.channel

    @property
    def conversation(self) -> str:
        """A thread is one conversation (a message outside any thread names only its channel, which no reply uses)."""
        return f"slack:{self.channel}:{self.thread_ts}" if self.thread_ts else f"slack:{self.channel}"

    def address(self) -> dict[str, Any]:
        return {"channel": self.channel, "kind": self.kind, "thread_ts": self.thread_ts}

    @classmethod
    def from_address(cls, address: dict[str, Any]) -> SlackTarget:
        """(Entries written before every answer went in a thread say kind "dm" and carry a status_ts: both are
        read as a thread, or the top level of the DM where thread_ts is None.)"""
        return cls(address["channel"], "thread", address.get("thread_ts"))


class SlackSurface(PlatformSurface[AsyncWebClient, SlackTarget]):
    """Posts, updates and streams one reply. See the module docstring; the arguments are `PlatformSurface`'s, the
    client the bot's AsyncWebClient, and `on_live_refused` is called when chat.startStream is refused; `budgets`
    are Slack's limits for the workspace (the settings' numbers)."""

    def __init__(
        self,
        client: AsyncWebClient,
        limiter: RateLimiter,
        target: SlackTarget,
        profile: Profile,
        *,
        on_live_refused: Callable[[], None] = lambda: None,
        budgets: SlackBudgets = SlackBudgets(),
    ) -> None:
        self._budgets = budgets
        super().__init__(client, limiter, target, profile, on_live_refused=on_live_refused)

    def _begin(self) -> None:
        self._streams_refused = self.profile.mode is not LiveMode.NATIVE
        self._open: list[str] = []  # streams started and not stopped, oldest first
        self._opening = 0  # startStream calls in flight
        self._cards_only: str | None = None  # the open stream that shows task cards and no text yet
        self._pending: list[dict[str, Any]] = []  # card updates not sent yet
        self._status: str | None = None  # the status line while a tool runs (no stream here)
        self._status_set = False
        self._status_refused = False
        self._texts: dict[str, str] = {}  # what each posted message shows, as last sent
        self._buttons: dict[str, bool] = {}  # messages made of blocks: whether each shows the Stop button now
        self._feedback = False  # the next final call finishes the answer: it carries the feedback buttons

    def measure(self, text: str) -> int:
        return len(text)  # Slack's 12,000 limit counts the markdown_text as sent

    def ceiling(self, text: str) -> int:
        return len(text)

    def ask_feedback(self) -> None:
        """The next final call finishes the answer: that message carries Slack's feedback buttons."""
        self._feedback = True

    # -- messages ---------------------------------------------------------------------------------------

    async def send(self, text: str, *, final: bool, plain: bool = False) -> str:
        feedback = final and self._feedback
        if self._cards_only is not None:  # the answer after a tool arrived whole: it finishes the cards' stream
            ts = self._cards_only
            try:
                await self._stop(ts, text, feedback=feedback)
                return ts
            except StreamingRefused:
                pass  # it expired while the tool ran: post the answer instead
        target = self._target
        button = self.profile.buttons and not final
        blocks = button or feedback  # a message with a button is made of blocks (see _content)
        response = await self._call(
            POST,
            lambda: self._client.chat_postMessage(
                channel=target.channel,
                thread_ts=target.thread_ts,
                **_content(text, button=button if blocks else None, feedback=feedback),
            ),
            urgent=final or self._prompt(POST),  # a first message goes first too, unless its line is long
        )
        ts = str(response["ts"])
        self._texts[ts] = text
        if blocks:
            self._buttons[ts] = button
        self._feedback = self._feedback and not feedback
        self._replied()
        return ts

    async def edit(self, ref: str, text: str, *, final: bool, plain: bool = False) -> None:
        # A message made of blocks stays blocks: chat.update keeps the blocks it is not given, over markdown_text.
        feedback = final and self._feedback
        button = None if ref not in self._buttons and not feedback else not final
        if self._texts.get(ref) == text and self._buttons.get(ref) == button and not feedback:
            return  # Slack has no "not modified": an identical update would only spend a Tier 3 call
        if ref in self._open:  # Slack refuses to update a message that is still streaming
            with contextlib.suppress(StreamingRefused):
                await self._stop(ref, "")
        await self._call(
            "chat.update",
            lambda: self._client.chat_update(
                channel=self._target.channel, ts=ref, **_content(text, button=button, feedback=feedback)
            ),
            urgent=final,
        )
        self._texts[ref] = text
        if button is not None:
            self._buttons[ref] = button
        self._feedback = self._feedback and not feedback

    async def drop_buttons(self, message: Mapping[str, Any]) -> None:
        """Take the Stop button off `message` (as a button press quotes it), one a reply cut short by a crash left.

        The message keeps every other block and its text exactly as Slack stored them.
        """
        blocks = [block for block in message.get("blocks") or [] if not _has_stop_button(block)]
        text = message.get("text")
        await self._call(
            "chat.update",
            lambda: self._client.chat_update(
                channel=self._target.channel, ts=str(message["ts"]), blocks=blocks, text=text
            ),
            urgent=False,
        )

    def adopt(self, ref: str) -> None:
        """Message `ref` is made of blocks with the Stop button: its final edit sends blocks without it (an update
        with markdown_text alone would keep the blocks it is not given, button included)."""
        self._buttons[ref] = True

    async def ask_approval(self, text: str, approval_id: str) -> str:
        """The request as a message of blocks: the calls in a markdown block, then Approve and Deny buttons.

        Any stream of this reply is stopped first, so the request sits below the text before the tool.
        """
        await self.close()
        buttons = [
            _button(APPROVE_ACTION, "✅ Approve", approval_data(approval_id, True), "primary"),
            _button(DENY_ACTION, "❌ Deny", approval_data(approval_id, False), "danger"),
        ]
        target = self._target
        response = await self._call(
            POST,
            lambda: self._client.chat_postMessage(
                channel=target.channel,
                thread_ts=target.thread_ts,
                blocks=[
                    {"type": "markdown", "text": text},
                    {"type": "actions", "block_id": "livebot_approval", "elements": buttons},
                ],
                text=_fallback(text),
            ),
            urgent=True,
        )
        self._replied()
        return str(response["ts"])

    async def settle_approval(self, ref: str, text: str) -> None:
        """chat.update with the decision as the only block: the buttons go with the request's text."""
        await self._call(
            "chat.update",
            lambda: self._client.chat_update(
                channel=self._target.channel, ts=ref, blocks=[{"type": "markdown", "text": text}], text=_fallback(text)
            ),
            urgent=True,
        )

    # -- the native stream ------------------------------------------------------------------------------

    async def stream_start(self, text: str) -> str:
        if self._streams_refused:
            raise StreamingRefused("native streaming was refused in this channel")
        if self._cards_only is not None:  # the answer after a tool continues under its task cards
            ts = self._cards_only
            try:
                await self._append(ts, text, urgent=True)
                return ts
            except StreamingRefused:
                pass  # it expired while the tool ran: open a new one
        return await self._start(text, urgent=self._prompt(START))

    async def stream_append(self, ref: str, delta: str) -> None:
        await self._append(ref, delta, urgent=False)

    async def stream_stop(self, ref: str, delta: str) -> None:
        await self._stop(ref, delta, feedback=self._feedback)

    async def task(self, call_id: str, title: str, state: str) -> None:
        if self._streams_refused:  # no stream to hold cards: the tool shows as the thread's status instead
            await self.status(f"{title}…" if state == "in_progress" else THINKING)
            return
        card = {"type": "task_update", "id": call_id or title, "title": title[:TITLE_LIMIT], "status": state}
        self._pending.append(card)
        if self._cards_only is not None:
            try:
                await self._append(self._cards_only, "", urgent=False)
                return
            except StreamingRefused:
                pass  # the cards' stream expired while the tool ran: the card moves to a new stream
        try:
            self._cards_only = await self._start("", urgent=False)
        except StreamingRefused:
            self._pending.clear()
            await self.task(call_id, title, state)  # startStream was refused just now: a status line then

    async def _start(self, text: str, *, urgent: bool) -> str:
        target = self._target
        if target.thread_ts is None:
            raise StreamingRefused("no thread to stream in")  # (an outbox delivery, which never streams)
        thread_ts, chunks = target.thread_ts, self._take_pending()
        recipient = {"recipient_user_id": target.user_id, "recipient_team_id": target.team_id}
        self._opening += 1
        try:
            response = await self._call(
                START,
                lambda: self._client.chat_startStream(
                    channel=target.channel,
                    thread_ts=thread_ts,
                    markdown_text=text if text and not chunks else None,
                    chunks=_with_text(chunks, text) if chunks else None,
                    **(recipient if target.in_channel else {}),
                ),
                urgent=urgent,
            )
        except StreamingRefused:
            self._streams_refused = True
            self._on_live_refused()
            raise
        except ChannelError:
            self._pending[:0] = chunks  # they go with the next call
            raise
        finally:
            self._opening -= 1
        ts = str(response["ts"])
        self._open.append(ts)
        self._replied()
        return ts

    async def _append(self, ts: str, text: str, *, urgent: bool) -> None:
        chunks = self._take_pending()
        try:
            await self._call(
                "chat.appendStream",
                lambda: self._client.chat_appendStream(
                    channel=self._target.channel,
                    ts=ts,
                    markdown_text=text if text and not chunks else None,
                    chunks=_with_text(chunks, text) if chunks else None,
                ),
                urgent=urgent,
            )
        except ChannelError as exc:
            self._pending[:0] = chunks  # they go with the next call (in a new stream if this one expired)
            if isinstance(exc, StreamingRefused):
                self._forget(ts)  # expired or stopped: no longer ours to finish
            raise
        if text and ts == self._cards_only:
            self._cards_only = None  # it carries the answer now; the handler finishes it

    async def _stop(self, ts: str, text: str, *, feedback: bool = False) -> None:
        chunks = self._take_pending() if ts == self._cards_only else []
        try:
            await self._call(
                "chat.stopStream",
                lambda: self._client.chat_stopStream(
                    channel=self._target.channel,
                    ts=ts,
                    markdown_text=text if text and not chunks else None,
                    chunks=_with_text(chunks, text) if chunks else None,
                    blocks=[feedback_block()] if feedback else None,  # added below the streamed content
                ),
                urgent=True,  # the final text of a message
            )
        except ChannelError as exc:
            self._pending[:0] = chunks
            if isinstance(exc, StreamingRefused):
                self._forget(ts)
            raise
        self._forget(ts)
        self._feedback = self._feedback and not feedback

    def _take_pending(self) -> list[dict[str, Any]]:
        chunks, self._pending = self._pending, []
        return chunks

    def _forget(self, ts: str) -> None:
        if ts in self._open:
            self._open.remove(ts)
        if ts == self._cards_only:
            self._cards_only = None

    # -- pictures ---------------------------------------------------------------------------------------

    async def image(self, data: bytes, *, caption: str) -> None:
        """Upload a picture into the reply's thread (or DM) with slack_sdk's `files_upload_v2`, which runs the
        external upload flow (files.getUploadURLExternal, the upload, files.completeUploadExternal)."""
        if self._cards_only is not None:  # the tool's cards end above the picture; the answer opens a new stream
            with contextlib.suppress(StreamingRefused):
                await self._stop(self._cards_only, "")
        target = self._target
        await self._call(
            "files.completeUploadExternal",
            lambda: self._client.files_upload_v2(
                channel=target.channel, thread_ts=target.thread_ts, file=data, filename="chart.png", title=caption
            ),
            urgent=True,
        )
        self._replied()

    # -- waiting feedback -------------------------------------------------------------------------------

    async def typing(self) -> None:
        if self._open or self._opening or self._status_refused:
            return  # a stream of this reply shows the progress; or the workspace said no
        await self._set_status(self._status or THINKING)

    async def status(self, text: str | None) -> None:
        if text is None:
            self._status = None
            if self._status_set:
                await self._set_status("")
            return
        self._status = text if text.startswith("is ") else f"is {text[:1].lower()}{text[1:]}"
        if not self._status_refused:
            await self._set_status(self._status)

    async def close(self) -> None:
        self._limiter.release(self)  # the reply no longer takes turns with the others streaming
        for ts in list(self._open):
            try:
                await self._stop(ts, "")
            except ChannelError as exc:
                log.warning("slack: could not stop stream %s in %s: %s", ts, self._target.channel, exc)
        if self._status_set and not self._status_refused:
            await self._set_status("", urgent=True)

    async def _set_status(self, status: str, *, urgent: bool = False) -> None:
        target = self._target
        if target.thread_ts is None:
            return  # an outbox delivery: no thread to show a status in
        thread_ts = target.thread_ts
        try:
            await self._call(
                "assistant.threads.setStatus",
                lambda: self._client.assistant_threads_setStatus(
                    channel_id=target.channel, thread_ts=thread_ts, status=status
                ),
                urgent=urgent,
            )
        except PermanentError:
            self._status_refused = True  # not an assistant thread, or a missing scope: do not ask again
            raise
        self._status_set = bool(status)

    def _replied(self) -> None:
        """The app posted in the reply's thread, which clears the status there (Slack)."""
        self._status_set = False

    # -- calls ------------------------------------------------------------------------------------------

    async def _call(self, method: str, request: Callable[[], Awaitable[Any]], *, urgent: bool) -> Any:
        """Make the request in the limiter's slot for `method`, the workspace's budgets (see `call`)."""
        return await call(
            self._limiter, self._budgets, self._target.channel, method, request, urgent=urgent, caller=self
        )

    def _prompt(self, method: str) -> bool:
        """Whether a first message through `method` would go out soon enough to wait in line for it."""
        return self._limiter.prompt(self._budgets.scopes(self._target.channel, method)[-1])


async def call(
    limiter: RateLimiter,
    budgets: SlackBudgets,
    channel: str,
    method: str,
    request: Callable[[], Awaitable[Any]],
    *,
    urgent: bool,
    caller: Hashable | None = None,
) -> Any:
    """Make the request inside the limiter's slot for `method` in the workspace (which bookkeeps a 429),
    translating slack_sdk's errors; usable outside a reply (suggested prompts, titles, the ephemeral thanks).

    The gate is the method: Slack's Retry-After holds back that method in the workspace.

    Raises:
        ChannelError: What slack_sdk raised, as the channel error the streaming rules act on.
    """
    scopes = budgets.scopes(channel, method)
    async with limiter.slot(scopes, gate=method, urgent=urgent, caller=caller):
        try:
            return await request()
        except _NETWORK_ERRORS as exc:
            raise translate(exc, method) from exc


def _content(text: str, *, button: bool | None, feedback: bool = False) -> dict[str, Any]:
    """A message's content: markdown_text, or (`button` not None, or `feedback`) a markdown block and, if `button`,
    the Stop button, if `feedback`, the feedback buttons.

    markdown_text cannot be combined with blocks, and a `markdown` block renders the same Markdown, so a message
    with buttons is made of blocks; `text` is then only the notification's fallback, in mrkdwn, where Slack
    reads `&`, `<` and `>` as control characters (`<!channel>` would notify a channel), so they are escaped there.
    """
    if button is None and not feedback:
        return {"markdown_text": text}
    blocks: list[dict[str, Any]] = [{"type": "markdown", "text": text}]
    if button:
        stop = {"type": "button", "action_id": STOP_ACTION, "text": {"type": "plain_text", "text": "⏹ Stop"}}
        blocks.append({"type": "actions", "block_id": "livebot_stop", "elements": [stop]})
    if feedback:
        blocks.append(feedback_block())
    return {"blocks": blocks, "text": _fallback(text)}


def _fallback(text: str) -> str:
    """A message's `text` beside its blocks: the notification's fallback, in mrkdwn, where Slack reads `&`, `<` and
    `>` as control characters (`<!channel>` would notify a channel), so they are escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _button(action_id: str, label: str, value: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
        "value": value,
        "style": style,
    }


def _has_stop_button(block: Mapping[str, Any]) -> bool:
    return any(element.get("action_id") == STOP_ACTION for element in block.get("elements") or [])


def _with_text(chunks: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Held-back card updates first, then the text as a markdown_text chunk (one call carries both)."""
    return [*chunks, {"type": "markdown_text", "text": text}] if text else chunks
