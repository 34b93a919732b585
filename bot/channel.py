"""The channel core: what every chat platform's bot does the same way, written once.

A platform (`bot.telegram_app`, `bot.slack_app`) subclasses `ChannelBot` and supplies only what differs: its
parser's verdicts, its surface (`open_surface`), its profile rows (`channels.capabilities`) and bot budget, a
target type that encodes itself to an outbox address and back, and the wiring to its library (`connect`,
`listen`). The core owns the rest: dispatching verdicts to the conversation queues, remembering chats that
refused a live mode, Stop presses (including a button a crash left behind), outbox delivery, and start-up and
shutdown in the right order. See docs/architecture.md, "How to add a platform".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Generic, Self, TypeVar

from agent.thread import AgentThread
from bot.conversations import Conversations
from bot.outbox import open_outbox
from bot.runtime import Runtime
from bot.settings import Settings
from channels.capabilities import LiveMode, Profile, resolve
from channels.errors import ChannelError
from channels.inbound import Answer, Ignore, Refuse, StopPress, Target, Verdict
from channels.ratelimit import Budget, RateLimiter
from channels.surface import ButtonSurface, ReplySurface, capabilities

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Target)
B = TypeVar("B", bound="ChannelBot[Any]")


class ChannelBot(Generic[T]):
    """Turns a platform's verdicts into replies. One per running bot; a platform subclasses it.

    Subclasses set `platform` (its name in the capability registry and the outbox), `budget` (the bot-wide rate
    budget), `target_type` and, where "/" is not how users type commands, `command_prefix`; and implement
    `open_surface`, `connect` and `listen`.

    Args:
        runtime: Answers messages with the agent.
        settings: For the streaming mode and interval and the per-user limit.
    """

    platform: ClassVar[str]
    budget: ClassVar[Budget]
    command_prefix: ClassVar[str] = "/"
    target_type: type[T]

    def __init__(self, runtime: Runtime, settings: Settings) -> None:
        self.conversations = Conversations(runtime, runs_per_minute=settings.user_runs_per_minute)
        self.limiter = RateLimiter(self.budget)
        self._settings = settings
        self._live_refused: set[Hashable] = set()  # chats that refused drafts or native streams

    # -- what a platform supplies -----------------------------------------------------------------------

    def open_surface(self, target: T, profile: Profile, *, on_live_refused: Callable[[], None]) -> ReplySurface:
        """The platform's surface for one reply to `target`; it calls `on_live_refused` when the chat refuses
        the profile's live mode (drafts, a native stream), so later replies there use edits."""
        raise NotImplementedError

    @classmethod
    def connect(cls, settings: Settings, runtime: Runtime) -> AbstractAsyncContextManager[Self]:
        """Open the platform client, learn who the bot is and build the bot; release the client on exit.

        Raises:
            SettingsError: A setting is missing or refused, or the platform cannot be reached (one line).
        """
        raise NotImplementedError

    def listen(self) -> AbstractAsyncContextManager[None]:
        """Take updates (polling, a webhook, a socket) for the duration of the block; none arrive after it."""
        raise NotImplementedError

    # -- what the core does -----------------------------------------------------------------------------

    def dispatch(self, verdict: Verdict[T], what: str) -> None:
        """Act on a parser's verdict about `what` (an update or event, for the debug log); returns at once."""
        match verdict:
            case Answer(incoming=incoming, target=target):
                self.conversations.submit(incoming, lambda: self.surface(target))
            case Refuse(target=target, text=text):
                self.conversations.notify(lambda: self.surface(target), text)
            case Ignore(reason=reason):
                log.debug("%s ignored: %s", what, reason)

    def stop_pressed(self, press: StopPress[T]) -> bool:
        """Stop the reply of the pressed message's conversation. Returns whether one was running.

        When none was, the button outlived its reply (the bot was killed mid-answer): it is taken away, aside, so
        the platform's acknowledgement of the press does not wait for it.
        """
        if self.conversations.stop(press.conversation):
            return True
        buttons = capabilities(self.surface(press.target)).buttons
        if buttons is not None:
            self.conversations.aside(_drop_buttons(buttons, press.message))
        return False

    async def deliver(self, address: dict[str, Any], text: str) -> None:
        """Send an outbox entry: the same rendering, budget and error rules as a reply's final message."""
        await self.surface(self.target_type.from_address(address)).send(text, final=True)

    def live_mode(self, target: T) -> LiveMode | None:
        """The live mode the settings ask for in `target`'s chat (None: the registry's auto); a platform with a
        setting of its own for some chats overrides it."""
        return self._settings.live_mode

    def surface(self, target: T) -> ReplySurface:
        """A reply surface for `target`, streaming the way the registry says (edits where the chat refused more)."""
        mode, interval = self.live_mode(target), self._settings.stream_edit_interval
        profile = resolve(self.platform, target.kind, mode=mode, interval=interval)
        if target.chat in self._live_refused and profile.mode in (LiveMode.DRAFT, LiveMode.NATIVE):
            profile = resolve(self.platform, target.kind, mode=profile.fallback(profile.mode), interval=interval)
        return self.open_surface(target, profile, on_live_refused=lambda: self._live_refused.add(target.chat))


async def _drop_buttons(surface: ButtonSurface, message: Any) -> None:
    with contextlib.suppress(ChannelError):
        await surface.drop_buttons(message)


@contextlib.asynccontextmanager
async def serve_channel(settings: Settings, agent: AgentThread, kind: type[B]) -> AsyncIterator[B]:
    """Run a `kind` bot with its outbox for the duration of the block: start-up and shutdown, in order.

    Start: the outbox, the runtime, the platform client and the bot, the intake, then the courier that delivers
    what an earlier run left in the outbox. Stop: the courier (after the entry it is sending), the intake (no new
    messages), the replies in flight (SHUTDOWN_GRACE, then cut short with a notice; what they could not deliver
    stays in the outbox for the next start), and last the platform client.
    """
    async with open_outbox(settings.bot_data_dir) as outbox:
        runtime = Runtime(
            agent,
            outbox=outbox,
            channel=kind.platform,
            command_prefix=kind.command_prefix,
            patience=settings.final_patience,
        )
        async with kind.connect(settings, runtime) as bot:
            try:
                async with bot.listen():
                    courier = asyncio.create_task(
                        outbox.courier(kind.platform, bot.deliver), name=f"{kind.platform}-outbox"
                    )
                    try:
                        yield bot
                    finally:
                        await outbox.stop(courier)  # after the delivery it is in, so no send goes unrecorded
            finally:
                await bot.conversations.shutdown(settings.shutdown_grace)
