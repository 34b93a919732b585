"""A strict Slack Web API double on 127.0.0.1, for the real `slack_sdk` AsyncWebClient and Bolt's AsyncApp.

    async with SlackDouble(token="xoxb-test", stream_ttl=0.5) as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)  # base_url ends with "/api/"
        ...
        await slack.wait_for(lambda: any(m.stream == "stopped" for m in slack.messages("C1")))

The point of a strict double is that the bot's Slack code meets the failures production meets: a wrong token,
a stream that has expired or was already stopped, `markdown_text` over 12,000 characters, a refused native
stream, 429 with Retry-After when a channel is written too fast. The message and stream rules live in
`slack_workspace`; this module is the HTTP side: body parsing (Slack accepts form-encoded and JSON bodies, and
slack_sdk sends some methods' arguments in the query string of a POST), the bearer token, rate budgets, injected
faults and what tests observe. Every call is recorded, including the refused ones.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from tests.doubles.slack_events import block_actions, event_envelope
from tests.doubles.slack_files import SlackFiles
from tests.doubles.slack_workspace import (
    AppView,
    Ephemeral,
    Identity,
    ManualClock,
    PromptsCall,
    SlackError,
    SlackMessage,
    SlackWorkspace,
    StatusCall,
)

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "AppView",
    "Call",
    "Ephemeral",
    "Identity",
    "ManualClock",
    "PromptsCall",
    "RateLimit",
    "SlackDouble",
    "SlackMessage",
    "StatusCall",
]

_JSON_FIELDS = ("blocks", "chunks", "attachments", "metadata", "loading_messages", "files")


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `burst` calls at once, refilled at `per_minute` calls a minute.

    `scope="workspace"` keeps one bucket for the whole token (Slack: "per API method per workspace per app", the
    rule of every tiered method); `scope="channel"` keeps one per channel (chat.postMessage's ~1/s per channel).
    """

    per_minute: float
    burst: int = 1
    scope: Literal["channel", "workspace"] = "workspace"


TIER_2 = RateLimit(per_minute=20, burst=2)
TIER_3 = RateLimit(per_minute=50, burst=5)
TIER_4 = RateLimit(per_minute=100, burst=10)
DEFAULT_RATE_LIMITS: dict[str, RateLimit | tuple[RateLimit, ...]] = {
    "chat.postMessage": (
        RateLimit(per_minute=60, burst=3, scope="channel"),  # ~1/s per channel, short bursts tolerated
        RateLimit(per_minute=300, burst=30),  # and a workspace-wide limit (Slack gives no number)
    ),
    "chat.update": TIER_3,
    "chat.delete": TIER_3,
    "chat.startStream": TIER_3,  # (some reports say Tier 2)
    "chat.stopStream": TIER_3,
    "chat.appendStream": TIER_4,
    "chat.postEphemeral": TIER_4,
    "assistant.threads.setStatus": TIER_3,
    "files.getUploadURLExternal": TIER_4,
    "files.completeUploadExternal": TIER_4,
    "assistant.threads.setSuggestedPrompts": TIER_4,
    "assistant.threads.setTitle": TIER_4,
}
"""Per method: one bucket per workspace (the token), and for chat.postMessage one per channel as well."""


@dataclass(frozen=True)
class Call:
    """One HTTP call the double answered.

    Attributes:
        time: The double's clock when the call arrived.
        params: The merged query, form and JSON parameters, without `token`.
        status: HTTP status sent (200, 429, 5xx; 0 for a dropped connection).
        result: The JSON body sent.
    """

    time: float
    method: str
    params: dict[str, Any]
    status: int
    result: dict[str, Any]
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        """Whether Slack would have called this a success."""
        return self.status == 200 and bool(self.result.get("ok"))

    @property
    def error(self) -> str | None:
        """The `error` of the answer, if any."""
        return self.result.get("error")


@dataclass
class _Fault:
    error: str
    status: int
    retry_after: int | None
    drop: bool
    times: int


@dataclass
class _Bucket:
    tokens: float
    updated: float


class SlackDouble:
    """The Slack Web API double. Use `async with SlackDouble() as slack:` and pass `slack.base_url` to the client.

    Attributes:
        token: The bot token every call must carry as `Authorization: Bearer <token>`.
        identity: The bot's team, user, bot and app ids (what auth.test answers; use them in events).
        rate_limits: Per-method budgets (one RateLimit, or several a call must all pass), DEFAULT_RATE_LIMITS
            updated with the constructor's; a method mapped to None has no limit. May be changed while running
            (`slack.rate_limits["chat.update"] = RateLimit(6)`).
        responses: Canned answers for methods the double does not model (otherwise: `unknown_method`).
        calls: Every call, in arrival order, refused ones included.
        rate_limited: The calls answered 429 (by a budget or by `fail_next(retry_after=...)`).
        calls_inside_retry_after: Calls that arrived before a Retry-After given earlier for the same method and
            budget key (the channel; the workspace for a workspace-scoped budget) had passed.
        workspace: The messages and rules (`slack_workspace.SlackWorkspace`).
    """

    def __init__(
        self,
        *,
        token: str = "xoxb-livebot-test",
        identity: Identity | None = None,
        stream_ttl: float = 300.0,
        stream_max_age: float | None = None,
        rate_limits: Mapping[str, RateLimit | tuple[RateLimit, ...] | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        view: AppView = "agent",
    ) -> None:
        """Configure the double; nothing listens until `start()`.

        Args:
            token: The bot token the client must present.
            identity: Ids of the bot and its workspace; defaults to `Identity()`.
            stream_ttl: Seconds of `clock` a stream may go without an append before it expires (Slack: ~5 min).
            stream_max_age: If set, a stream also expires this long after it started however often it is
                appended to (what some developers measured: ~306 s). None keeps only the idle rule.
            rate_limits: Budgets merged over DEFAULT_RATE_LIMITS; `{method: None}` lifts one.
            clock: Time source for expiry, budgets and Retry-After; a `ManualClock` makes them deterministic.
            view: "agent" (manifest `features.agent_view`, what new apps get) or "assistant" (the legacy
                `assistant_view` of existing apps); it decides what setSuggestedPrompts does with a thread_ts.
        """
        self.token = token
        self.identity = identity or Identity()
        self.clock = clock
        self.rate_limits: dict[str, RateLimit | tuple[RateLimit, ...] | None] = {
            **DEFAULT_RATE_LIMITS,
            **(rate_limits or {}),
        }
        self.responses: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.rate_limited: list[Call] = []
        self.calls_inside_retry_after: list[Call] = []
        self.base_url = ""
        self.workspace = SlackWorkspace(
            self.identity, clock=clock, stream_ttl=stream_ttl, stream_max_age=stream_max_age, view=view
        )
        self.files = SlackFiles(self.workspace, token)
        self.files.register(self.workspace.methods)
        self._faults: dict[str, deque[_Fault]] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._retry_until: dict[tuple[str, str], float] = {}
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    @property
    def stream_ttl(self) -> float:
        """Idle seconds after which a stream expires; settable while running."""
        return self.workspace.stream_ttl

    @stream_ttl.setter
    def stream_ttl(self, seconds: float) -> None:
        self.workspace.stream_ttl = seconds

    # -- life cycle -----------------------------------------------------------------------------------------

    async def start(self) -> str:
        """Listen on an ephemeral loopback port; return the base URL, "http://127.0.0.1:PORT/api/" (slash kept)."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_get("/files-pri/{team_file}/download/{name}", self._serve_file)
        app.router.add_post("/upload/v1/{file_id}", self._receive_upload)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/api/"
        self.files.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Close the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- test controls --------------------------------------------------------------------------------------

    @property
    def refuse_streaming(self) -> str | None:
        """When set to an error name ("not_allowed", "feature_not_enabled", ...), chat.startStream fails with it."""
        return self.workspace.refuse_streaming

    @refuse_streaming.setter
    def refuse_streaming(self, error: str | None) -> None:
        self.workspace.refuse_streaming = error

    def fail_next(
        self,
        method: str,
        error: str = "internal_error",
        *,
        status: int = 200,
        retry_after: int | None = None,
        drop: bool = False,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls to `method` fail, after the token check and before any rule or budget.

        Args:
            method: e.g. "chat.update".
            error: The `error` of the answer.
            status: HTTP status; 500/503 model an outage (slack_sdk does not retry those by default).
            retry_after: Answer 429 with this Retry-After instead (error "ratelimited").
            drop: Close the connection without an answer. slack_sdk's default AsyncConnectionErrorRetryHandler
                retries that once, so `times=1` is invisible to the bot and `times=2` reaches it.
            times: How many consecutive calls fail.
        """
        fault = _Fault(error, 429 if retry_after is not None else status, retry_after, drop, times)
        self._faults.setdefault(method, deque()).append(fault)

    # -- observation ----------------------------------------------------------------------------------------

    @property
    def statuses(self) -> list[StatusCall]:
        """Accepted assistant.threads.setStatus calls, in order."""
        return self.workspace.statuses

    @property
    def suggested_prompts(self) -> list[PromptsCall]:
        """assistant.threads.setSuggestedPrompts calls that took effect, in order."""
        return self.workspace.suggested_prompts

    @property
    def titles(self) -> dict[tuple[str, str], str]:
        """Thread titles set with assistant.threads.setTitle, by (channel, thread_ts)."""
        return self.workspace.titles

    @property
    def ephemerals(self) -> list[Ephemeral]:
        """chat.postEphemeral messages, in order (each seen only by its user)."""
        return self.workspace.ephemerals

    def messages(
        self, channel: str, thread_ts: str | None = None, *, include_deleted: bool = False
    ) -> list[SlackMessage]:
        """Messages in `channel` in creation order (posts and streams); only replies in `thread_ts` if given."""
        return [
            message
            for message in self.workspace.all_messages()
            if message.channel == channel
            and (thread_ts is None or message.thread_ts == thread_ts)
            and (include_deleted or not message.deleted)
        ]

    def message(self, channel: str, ts: str) -> SlackMessage:
        """The message `ts` in `channel` (KeyError if the double never created it)."""
        found = self.workspace.find(channel, ts)
        if found is None:
            raise KeyError(f"no message {ts} in {channel}")
        return found

    def envelope(self, event: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """`slack_events.event_envelope` with this double's team, app and bot user ids, so they match auth.test."""
        who = self.identity
        return event_envelope(event, team_id=who.team_id, api_app_id=who.app_id, bot_user_id=who.bot_user_id, **kwargs)

    def button_press(
        self, message: SlackMessage, action_id: str, *, user: str = "U0ALICE", value: str | None = None
    ) -> dict[str, Any]:
        """The `block_actions` payload Slack sends when `user` presses the button `action_id` on `message`.

        For feedback buttons, `value` names the one pressed (its positive or negative button's value).
        """
        who = self.identity
        return block_actions(
            self.workspace.message_json(message),
            channel=message.channel,
            action_id=action_id,
            user=user,
            team_id=who.team_id,
            api_app_id=who.app_id,
            value=value,
        )

    def calls_to(self, method: str) -> list[Call]:
        """The calls to `method`, in order."""
        return [call for call in self.calls if call.method == method]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Return once `predicate()` is true; it is checked now and again after every call the double answers.

        Raises:
            TimeoutError: With the last calls, so a failing test shows what the bot did instead.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                recent = [(c.method, c.status, c.result.get("error")) for c in self.calls[-10:]]
                raise TimeoutError(f"condition not met within {timeout} s; last calls: {recent}")
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                continue

    # -- HTTP -----------------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        now = self.clock()
        try:
            params = await _params(request)
        except ValueError:
            return self._answer(Call(now, method, {}, 200, {"ok": False, "error": "invalid_json"}))
        token = _bearer(request) or str(params.get("token") or "")
        params.pop("token", None)
        if not token:
            return self._answer(Call(now, method, params, 200, {"ok": False, "error": "not_authed"}))
        if token != self.token:
            return self._answer(Call(now, method, params, 200, {"ok": False, "error": "invalid_auth"}))
        limits = self._limits(method)
        keys = [self._budget_key(limit, params) for limit in limits]
        inside = any(now < self._retry_until.get((method, key), -math.inf) for key in keys)
        faults = self._faults.get(method)
        if faults:
            fault = faults[0]
            fault.times -= 1
            if fault.times <= 0:
                faults.popleft()
            if fault.drop:
                return self._drop(request, Call(now, method, params, 0, {}), inside)
            if fault.retry_after is not None:
                key = keys[-1] if keys else "*"  # a 429 from above: for the method in the whole workspace
                return self._limited(Call(now, method, params, 429, {}), key, fault.retry_after, inside)
            return self._answer(Call(now, method, params, fault.status, {"ok": False, "error": fault.error}), inside)
        refused = self._spend(method, limits, keys, now)
        if refused is not None:
            key, wait = refused
            return self._limited(Call(now, method, params, 429, {}), key, wait, inside)
        if method in self.responses:
            result = dict(self.responses[method])
        elif not self.workspace.knows(method):
            result = {"ok": False, "error": "unknown_method"}
        else:
            try:
                result = self.workspace.call(method, params)
            except SlackError as error:
                result = {"ok": False, "error": error.error}
        return self._answer(Call(now, method, params, 200, result), inside)

    async def _serve_file(self, request: web.Request) -> web.Response:
        response = await self.files.serve(request)
        self._record(Call(self.clock(), "files-pri", {"path": request.path}, response.status, {}), False)
        return response

    async def _receive_upload(self, request: web.Request) -> web.Response:
        response = await self.files.receive(request)
        self._record(Call(self.clock(), "upload", {"path": request.path}, response.status, {}), False)
        return response

    def _limits(self, method: str) -> tuple[RateLimit, ...]:
        limit = self.rate_limits.get(method)
        return () if limit is None else (limit,) if isinstance(limit, RateLimit) else limit

    @staticmethod
    def _budget_key(limit: RateLimit, params: Mapping[str, Any]) -> str:
        if limit.scope == "workspace":
            return "*"
        return str(params.get("channel") or params.get("channel_id") or "*")

    def _spend(self, method: str, limits: tuple[RateLimit, ...], keys: list[str], now: float) -> tuple[str, int] | None:
        """Take one call from every bucket of the method; None if each had one, else (the key of the first that
        had none, the whole seconds until it has). A refused call takes nothing."""
        buckets = []
        for limit, key in zip(limits, keys, strict=True):
            rate = limit.per_minute / 60.0
            bucket = self._buckets.setdefault((method, key), _Bucket(float(limit.burst), now))
            bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                return key, max(1, math.ceil((1.0 - bucket.tokens) / rate))
            buckets.append(bucket)
        for bucket in buckets:
            bucket.tokens -= 1.0
        return None

    def _limited(self, call: Call, key: str, retry_after: int, inside: bool) -> web.Response:
        call = Call(call.time, call.method, call.params, 429, {"ok": False, "error": "ratelimited"}, retry_after)
        self._retry_until[(call.method, key)] = call.time + retry_after
        self.rate_limited.append(call)
        return self._answer(call, inside, headers={"Retry-After": str(retry_after)})

    def _drop(self, request: web.Request, call: Call, inside: bool) -> web.Response:
        self._record(call, inside)
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    def _answer(self, call: Call, inside: bool = False, headers: Mapping[str, str] | None = None) -> web.Response:
        self._record(call, inside)
        return web.Response(
            text=json.dumps(call.result),
            status=call.status,
            headers=headers,
            content_type="application/json",
            charset="utf-8",
        )

    def _record(self, call: Call, inside: bool) -> None:
        self.calls.append(call)
        if inside:
            self.calls_inside_retry_after.append(call)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


def _bearer(request: web.Request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


async def _params(request: web.Request) -> dict[str, Any]:
    """Query string, then the body: JSON if the content type says so, else form fields (JSON-valued ones parsed).

    Raises:
        ValueError: The JSON body, or a JSON-valued form field, does not parse.
    """
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        raw = await request.text()
        if raw.strip():
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("a JSON body must be an object")
            params.update(body)
        return params
    if request.can_read_body:
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    for name in _JSON_FIELDS:
        if isinstance(params.get(name), str) and params[name].strip()[:1] in ("[", "{"):
            params[name] = json.loads(params[name])
    return params
