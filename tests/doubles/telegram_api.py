"""A strict Telegram Bot API double on 127.0.0.1 for integration tests with the real python-telegram-bot.

The bot talks real HTTP to it (`telegram.Bot(token, base_url=f"{root}/bot")`), so the encodings, error bodies and
exceptions are the production ones. It is strict where Telegram is strict in ways that break streaming bots: the
4096 UTF-16 unit limit, "message is not modified", entity errors, flood control with `retry_after`, drafts only in
private chats. Tests set the scene, play the users (see `Scene`), inject faults and then look at what a user would see:

    async with TelegramDouble(token="123:abc") as tg:
        alice = tg.add_user("Alice", username="alice")
        dm = tg.private_chat(alice)
        bot = telegram.Bot(tg.token, base_url=tg.base_url)   # root + "/bot"
        tg.user_message(dm, alice, "/start")                 # becomes an update for getUpdates / the webhook
        tg.fail_next("editMessageText", retry_after=3)       # a long 429 on the next edit
        ...                                                  # run the bot
        await tg.wait_for(lambda: tg.visible_texts(dm) == ["Hello!"], timeout=10)
        assert tg.calls_inside_retry_after == []

The pieces live in `telegram_world` (state and JSON), `telegram_text` / `telegram_markup` (text rules),
`telegram_limits` (flood control), `telegram_updates` (getUpdates, webhook), `telegram_methods` (handlers),
`telegram_files` (files users send, getFile and downloads, sendPhoto) and `telegram_scene` (set-up, user actions,
observation).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import web

from tests.doubles.telegram_limits import GLOBAL_COUNTED, GLOBAL_SCOPE, RateLimiter, RateLimits, chat_scope
from tests.doubles.telegram_methods import BotApi, decode_params
from tests.doubles.telegram_scene import Scene
from tests.doubles.telegram_updates import Delivery, UpdateHub, Webhook
from tests.doubles.telegram_world import (
    ApiError,
    Call,
    CallbackQueryRecord,
    Chat,
    ChatAction,
    Draft,
    StoredMessage,
    User,
    Violation,
    World,
)

__all__ = [
    "ApiError",
    "Call",
    "CallbackQueryRecord",
    "Chat",
    "ChatAction",
    "Delivery",
    "Draft",
    "Fault",
    "RateLimits",
    "StoredMessage",
    "TelegramDouble",
    "User",
    "Violation",
    "Webhook",
]

DEFAULT_TOKEN = "123456789:TEST-token_for-livebot"
_PATH = re.compile(r"/bot([^/]+)/([^/]+)/?")
_FILE_PATH = re.compile(r"/file/bot([^/]+)/(.+)")
_T = TypeVar("_T")


@dataclass
class Fault:
    """An injected failure for the next `times` matching calls (see `TelegramDouble.fail_next`)."""

    method: str
    chat_id: int | str | None
    status: int
    description: str
    retry_after: int | None
    times: int
    reset_connection: bool
    after_effect: bool
    raw_body: str | None
    fired: int = 0

    def matches(self, method: str, chat_id: Any) -> bool:
        """Same method (any case) and, if the fault names a chat, the same chat."""
        same_chat = self.chat_id is None or str(self.chat_id) == str(chat_id)
        return self.fired < self.times and self.method == method and same_chat


class TelegramDouble(Scene):
    """The server, the world behind it, and what tests use to drive and observe both.

    Scene set-up, user actions and observation helpers are inherited from `Scene` (see telegram_scene).

    Attributes:
        token: The only token accepted; any other gets 401.
        bot: The bot's own `User` (id from the token, `bot_username`).
        root: "http://127.0.0.1:PORT" once started.
        calls: Every request, in arrival order of completion, with its answer.
        rate_limited: The calls that got a 429 (flood control or injected).
        calls_inside_retry_after: Calls made before a `retry_after` given for their chat (or for the bot) had
            passed. A well-behaved bot leaves this empty.
        world: The underlying state, for anything the helpers below do not cover.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "livebot_test",
        bot_first_name: str = "Livebot",
        limits: RateLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        real_entity_errors: bool = False,
        webhook_retry_delay: float = 0.2,
    ) -> None:
        """Create the double (not yet listening; call `start` or use `async with`).

        Args:
            token: The bot token the bot must use.
            bot_username: The bot's username (mentions and "/cmd@name" refer to it).
            bot_first_name: The bot's display name.
            limits: Flood-control budgets; `RateLimits(enabled=False)` for none.
            clock: Monotonic seconds for flood control, draft lifetimes and `Call.at` (a fake makes them testable).
            real_entity_errors: Word entity errors exactly like Telegram ("entity beginning at UTF-16 offset ...",
                "can't parse MessageEntity: ...") instead of always "can't parse entities: ...".
            webhook_retry_delay: Seconds between attempts to deliver an update the webhook did not accept.
        """
        prefix = token.partition(":")[0]
        bot = User(int(prefix) if prefix.isdigit() else 7_000_000_001, bot_first_name, bot_username, True)
        super().__init__(World(bot), UpdateHub(self._notify, webhook_retry_delay), clock)
        self.token = token
        self.limiter = RateLimiter(limits or RateLimits(), clock)
        self.api = BotApi(self.world, self.hub, clock, real_entity_errors=real_entity_errors)
        self.root = ""
        self.calls: list[Call] = []
        self.rate_limited: list[Call] = []
        self.calls_inside_retry_after: list[Violation] = []
        self._faults: list[Fault] = []
        self._runner: web.AppRunner | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """What python-telegram-bot wants as `base_url`: the root plus "/bot" (it appends the token itself)."""
        return f"{self.root}/bot"

    async def start(self) -> str:
        """Listen on an ephemeral 127.0.0.1 port; return the root URL ("http://127.0.0.1:PORT")."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.root = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        self.hub.start()
        return self.root

    async def stop(self) -> None:
        """Answer waiting long polls, stop webhook delivery and close the server."""
        await self.hub.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> TelegramDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- faults -------------------------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        chat_id: int | str | None = None,
        status: int | None = None,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        reset_connection: bool = False,
        after_effect: bool = False,
        raw_body: str | None = None,
    ) -> Fault:
        """Make the next `times` calls of `method` (to `chat_id`, if given) fail instead of being answered.

        A fault fires on a call that passed flood control (it spends budget like a real call).

        Args:
            method: Bot API method name, any case.
            chat_id: Only calls aimed at this chat.
            status: HTTP status and error_code; default 429 with `retry_after`, else 500.
            description: Default "Too Many Requests: retry after N" for 429, else the HTTP reason phrase.
            retry_after: Seconds for `parameters.retry_after`; the wait is enforced and recorded like a real one.
            times: How many calls fail.
            reset_connection: Drop the TCP connection instead of answering.
            after_effect: Carry the call out first, then fail (a send whose answer was lost: a retry duplicates).
            raw_body: Answer this text instead of JSON (e.g. a proxy's HTML error page).
        """
        if status is None:
            status = 429 if retry_after is not None else 500
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}" if status == 429 else HTTPStatus(status).phrase
            )
        fault = Fault(
            method.lower(), chat_id, status, description, retry_after, times, reset_connection, after_effect, raw_body
        )
        self._faults.append(fault)
        return fault

    @property
    def unfired_faults(self) -> list[Fault]:
        """Injected faults that have not fired as often as asked (a test usually expects none at its end)."""
        return [fault for fault in self._faults if fault.fired < fault.times]

    def calls_to(self, method: str, chat: Chat | int | None = None) -> list[Call]:
        """The calls of one method (any case), optionally only those aimed at one chat."""
        chat_id = None if chat is None else self._chat(chat).id
        return [
            call
            for call in self.calls
            if call.method.lower() == method.lower() and (chat_id is None or call.chat_id == chat_id)
        ]

    async def wait_for(self, predicate: Callable[[], _T], timeout: float = 10.0) -> _T:
        """Wait until `predicate()` is truthy and return its value; re-checked whenever the double sees activity.

        Activity is any answered call, new update, webhook attempt or user action, so there is no polling loop.
        Raises TimeoutError (naming the last calls) if it is still falsy after `timeout` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (value := predicate()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = [(call.method, call.status, call.description) for call in self.calls[-5:]]
                raise TimeoutError(f"condition still false after {timeout} s; last calls: {recent}")
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue
        return value

    # -- internals ----------------------------------------------------------------------------------------------

    def _target_chat(self, method: str, params: dict[str, Any]) -> Chat | None:
        """The chat a call is aimed at; for flood-counted methods an unknown chat is answered before anything."""
        if "chat_id" not in params:
            return None
        try:
            return self.world.find_chat(params["chat_id"])
        except ApiError:
            if method in GLOBAL_COUNTED:
                raise
            return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """One Bot API request: path and token, method, parameters, chat, flood control, faults, then the method.

        Flood control comes before faults so that a call inside a flood wait is always caught as a violation, and a
        fault fires on a call Telegram would otherwise have accepted.
        """
        if (download := _FILE_PATH.fullmatch(request.path)) is not None:
            return self._download(download.group(1), download.group(2))
        match = _PATH.fullmatch(request.path)
        call = Call(self.clock(), match.group(2) if match else request.path, {})
        try:
            if match is None:
                raise ApiError(404, "Not Found")
            call.params = await _read_params(request)
            if match.group(1) != self.token:
                raise ApiError(401, "Unauthorized")
            method = match.group(2).lower()
            if method not in self.api.handlers:
                raise ApiError(404, "Not Found")
            call.method = self.api.handlers[method][0]
            call.params = params = decode_params(call.params)
            chat = self._target_chat(method, params)
            call.chat_id = chat.id if chat else None
            refusal = self.limiter.check(method, call.chat_id, chat.is_private if chat else False)
            if refusal is not None:
                if refusal.violation:
                    early = refusal.allowed_at - call.at
                    self.calls_inside_retry_after.append(Violation(call, refusal.scope, refusal.allowed_at, early))
                retry = refusal.retry_after
                raise ApiError(429, f"Too Many Requests: retry after {retry}", retry)
            fault = next((f for f in self._faults if f.matches(method, params.get("chat_id"))), None)
            if fault is not None:
                fault.fired += 1
                if fault.after_effect:
                    await self.api.call(method, params)
                return self._fault(request, call, fault)
            call.result = await self.api.call(method, params)
            return self._answer(request, call, {"ok": True, "result": call.result})
        except ApiError as error:
            call.status, call.description, call.retry_after = error.status, error.description, error.retry_after
            return self._answer(request, call, error.payload())

    def _download(self, token: str, file_path: str) -> web.Response:
        """The file URL: the token in the path, as for methods; 404 for anything else."""
        data = self.api.files.download(file_path) if token == self.token else None
        self._notify()
        if data is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    def _fault(self, request: web.Request, call: Call, fault: Fault) -> web.StreamResponse:
        if fault.retry_after is not None:
            scope = chat_scope(call.chat_id) if call.chat_id is not None else GLOBAL_SCOPE
            self.limiter.block(scope, fault.retry_after)
        if fault.reset_connection:
            call.status, call.description = 0, "connection reset by TelegramDouble"
            self._record(call)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the client: the connection is gone
        call.status, call.description, call.retry_after = fault.status, fault.description, fault.retry_after
        if fault.raw_body is not None:
            self._record(call)
            return web.Response(status=fault.status, text=fault.raw_body, content_type="text/html")
        return self._answer(request, call, ApiError(fault.status, fault.description, fault.retry_after).payload())

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        if call.status == 429:
            self.rate_limited.append(call)
        self._notify()

    def _answer(self, request: web.Request, call: Call, body: dict[str, Any]) -> web.Response:
        call.client_gone = request.transport is None or request.transport.is_closing()
        self._record(call)
        text = json.dumps(body, ensure_ascii=False)
        return web.Response(status=call.status, text=text, content_type="application/json")


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Parameters from the query string and a JSON, form-urlencoded or multipart body, as the real server takes."""
    params: dict[str, Any] = dict(request.query)
    if not request.body_exists:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON encoded request") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON object expected")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                data = value.file.read()
                params[name] = {"file_name": value.filename, "size": len(data), "data": data}
            else:
                params[name] = value
    return params
