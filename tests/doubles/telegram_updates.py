"""Inbound updates for the Telegram Bot API double: the queue, getUpdates long polling and webhook delivery.

Both ways in are modelled on the real server's rules because both have bitten bots: an update is only forgotten
once a later `offset` confirms it; a long poll returns as soon as something arrives and otherwise after `timeout`;
a second poller ends the first with 409; getUpdates is refused while a webhook is set; and a webhook is retried
until the bot answers 2xx, carrying the secret in `X-Telegram-Bot-Api-Secret-Token`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.doubles.telegram_world import ApiError, bad_request

ALL_UPDATE_TYPES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
    "stopped_message_generation",
)
STOPPED_GENERATION = "stopped_message_generation"
"""Bot API 10.3: the user pressed stop on a draft sent with `can_stop` (a MessageGenerationStopped)."""
DEFAULT_ALLOWED = frozenset(ALL_UPDATE_TYPES) - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
    STOPPED_GENERATION,
}
"""What Telegram sends when `allowed_updates` was never given (or given as an empty list). A bot asks for
`stopped_message_generation` by name (the issue's reading of Bot API 10.3; a bot that lists its types does anyway)."""

WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def update_kind(update: dict[str, Any]) -> str:
    """The update's type: its one key besides `update_id`."""
    return next(key for key in update if key != "update_id")


@dataclass
class Webhook:
    """The webhook as set by setWebhook, with the last delivery error getWebhookInfo reports."""

    url: str
    secret_token: str | None
    max_connections: int
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(frozen=True)
class Delivery:
    """One attempt to POST an update to the webhook: `status` is the HTTP answer, or None with an `error`."""

    update_id: int
    url: str
    status: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        """Telegram treats any 2xx as delivered."""
        return self.status is not None and 200 <= self.status < 300


class UpdateHub:
    """The bot's update queue and the two ways (polling, webhook) it is emptied."""

    def __init__(self, on_change: Callable[[], None], retry_delay: float) -> None:
        self.log: list[dict[str, Any]] = []
        self.deliveries: list[Delivery] = []
        self.allowed_updates: list[str] | None = None
        self.webhook: Webhook | None = None
        self.waiting_polls = 0
        self._pending: deque[dict[str, Any]] = deque()
        self._ids = itertools.count(700_000_001)
        self._arrived = asyncio.Event()
        self._on_change = on_change
        self._retry_delay = retry_delay
        self._generation = 0
        self._closing = False
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Updates created but not yet confirmed (polling) or delivered (webhook)."""
        return list(self._pending)

    def push(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue a new update of type `kind` and wake whoever waits for one."""
        update = {"update_id": next(self._ids), kind: payload}
        self.log.append(update)
        self._pending.append(update)
        self._wake()
        self._on_change()
        return update

    def start(self) -> None:
        """Start the webhook sender (idle until a webhook is set)."""
        self._session = aiohttp.ClientSession()
        self._task = asyncio.create_task(self._deliver_forever(), name="TelegramDouble webhook")

    async def stop(self) -> None:
        """End waiting polls (they answer an empty list) and the webhook sender."""
        self._closing = True
        self._wake()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    def _wake(self) -> None:
        self._arrived.set()
        self._arrived = asyncio.Event()

    def _allowed(self) -> frozenset[str]:
        return frozenset(self.allowed_updates) if self.allowed_updates else DEFAULT_ALLOWED

    def _take(self, limit: int) -> list[dict[str, Any]]:
        """The first `limit` pending updates of allowed types; others are dropped, as Telegram never makes them."""
        allowed, batch = self._allowed(), []
        for update in list(self._pending):
            if update_kind(update) not in allowed:
                self._pending.remove(update)
            elif len(batch) < limit:
                batch.append(update)
        return batch

    async def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """getUpdates: confirm below `offset`, then answer at once or wait up to `timeout` seconds for updates."""
        if self.webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = params.get("offset")
        limit = min(100, max(1, int(params.get("limit") or 100)))
        timeout = max(0.0, float(params.get("timeout") or 0))
        if "allowed_updates" in params:
            self.allowed_updates = list(params["allowed_updates"] or []) or None
        if offset is not None and offset < 0:
            while len(self._pending) > -offset:
                self._pending.popleft()
        elif offset is not None:
            while self._pending and self._pending[0]["update_id"] < offset:
                self._pending.popleft()
        self._generation += 1
        generation = self._generation
        self._wake()  # an older poll still waiting learns it was superseded
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._generation:
                raise ApiError(409, POLL_CONFLICT)
            batch = self._take(limit)
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._closing or self.webhook is not None:
                return batch
            event = self._arrived
            self.waiting_polls += 1
            self._on_change()  # lets a test see that the poll is parked before it injects an update
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), remaining)
            finally:
                self.waiting_polls -= 1

    def set_webhook(self, params: dict[str, Any]) -> bool:
        """setWebhook; an empty `url` removes the webhook, as on the real server."""
        url = params.get("url") or ""
        if not url:
            return self.delete_webhook(params)
        if not url.startswith(("https://", "http://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._pending.clear()
        if "allowed_updates" in params:
            self.allowed_updates = list(params["allowed_updates"] or []) or None
        max_connections = int(params.get("max_connections") or 40)
        self.webhook = Webhook(url, secret, max_connections, params.get("ip_address"))
        self._wake()
        return True

    def delete_webhook(self, params: dict[str, Any]) -> bool:
        """deleteWebhook (also used by setWebhook with an empty URL)."""
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def webhook_info(self) -> dict[str, Any]:
        """getWebhookInfo."""
        hook = self.webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.ip_address:
                info["ip_address"] = hook.ip_address
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        if self.allowed_updates is not None:
            info["allowed_updates"] = self.allowed_updates
        return info

    async def _deliver_forever(self) -> None:
        """POST pending updates to the webhook one at a time, in order, retrying each until it gets a 2xx."""
        while not self._closing:
            hook, event = self.webhook, self._arrived
            batch = self._take(1) if hook is not None else []
            if hook is None or not batch:
                await event.wait()
                continue
            update = batch[0]
            status, error = await self._post(hook, update)
            self.deliveries.append(Delivery(update["update_id"], hook.url, status, error))
            if status is not None and 200 <= status < 300:
                if self._pending and self._pending[0] is update:
                    self._pending.popleft()
            else:
                hook.last_error_date = int(time.time())
                hook.last_error_message = error or f"Wrong response from the webhook: {status}"
            self._on_change()
            if status is None or not 200 <= status < 300:
                await asyncio.sleep(self._retry_delay)

    async def _post(self, hook: Webhook, update: dict[str, Any]) -> tuple[int | None, str | None]:
        assert self._session is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": hook.secret_token} if hook.secret_token else {}
        try:
            async with self._session.post(
                hook.url, json=update, headers=headers, timeout=aiohttp.ClientTimeout(total=10)
            ) as response:
                await response.read()
                return response.status, None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, f"Connection failed: {exc.__class__.__name__}: {exc}"
