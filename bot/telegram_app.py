"""Wiring for `python -m bot telegram`: a python-telegram-bot Application that streams every answer.

Updates arrive by long polling, or by webhook when TELEGRAM_WEBHOOK_URL is set (python-telegram-bot checks
TELEGRAM_WEBHOOK_SECRET on every request and answers 403 without it). The update handler only decides and
queues: the reply runs in its conversation's queue, so a slow reply never holds up another chat.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from telegram import BotCommand, Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from agent.thread import AgentThread
from bot.conversations import Conversations
from bot.runtime import Runtime
from bot.serving import run_until_signal, with_outbox
from bot.settings import Settings, SettingsError
from channels.capabilities import LiveMode, resolve
from channels.errors import ChannelError
from channels.ratelimit import RateLimiter
from channels.telegram.inbound import (
    Answer,
    BotIdentity,
    Ignore,
    Refuse,
    conversation_key,
    read_update,
    stop_request,
)
from channels.telegram.stoppable_drafts import STOPPED_GENERATION, draft_stopped
from channels.telegram.surface import BOT_BUDGET, LiveDrafts, Target, TelegramSurface

log = logging.getLogger(__name__)

# python-telegram-bot's documented opt-in to its next major version's durations (timedelta, not int): without it
# every 429 prints a deprecation warning. We read either type.
os.environ.setdefault("PTB_TIMEDELTA", "1")

COMMANDS = [
    BotCommand("start", "What this bot does"),
    BotCommand("help", "What this bot does"),
    BotCommand("reset", "Forget this conversation"),
    BotCommand("stop", "Stop the answer being written"),
]
ALLOWED_UPDATES = ["message", "callback_query", STOPPED_GENERATION]


class TelegramBot:
    """Turns updates into replies. One per running bot.

    Args:
        application: The initialised python-telegram-bot Application (its `bot` makes the calls).
        runtime: Answers messages with the agent.
        settings: For the streaming mode and interval and the per-user limit.
        me: Who the bot is and whom it serves.
    """

    def __init__(self, application: Application, runtime: Runtime, settings: Settings, me: BotIdentity) -> None:
        self.application = application
        self.me = me
        self.conversations = Conversations(runtime, runs_per_minute=settings.user_runs_per_minute)
        self.limiter = RateLimiter(BOT_BUDGET)
        self._settings = settings
        self._no_drafts: set[int] = set()
        self._live_drafts = LiveDrafts()

    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """python-telegram-bot's handler: decide, queue, return at once."""
        if (press := stop_request(update)) is not None:
            assert update.callback_query is not None
            stopped = self.conversations.stop(press.conversation)
            with contextlib.suppress(TelegramError):  # the button works even if the acknowledgement fails
                await update.callback_query.answer("Stopping…" if stopped else "Nothing to stop.")
            if not stopped:  # a button no reply will take away (the bot was killed mid-reply): it goes now
                with contextlib.suppress(ChannelError):
                    await self.surface(press.target).drop_buttons(press.message_id)
            return
        if (draft := draft_stopped(update)) is not None:  # the stop button of a draft (Bot API 10.3)
            owner = self._live_drafts.owner(draft.chat_id, draft.draft_id)
            if owner is None or not self.conversations.stop(conversation_key(owner)):
                log.debug("stop pressed on draft %s in %s, which no reply streams", draft.draft_id, draft.chat_id)
            return
        match read_update(update, self.me):
            case Answer(incoming=incoming, target=target):
                self.conversations.submit(incoming, lambda: self.surface(target))
            case Refuse(target=target, text=text):
                self.conversations.notify(lambda: self.surface(target), text)
            case Ignore(reason=reason):
                log.debug("update %s ignored: %s", update.update_id, reason)

    async def deliver(self, address: dict[str, Any], text: str) -> None:
        """Send an outbox entry: the same rendering, budget and error rules as a reply's final message."""
        target = Target(address["chat_id"], address["kind"], thread_id=address.get("thread_id"))
        await self.surface(target).send(text, final=True)

    def surface(self, target: Target) -> TelegramSurface:
        """A reply surface for `target`, streaming the way the registry says (edits where drafts were refused)."""
        mode = self._settings.live_mode
        if mode is None and target.kind == "private" and self._settings.telegram_private_stream == "edit":
            mode = LiveMode.EDIT
        if target.chat_id in self._no_drafts and mode in (None, LiveMode.DRAFT):
            mode = LiveMode.EDIT
        profile = resolve("telegram", target.kind, mode=mode, interval=self._settings.stream_edit_interval)
        return TelegramSurface(
            self.application.bot,
            self.limiter,
            target,
            profile,
            on_drafts_refused=self._no_drafts.add,
            live_drafts=self._live_drafts,
        )


def build_application(settings: Settings) -> Application:
    """The python-telegram-bot Application, pointed at TELEGRAM_API_BASE_URL."""
    settings.require("TELEGRAM_BOT_TOKEN")
    assert settings.telegram_bot_token is not None
    root = settings.telegram_api_base_url.rstrip("/")
    return (
        Application.builder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        # httpcore polls every pooled connection on each request, so an idle pool of hundreds (PTB's default is
        # 256) costs the event loop more than the calls do. The shared limiter keeps at most BOT_BUDGET.limit
        # calls in flight, so a few more connections than that never make a call wait for one.
        .connection_pool_size(BOT_BUDGET.limit + 8)
        .build()
    )


def serve_telegram(settings: Settings, agent: AgentThread) -> contextlib.AbstractAsyncContextManager[TelegramBot]:
    """Run the bot (see `_serve`) with its outbox and the courier that delivers late final messages."""
    return with_outbox(settings, agent, "telegram", _serve)


@contextlib.asynccontextmanager
async def _serve(settings: Settings, runtime: Runtime) -> AsyncIterator[TelegramBot]:
    """Run the bot (polling or webhook) for the duration of the block; replies in flight finish on exit.

    Raises:
        SettingsError: The token was refused or the Bot API server could not be reached (one line).
    """
    application = build_application(settings)
    try:
        await application.initialize()
    except InvalidToken:
        raise SettingsError("TELEGRAM_BOT_TOKEN was refused by the Bot API server") from None
    except NetworkError as exc:
        raise SettingsError(f"cannot reach the Bot API at TELEGRAM_API_BASE_URL ({exc.message})") from None
    me = BotIdentity(
        id=application.bot.id,
        username=application.bot.username,
        allowed=frozenset(user.lower() for user in settings.telegram_allowed_users),
        max_input_chars=settings.max_input_chars,
    )
    bot = TelegramBot(application, runtime, settings, me)
    application.add_handler(TypeHandler(Update, bot.on_update))
    try:
        await application.bot.set_my_commands(COMMANDS)
        await application.start()
        assert application.updater is not None
        if settings.telegram_webhook_url:
            await application.updater.start_webhook(
                listen=settings.telegram_webhook_listen,
                port=settings.telegram_webhook_port,
                url_path=urlsplit(settings.telegram_webhook_url).path.lstrip("/"),
                webhook_url=settings.telegram_webhook_url,
                secret_token=(
                    settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else None
                ),
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            await application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        log.info("telegram: @%s is %s", me.username, "on webhook" if settings.telegram_webhook_url else "polling")
        yield bot
    finally:
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await bot.conversations.shutdown(settings.shutdown_grace)
        with contextlib.suppress(TelegramError):
            await application.shutdown()


async def run_telegram(settings: Settings) -> int:
    """Run until SIGINT or SIGTERM. Returns the exit status."""
    settings.require("TELEGRAM_BOT_TOKEN")
    return await run_until_signal(settings, serve_telegram)
