"""The bot's HTTP intakes (Telegram's webhook, Slack's HTTP mode), guarded before any body is read.

Both listen on the open internet, so every request is hostile until proven otherwise:

- authentication first, from the headers alone (Telegram's secret token; Slack's timestamp, which must be a
  number, else 401), so an unauthenticated request is refused without reading its body;
- the body is size-capped before it is read (`MAX_BODY_BYTES`, from Content-Length; a body without one is
  refused): updates and events are a few kB, so a 90 MiB POST costs nothing. A refused request's connection is
  closed rather than drained;
- a body that carries the right secret (or a valid Slack signature) but does not parse gets a 400 and a log line,
  never a 500.

Telegram's side replaces python-telegram-bot's own webhook server (tornado), which reads the whole body (up to
100 MB) before it checks the secret and answers 500 to a malformed one. It is python-telegram-bot's documented
"custom webhook" setup: setWebhook with the secret, and each update put on the Application's update queue.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.settings import SettingsError

if TYPE_CHECKING:
    from telegram import Bot

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
"""The largest request body either intake reads. Telegram updates and Slack events are a few kB."""
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(app: web.Application, host: str, port: int, *, names: str) -> web.AppRunner:
    """Serve `app` on host:port until the runner is cleaned up.

    Raises:
        SettingsError: The address cannot be listened on; the line names the settings `names` ("X_LISTEN / X_PORT").
    """
    runner = web.AppRunner(app, shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise SettingsError(f"cannot listen on {host}:{port} ({names}): {exc.strerror}") from None
    return runner


def _refuse(status: int, reason: str) -> web.Response:
    """A short error answer that closes the connection, so an unread body is not drained."""
    response = web.Response(status=status, text=reason)
    response.force_close()
    return response


def _too_large(request: web.Request) -> web.Response | None:
    """413 for a body over MAX_BODY_BYTES, 411 for one without a length; None when its size is fine."""
    length = request.content_length
    if length is None and request.body_exists:
        return _refuse(411, "a Content-Length is required")
    if length is not None and length > MAX_BODY_BYTES:
        return _refuse(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    return None


def telegram_webhook(path: str, secret: str, bot: Bot, updates: asyncio.Queue[Any]) -> web.Application:
    """The aiohttp app that takes Telegram's webhook POSTs at `path` and puts each update on `updates`.

    Args:
        path: Where Telegram posts (the path of TELEGRAM_WEBHOOK_URL).
        secret: TELEGRAM_WEBHOOK_SECRET: Telegram sends it in a header with every update.
        bot: For decoding updates (python-telegram-bot objects are bound to their bot).
        updates: The Application's update queue.
    """
    from telegram import Update  # here, not at the top: every channel imports this module, one platform uses this

    expected = secret.encode()

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(TELEGRAM_SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return _refuse(403, "wrong or missing secret token")
        if (refused := _too_large(request)) is not None:
            return refused
        body = await request.read()
        try:
            update = Update.de_json(json.loads(body), bot)
        except Exception as exc:  # any malformed update: the sender (it has the secret) hears 400
            log.warning("telegram webhook: an update with the right secret could not be read (%s)", type(exc).__name__)
            return _refuse(400, "the update could not be read")
        if update is None:
            return _refuse(400, "the update could not be read")
        await updates.put(update)
        return web.Response(status=200)

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/" + path.lstrip("/"), receive)
    return app


def slack_guard(signing_secret: str) -> Middleware:
    """An aiohttp middleware for Bolt's app: what Bolt would answer with a 500 is refused here with a 4xx.

    Bolt parses the body before it checks the signature, and a non-numeric timestamp or a malformed body makes
    it raise: here the timestamp is checked first (401), then the size (413), then the signature (401), and only a
    signed body that parses the way Bolt parses it reaches Bolt.
    """
    from slack_bolt.request.internals import parse_body  # here, not at the top: as telegram_webhook's import
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(signing_secret)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not timestamp.isascii() or not timestamp.isdigit():
            return _refuse(401, "invalid request timestamp")
        if (refused := _too_large(request)) is not None:
            return refused
        body = await request.read()
        signature = request.headers.get("X-Slack-Signature", "")
        if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return _refuse(401, "invalid request signature")
        try:
            parsed: object = parse_body(body.decode(), request.headers.get("Content-Type"))
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            parsed = exc
        if not isinstance(parsed, dict):
            log.warning("slack: a signed request could not be read (%s)", type(parsed).__name__)
            return _refuse(400, "the request could not be read")
        return await handler(request)

    return guard
