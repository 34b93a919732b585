"""The Telegram platform for `python -m bot telegram`: a python-telegram-bot Application behind the channel core.

Updates arrive by long polling, or by webhook when TELEGRAM_WEBHOOK_URL is set (`bot.webhooks` checks
TELEGRAM_WEBHOOK_SECRET on every request and answers 403 without it). In replica mode (REDIS_URL) only the
replica holding the poller lease polls (`bot.poller`), and an update delivered again is not answered twice. The
update handler only decides and queues (`bot.channel`): the reply runs in its conversation's queue, so a slow
reply never holds up another chat.
The items of an album (one message each, sharing a media_group_id) are held until the album is whole and answered
as one message (`channels.telegram.albums`); in replica mode they are collected in Redis, since they land on
different replicas (`bot.shared_albums`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError
from telegram import BotCommand, Message, Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler
from telegram.request import HTTPXRequest

from agent.thread import AgentThread
from bot.channel import ChannelBot, serve_channel
from bot.inflight import InFlight
from bot.metrics import count_httpx_call
from bot.poller import Lease, poll_while_leased
from bot.runtime import Runtime
from bot.serving import run_until_signal
from bot.settings import Settings, SettingsError
from bot.shared_albums import AlbumItem, SharedAlbums
from bot.webhooks import serve, telegram_webhook
from channels.capabilities import LiveMode, Profile
from channels.commands import COMMANDS
from channels.inbound import Answer, Ignore
from channels.telegram.albums import QUIET, Albums, merge
from channels.telegram.drafts import DraftOwners
from channels.telegram.files import Downloader
from channels.telegram.inbound import TelegramIdentity, addressed, approval_request, read_update, stop_request
from channels.telegram.stoppable_drafts import STOPPED_GENERATION, draft_stopped
from channels.telegram.surface import BOT_BUDGET, TelegramSurface, TelegramTarget

log = logging.getLogger(__name__)

# python-telegram-bot's documented opt-in to its next major version's durations (timedelta, not int): without it
# every 429 prints a deprecation warning. We read either type.
os.environ.setdefault("PTB_TIMEDELTA", "1")

MENU = [BotCommand(command.name, command.description) for command in COMMANDS]
ALLOWED_UPDATES = ["message", "callback_query", STOPPED_GENERATION]
ADMINS_TTL = 60.0
"""How long a group's administrators (who may stop anyone's reply) are remembered: a Stop press costs no call."""


class TelegramBot(ChannelBot[TelegramTarget]):
    """Turns updates into replies. One per running bot.

    Args:
        application: The initialised python-telegram-bot Application (its `bot` makes the calls).
        runtime: Answers messages with the agent.
        settings: For the streaming mode and interval and the per-user limit.
        me: Who the bot is and whom it serves.
    """

    platform = "telegram"
    budget = BOT_BUDGET
    target_type = TelegramTarget

    def __init__(self, application: Application, runtime: Runtime, settings: Settings, me: TelegramIdentity) -> None:
        super().__init__(runtime, settings)
        self.application = application
        self.me = me
        self._admins: dict[int, tuple[float, frozenset[str]]] = {}  # chat -> (until, administrators' ids)
        self.files = Downloader(application.bot, self.limiter)
        self.albums = Albums(lambda incoming, target: self.dispatch(Answer(incoming, target), "album"))
        self.shared_albums: SharedAlbums | None = None
        """Replica mode: the albums collected in Redis (`albums` then only serves while Redis is away)."""
        self.drafts = DraftOwners()
        """Which reply each draft belongs to while it streams (for updates about a draft, e.g. a stop)."""

    @property
    def shared_key(self) -> str:
        return str(self.me.id)

    def fetcher(self, source: dict[str, Any]) -> Callable[[int], Awaitable[bytes]]:
        return self.files.fetcher(source)

    def share(self, client: Redis, inflight: InFlight) -> None:
        """`ChannelBot.share`, and albums collected in Redis: their items land on different replicas."""
        super().share(client, inflight)
        prefix = f"livebot:telegram:{self.shared_key}"
        self.shared_albums = SharedAlbums(client, prefix, self.fetcher, self._answer_album, quiet=QUIET)

    async def on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """python-telegram-bot's handler: decide, queue, return at once (an update delivered again: nothing)."""
        if not await self.dedupe.first(str(update.update_id)):
            return
        if (press := stop_request(update)) is not None:
            assert update.callback_query is not None
            outcome = await self.stop_pressed(press)
            with contextlib.suppress(TelegramError):  # the button works even if the acknowledgement fails
                await update.callback_query.answer(outcome.value)
            return
        if (approval := approval_request(update)) is not None:
            assert update.callback_query is not None
            decided = await self.approval_pressed(approval)
            with contextlib.suppress(TelegramError):
                await update.callback_query.answer(decided.value)
            return
        if (draft := draft_stopped(update)) is not None:  # the stop button of a draft (Bot API 10.3)
            owner = self.drafts.owner(draft.chat_id, draft.draft_id)
            key = owner.conversation if owner is not None else None
            if key is None and self.redis is not None:  # another replica's draft (drafts are private chats')
                key = f"telegram:{draft.chat_id}"
            if key is None or not await self.conversations.stop_anywhere(key):
                log.debug("stop pressed on draft %s in %s, which no reply streams", draft.draft_id, draft.chat_id)
            return
        message = update.message
        album = message.media_group_id if message is not None else None
        if (
            album is not None
            and message is not None
            and self.shared_albums is not None
            and await self._share_album_item(self.shared_albums, update, message, album)
        ):
            return  # collected in Redis (replica mode)
        following = album is not None and message is not None and self.albums.collecting(message.chat_id, album)
        verdict = read_update(update, self.me, self.files, in_album=following)
        if album is not None and isinstance(verdict, Answer):
            self.albums.add(album, verdict.incoming, verdict.target)  # the album is answered once it is whole
        else:
            self.dispatch(verdict, f"update {update.update_id}")

    async def _share_album_item(self, albums: SharedAlbums, update: Update, message: Message, album: str) -> bool:
        """Replica mode: an album's item goes to Redis, where its album is collected whichever replica the other
        items land on. Whether the album is for the bot is known only once it is whole (in a group, usually only
        its first item mentions the bot), so every item is read as part of it; only an item addressed by itself
        may be refused (an item that is not never gets a reply of its own, as with one process). Returns False
        when Redis cannot take the item: the caller collects the album here, as one process does."""
        verdict = read_update(update, self.me, self.files, in_album=True)
        mine = addressed(message, self.me)
        if not isinstance(verdict, Answer):
            self.dispatch(verdict if mine else Ignore("an album's item not addressed to the bot"), "album item")
            return True
        target = verdict.target
        item = AlbumItem(verdict.incoming, {**target.address(), "reply_to": target.reply_to}, mine)
        try:
            await albums.add(f"{message.chat_id}:{album}", item)
        except RedisError as exc:
            log.warning("telegram: cannot collect album %s in Redis (%s); collected here", album, type(exc).__name__)
            return False
        return True

    def _answer_album(self, items: list[AlbumItem]) -> None:
        """A whole album collected in Redis: one message, replying to its first item, when any of its items was
        for the bot (in a group, the first item's mention makes the rest count); else ignored, as one process
        ignores it."""
        if not any(item.addressed for item in items):
            log.debug("an album not addressed to the bot ignored")
            return
        first = items[0].address
        target = replace(TelegramTarget.from_address(first), reply_to=first.get("reply_to"))
        self.dispatch(Answer(merge([item.incoming for item in items]), target), "album")

    async def is_admin(self, target: TelegramTarget, user: str) -> bool:
        """An administrator of the group (getChatAdministrators, cached for ADMINS_TTL); nobody in a private chat."""
        if target.kind == "private":
            return False
        now = time.monotonic()
        cached = self._admins.get(target.chat_id)
        if cached is None or cached[0] <= now:
            try:
                members = await self.application.bot.get_chat_administrators(target.chat_id)
            except TelegramError as exc:
                log.info("telegram: cannot list the administrators of %s (%s)", target.chat_id, exc)
                return False
            cached = self._admins[target.chat_id] = (now + ADMINS_TTL, frozenset(str(m.user.id) for m in members))
            if len(self._admins) > 10_000:
                self._admins = {chat: entry for chat, entry in self._admins.items() if entry[0] > now}
        return user in cached[1]

    def live_mode(self, target: TelegramTarget) -> LiveMode | None:
        """STREAM_MODE; with it on auto, a private chat streams by edits where TELEGRAM_PRIVATE_STREAM=edit."""
        mode = super().live_mode(target)
        if mode is None and target.kind == "private" and self._settings.telegram_private_stream == "edit":
            return LiveMode.EDIT
        return mode

    def open_surface(
        self, target: TelegramTarget, profile: Profile, *, on_live_refused: Callable[[], None]
    ) -> TelegramSurface:
        return TelegramSurface(
            self.application.bot, self.limiter, target, profile, on_live_refused=on_live_refused, drafts=self.drafts
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, settings: Settings, runtime: Runtime) -> AsyncIterator[TelegramBot]:
        """Initialise the Application (getMe) and build the bot; shut the Application down on exit.

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
        me = TelegramIdentity(
            id=application.bot.id,
            username=application.bot.username,
            allowed=frozenset(user.lower() for user in settings.telegram_allowed_users),
            max_input_chars=settings.max_input_chars,
        )
        bot = cls(application, runtime, settings, me)
        application.add_handler(TypeHandler(Update, bot.on_update))
        try:
            yield bot
        finally:
            with contextlib.suppress(TelegramError):
                await application.shutdown()

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[None]:
        """Set the command menu and poll (or take the webhook) for the duration of the block.

        Raises:
            SettingsError: The webhook's address cannot be listened on (one line).
        """
        application, settings = self.application, self._settings
        runner: web.AppRunner | None = None
        leased: asyncio.Task[None] | None = None
        try:
            await application.bot.set_my_commands(MENU)
            if self.shared_albums is not None:
                self.shared_albums.start()
            await application.start()
            assert application.updater is not None
            if settings.telegram_webhook_url:
                runner = await self._listen_webhook()
                how = "on webhook"
            elif self.redis is not None:  # replicas: one polls, the others stand by
                lease = Lease(self.redis, f"livebot:telegram:{self.shared_key}:poller")
                leased = asyncio.create_task(poll_while_leased(lease, self._start_polling, self._stop_polling))
                how = "polling when it holds the poller lease (replica mode)"
            else:
                await self._start_polling()
                how = "polling"
            log.info("telegram: @%s is %s", self.me.username, how)
            yield
        finally:
            if runner is not None:
                await runner.cleanup()
            if leased is not None:
                leased.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await leased
            await self._stop_polling()
            if application.running:
                await application.stop()
            self.albums.flush()  # no more items can come: an album still held is answered
            if self.shared_albums is not None:  # the albums still collected stay in Redis, for the other replicas
                await self.shared_albums.close()

    async def _start_polling(self) -> None:
        assert self.application.updater is not None
        await self.application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
        log.info("telegram: polling")

    async def _stop_polling(self) -> None:
        if self.application.updater is not None and self.application.updater.running:
            await self.application.updater.stop()

    async def _listen_webhook(self) -> web.AppRunner:
        """Serve `bot.webhooks.telegram_webhook` at TELEGRAM_WEBHOOK_LISTEN:PORT, then point Telegram at it."""
        settings = self._settings
        assert settings.telegram_webhook_url is not None and settings.telegram_webhook_secret is not None
        secret = settings.telegram_webhook_secret.get_secret_value()
        path = urlsplit(settings.telegram_webhook_url).path
        app = telegram_webhook(path, secret, self.application.bot, self.application.update_queue)
        runner = await serve(
            app,
            settings.telegram_webhook_listen,
            settings.telegram_webhook_port,
            names="TELEGRAM_WEBHOOK_LISTEN / TELEGRAM_WEBHOOK_PORT",
        )
        await self.application.bot.set_webhook(
            settings.telegram_webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
        )
        return runner


def check_settings(settings: Settings) -> None:
    """Stop start-up with one line when a setting Telegram needs is missing: the token, and in webhook mode the
    secret (without it anyone who finds the URL could post updates as any user).

    Raises:
        SettingsError: Naming the missing setting.
    """
    settings.require("TELEGRAM_BOT_TOKEN")
    if settings.telegram_webhook_url and settings.telegram_webhook_secret is None:
        raise SettingsError(
            "TELEGRAM_WEBHOOK_SECRET is not set; webhook mode (TELEGRAM_WEBHOOK_URL) needs it, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )


def build_application(settings: Settings) -> Application:
    """The python-telegram-bot Application, pointed at TELEGRAM_API_BASE_URL."""
    check_settings(settings)
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
        .request(_counted_request(BOT_BUDGET.limit + 8))
        .get_updates_request(_counted_request(1))
        .build()
    )


def _counted_request(pool: int) -> HTTPXRequest:
    """python-telegram-bot's default request (as the builder makes it), with each call counted for the metrics."""
    return HTTPXRequest(connection_pool_size=pool, httpx_kwargs={"event_hooks": {"response": [count_httpx_call]}})


def serve_telegram(settings: Settings, agent: AgentThread) -> contextlib.AbstractAsyncContextManager[TelegramBot]:
    """Run the bot (polling or webhook) for the duration of the block; replies in flight finish on exit."""
    return serve_channel(settings, agent, TelegramBot)


async def run_telegram(settings: Settings) -> int:
    """Run until SIGINT or SIGTERM. Returns the exit status."""
    check_settings(settings)
    return await run_until_signal(settings, serve_telegram)
