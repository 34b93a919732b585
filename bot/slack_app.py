"""Wiring for `python -m bot slack`: a slack-bolt AsyncApp that streams every answer.

Events arrive over Socket Mode when SLACK_APP_TOKEN is set, otherwise as HTTP requests to /slack/events on
SLACK_PORT, where Bolt checks SLACK_SIGNING_SECRET on every request (a forged or stale one gets 401 and runs
nothing). The listener only decides and queues, so Bolt acknowledges within milliseconds (Slack wants 3 s); it
runs before the acknowledgement (`process_before_response`), so an event is never acknowledged and then lost. The
reply runs in its conversation's queue. Slack redelivers an event it thinks was missed with the same event_id;
those are recognised and not answered twice. A press of the Stop button (an interaction, posted to the same URL
or sent through the socket) stops the reply of the conversation the button's message is in.

Slack's agent messaging experience (`channels.slack.agent_view`): opening the Messages tab shows the suggested
prompts (once per person while the bot runs), the first question of a DM thread gives the thread its title, and a
press of the feedback buttons under an answer is recorded and thanked for with an ephemeral message. These are
cosmetic calls: they run beside the replies (`Conversations.aside`), and a failure is logged, never shown.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from agent.thread import AgentThread
from bot.channel import ApprovalOutcome, ChannelBot, StopOutcome, serve_channel
from bot.feedback import FeedbackLog, Rating
from bot.metrics import slack_trace
from bot.runtime import Runtime
from bot.serving import run_until_signal
from bot.settings import Settings, SettingsError
from bot.webhooks import serve, slack_guard
from channels.capabilities import Profile
from channels.errors import ChannelError
from channels.inbound import Answer
from channels.slack.agent_view import FEEDBACK_ACTION, GREETING, feedback_press, greeting, prompts_payload, thread_title
from channels.slack.files import SlackDownloader
from channels.slack.inbound import SeenEvents, SlackIdentity, approval_request, read_event, stop_request
from channels.slack.surface import (
    APPROVE_ACTION,
    BOT_BUDGET,
    DENY_ACTION,
    STOP_ACTION,
    SlackBudgets,
    SlackSurface,
    SlackTarget,
    call,
    new_limiter,
)

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
THANKS = "Thanks for the feedback!"
"""The ephemeral acknowledgement of a feedback press (only the person who pressed sees it)."""


class SlackBot(ChannelBot[SlackTarget]):
    """Turns events into replies. One per running bot.

    Args:
        client: The Web API client every reply uses.
        runtime: Answers messages with the agent.
        settings: For the streaming mode and interval.
        me: Who the bot is and whom it serves.
    """

    platform = "slack"
    budget = BOT_BUDGET
    target_type = SlackTarget
    command_prefix = ""  # Slack keeps "/" for its own slash commands: the plain words are the commands

    def __init__(self, client: AsyncWebClient, runtime: Runtime, settings: Settings, me: SlackIdentity) -> None:
        super().__init__(runtime, settings)
        self.limiter = new_limiter()  # Slack limits each method per workspace, never the bot as a whole
        self.budgets = SlackBudgets(
            tier2=settings.slack_tier2_per_minute,
            tier3=settings.slack_tier3_per_minute,
            tier4=settings.slack_tier4_per_minute,
            posts_per_channel=settings.slack_posts_per_minute_per_channel,
            posts_per_workspace=settings.slack_posts_per_minute_per_workspace,
        )
        self.client = client
        self.me = me
        assert client.session is not None and client.token is not None  # `connect` gives it both
        self.files = SlackDownloader(client.session, client.token, settings.slack_api_url)
        """Downloads the files people send, with the bot token (files:read)."""
        self.url: str | None = None
        """HTTP mode: the URL Slack posts events to, as bound (for logs and tests)."""
        self.feedback = FeedbackLog()
        self._greeted = SeenEvents()  # users shown the suggested prompts (only the ids: first_time works for any)
        self._socket_mode = check_settings(settings)
        self._app = build_app(self, settings, socket_mode=self._socket_mode)

    @property
    def shared_key(self) -> str:
        return self.me.user_id

    def fetcher(self, source: dict[str, Any]) -> Callable[[int], Awaitable[bytes]]:
        return self.files.fetcher(source)

    async def on_event(self, body: dict[str, Any]) -> None:
        """Bolt's listener for app_mention and message events: decide, queue, return at once (an event delivered
        again, to this replica or another: nothing)."""
        event_id = str(body.get("event_id") or "")
        if event_id and not await self.dedupe.first(event_id):
            return
        event = body.get("event") or {}
        verdict = read_event(event, self.me, team_id=body.get("team_id"), files=self.files)
        opens_thread = verdict.target.thread_ts == event.get("ts") if isinstance(verdict, Answer) else False
        if isinstance(verdict, Answer) and opens_thread and event.get("channel_type") == "im":
            self._title(verdict.target, verdict.incoming.text)  # the first question of a DM thread (agent_view)
        self.dispatch(verdict, f"event {event_id}")

    def on_opened(self, event: dict[str, Any]) -> None:
        """Bolt's listener for app_home_opened and assistant_thread_started: the suggested prompts, once a person."""
        greet = greeting(event)
        if greet is None or not self.me.allows(greet.user.upper()) or not self._greeted.first_time(greet.user):
            return
        prompts = prompts_payload(self._settings.slack_suggested_prompts)
        self._aside(
            greet.channel,
            "assistant.threads.setSuggestedPrompts",
            lambda: self.client.assistant_threads_setSuggestedPrompts(
                channel_id=greet.channel,
                thread_ts=greet.thread_ts,  # assistant_view only: an agent app's call must name no thread
                title=GREETING,
                prompts=prompts,
            ),
        )

    def on_feedback(self, payload: dict[str, Any]) -> None:
        """Bolt's listener for the feedback buttons: record the rating, thank the person (only they see it)."""
        press = feedback_press(payload, self.me.allowed)
        if press is None:
            return
        conversation = SlackTarget(press.channel, "thread", press.thread_ts).conversation
        self.feedback.record(Rating(conversation, press.message_ts, press.rating, press.user))
        self._aside(
            press.channel,
            "chat.postEphemeral",
            lambda: self.client.chat_postEphemeral(
                channel=press.channel, user=press.user, text=THANKS, thread_ts=press.thread_ts
            ),
        )

    def _title(self, target: SlackTarget, question: str) -> None:
        """Name a new DM thread after its first question (Slack lists the threads by title)."""
        title = thread_title(question) if not question.startswith("/") else None
        thread_ts = target.thread_ts
        if title is None or thread_ts is None:
            return
        self._aside(
            target.channel,
            "assistant.threads.setTitle",
            lambda: self.client.assistant_threads_setTitle(channel_id=target.channel, thread_ts=thread_ts, title=title),
        )

    def _aside(self, channel: str, method: str, request: Callable[[], Awaitable[Any]]) -> None:
        """Make a cosmetic call beside the replies, through the shared limiter; a failure is only logged."""

        async def run() -> None:
            try:
                await call(self.limiter, self.budgets, channel, method, request, urgent=False)
            except ChannelError as exc:
                log.info("slack: %s in %s failed: %s", method, channel, exc)

        self.conversations.aside(run())

    async def on_stop(self, payload: dict[str, Any]) -> None:
        """Bolt's listener for the Stop button: stop that conversation's reply (its message then loses the button).

        Someone who did not ask for the reply is told so, in a message only they see.
        """
        press = stop_request(payload, self.me)
        if press is None:
            return
        outcome = await self.stop_pressed(press)
        if outcome is StopOutcome.NOTHING:
            log.debug("stop pressed in %s with no reply running", press.conversation)
        elif outcome is StopOutcome.NOT_YOURS:
            self._tell(press.target, press.user, outcome.value)

    async def on_approval(self, payload: dict[str, Any]) -> None:
        """Bolt's listener for Approve and Deny: decide the approval. Someone who may not, or a press on a request
        that no longer waits, is told so in a message only they see (the request itself shows the decision)."""
        press = approval_request(payload, self.me)
        if press is None:
            return
        outcome = await self.approval_pressed(press)
        if outcome in (ApprovalOutcome.NOT_YOURS, ApprovalOutcome.GONE, ApprovalOutcome.UNAVAILABLE):
            self._tell(press.target, press.user, outcome.value)

    def _tell(self, target: SlackTarget, user: str, text: str) -> None:
        """Say `text` to `user` in `target`'s thread, in a message only they see."""
        self._aside(
            target.channel,
            "chat.postEphemeral",
            lambda: self.client.chat_postEphemeral(
                channel=target.channel, user=user, text=text, thread_ts=target.thread_ts
            ),
        )

    def open_surface(
        self, target: SlackTarget, profile: Profile, *, on_live_refused: Callable[[], None]
    ) -> SlackSurface:
        return SlackSurface(
            self.client, self.limiter, target, profile, on_live_refused=on_live_refused, budgets=self.budgets
        )

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, settings: Settings, runtime: Runtime) -> AsyncIterator[SlackBot]:
        """Open the Web API client, ask who the bot is (auth.test) and build the bot; close the client on exit.

        Raises:
            SettingsError: A setting is missing, or a token was refused, or the API is unreachable (one line).
        """
        check_settings(settings)
        assert settings.slack_bot_token is not None
        # One connection pool for every call (no TLS handshake per update), each call counted for the metrics.
        session = aiohttp.ClientSession(trace_configs=[slack_trace()])
        client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_api_url.rstrip("/") + "/",  # slack_sdk joins "base_url + method"
            session=session,
        )
        try:
            bot = cls(client, runtime, settings, await identify(client, settings))
            yield bot
            if bot.feedback.counts:  # after shutdown: every rating of this run is in
                log.info("slack: feedback while running: %s", bot.feedback.totals())
        finally:
            await session.close()

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[None]:
        """Take events over Socket Mode or HTTP for the duration of the block.

        Raises:
            SettingsError: The app token was refused or the port is unavailable (one line).
        """
        settings = self._settings
        runner: web.AppRunner | None = None
        socket: AsyncSocketModeHandler | None = None
        try:
            if self._socket_mode:
                socket = await connect_socket_mode(self._app, self.client, settings)
            else:
                runner = await listen_http(self._app, self, settings)
            how = "on Socket Mode" if self._socket_mode else f"listening at {self.url}"
            log.info("slack: <@%s> is %s", self.me.user_id, how)
            yield
        finally:
            if socket is not None:
                await socket.close_async()
            if runner is not None:
                await runner.cleanup()


def check_settings(settings: Settings) -> bool:
    """Stop start-up with one line when the chosen mode lacks a setting. Returns True for Socket Mode.

    Raises:
        SettingsError: Naming the missing or misplaced setting.
    """
    settings.require("SLACK_BOT_TOKEN")
    assert settings.slack_bot_token is not None
    if not settings.slack_bot_token.get_secret_value().startswith("xoxb-"):
        raise SettingsError("SLACK_BOT_TOKEN must be the bot token (xoxb-...) from OAuth & Permissions")
    if settings.slack_app_token is not None:
        if not settings.slack_app_token.get_secret_value().startswith("xapp-"):
            raise SettingsError("SLACK_APP_TOKEN must be an app-level token (xapp-...) with connections:write")
        return True
    if settings.slack_signing_secret is None:
        raise SettingsError(
            "SLACK_SIGNING_SECRET is not set; HTTP mode needs it (or set SLACK_APP_TOKEN for Socket Mode)"
        )
    return False


async def identify(client: AsyncWebClient, settings: Settings) -> SlackIdentity:
    """auth.test: who the bot is. A refused token or an unreachable API stops start-up with one line."""
    try:
        who = await client.auth_test()
    except SlackApiError as exc:
        raise SettingsError(f"SLACK_BOT_TOKEN was refused by Slack ({exc.response.get('error')})") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise SettingsError(f"cannot reach the Slack Web API at SLACK_API_URL ({type(exc).__name__})") from None
    return SlackIdentity(
        user_id=str(who["user_id"]),
        bot_id=who.get("bot_id"),
        allowed=frozenset(user.upper() for user in settings.slack_allowed_users),
        max_input_chars=settings.max_input_chars,
    )


def serve_slack(settings: Settings, agent: AgentThread) -> contextlib.AbstractAsyncContextManager[SlackBot]:
    """Run the bot (Socket Mode or HTTP) for the duration of the block; replies in flight finish on exit.

    Raises:
        SettingsError: A setting is missing, a token was refused, the API or the port is unavailable (one line).
    """
    return serve_channel(settings, agent, SlackBot)


def build_app(bot: SlackBot, settings: Settings, *, socket_mode: bool) -> AsyncApp:
    """The Bolt app: the bot's client, the signing secret (HTTP mode), one listener for both event types."""
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    app = AsyncApp(
        client=bot.client,
        signing_secret=secret,
        request_verification_enabled=not socket_mode,  # Socket Mode is authenticated by the app token
        process_before_response=True,  # the listener only queues: it returns well within Slack's 3 s
        name="livebot",
    )

    async def listener(body: dict[str, Any]) -> None:
        await bot.on_event(body)

    async def opened(event: dict[str, Any]) -> None:
        bot.on_opened(event)

    async def context_changed(event: dict[str, Any]) -> None:
        log.debug("slack: %s now looks at %s", event.get("user"), (event.get("context") or {}).get("channel_id"))

    async def stop_pressed(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await bot.on_stop(body)

    async def feedback_pressed(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        bot.on_feedback(body)

    async def approval_pressed(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        await bot.on_approval(body)

    app.event("app_mention")(listener)
    app.event("message")(listener)  # DMs, and every other message event, so none goes unacknowledged
    app.event("app_home_opened")(opened)  # agent_view: the Messages tab was opened
    app.event("assistant_thread_started")(opened)  # assistant_view apps that subscribed to it
    app.event("app_context_changed")(context_changed)  # agent_view: acknowledged; the bot does not use the context
    app.action(STOP_ACTION)(stop_pressed)
    app.action(FEEDBACK_ACTION)(feedback_pressed)
    app.action(APPROVE_ACTION)(approval_pressed)
    app.action(DENY_ACTION)(approval_pressed)
    return app


async def listen_http(app: AsyncApp, bot: SlackBot, settings: Settings) -> web.AppRunner:
    """Serve Bolt's aiohttp app at SLACK_LISTEN:SLACK_PORT/slack/events."""
    assert settings.slack_signing_secret is not None  # check_settings: HTTP mode has one
    web_app = app.web_app(path=EVENTS_PATH, port=settings.slack_port)
    web_app.middlewares.append(slack_guard(settings.slack_signing_secret.get_secret_value()))
    runner = await serve(web_app, settings.slack_listen, settings.slack_port, names="SLACK_LISTEN / SLACK_PORT")
    host, port = runner.addresses[0][:2]
    bot.url = f"http://{host}:{port}{EVENTS_PATH}"
    return runner


async def connect_socket_mode(app: AsyncApp, client: AsyncWebClient, settings: Settings) -> AsyncSocketModeHandler:
    """Open the Socket Mode connection; a refused app token stops start-up with one line.

    slack_sdk's client retries a failed apps.connections.open forever, so the first URL is asked for here, where
    a refusal can still be reported, and handed to the client.
    """
    assert settings.slack_app_token is not None
    app_token = settings.slack_app_token.get_secret_value()
    try:
        opened = await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        raise SettingsError(f"SLACK_APP_TOKEN was refused by Slack ({exc.response.get('error')})") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise SettingsError(f"cannot reach the Slack Web API at SLACK_API_URL ({type(exc).__name__})") from None
    handler = AsyncSocketModeHandler(app, app_token)
    handler.client.wss_uri = str(opened["url"])
    await handler.connect_async()
    return handler


async def run_slack(settings: Settings) -> int:
    """Run until SIGINT or SIGTERM. Returns the exit status."""
    check_settings(settings)
    return await run_until_signal(settings, serve_slack)
