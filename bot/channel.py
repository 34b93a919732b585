"""The channel core: what every chat platform's bot does the same way, written once.

A platform (`bot.telegram_app`, `bot.slack_app`) subclasses `ChannelBot` and supplies only what differs: its
parser's verdicts, its surface (`open_surface`), its profile rows (`channels.capabilities`) and bot budget, a
target type that encodes itself to an outbox address and back, and the wiring to its library (`connect`,
`listen`). The core owns the rest: dispatching verdicts to the conversation queues, remembering chats that
refused a live mode, Stop presses (including a button a crash left behind), outbox delivery, taking over the
replies a crash cut short (`bot.inflight`, `take_over`), and start-up and shutdown in the right order. See
docs/architecture.md, "How to add a platform".
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Generic, Self, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from agent.run import Cut
from agent.thread import AgentThread
from bot.approvals import Approval, Ruling, approved, denied, expired, open_approvals
from bot.attachments import open_attachments
from bot.conversations import Conversations, Once
from bot.dedupe import Dedupe
from bot.inflight import InFlight, Leftover, open_inflight
from bot.metrics import Live, Readiness, serve_metrics
from bot.outbox import open_outbox
from bot.replicas import open_redis, redis_problem
from bot.runtime import HANDED_OVER_MARK, LOST_MARK, RESUMED_MARK, Runtime
from bot.settings import Settings
from bot.shared_queues import SharedQueues
from bot.store import STORE_ERRORS, open_store
from channels.capabilities import LiveMode, Profile, resolve
from channels.errors import (
    ChannelError,
    FormattingRejected,
    MessageTooLong,
    RateLimited,
    StreamingRefused,
    TransientError,
)
from channels.inbound import Answer, ApprovalPress, Ignore, Refuse, StopPress, Target, Verdict
from channels.ratelimit import Budget, RateLimiter
from channels.shared_budget import SharedBudgets
from channels.surface import ButtonSurface, ReplySurface, capabilities

log = logging.getLogger(__name__)

FINISH_ATTEMPTS = 3
"""Tries to finish one reply a crash cut short (a 429 or a network error is tried again) before it is dropped."""
FINISH_PATIENCE = 60.0
"""At start-up, how long finishing the replies a crash cut short may hold up serving."""
REFUSAL_EVERY = 3600.0
"""A chat hears the allowlist refusal at most once in this many seconds, however often outsiders write."""
T = TypeVar("T", bound=Target)
B = TypeVar("B", bound="ChannelBot[Any]")


class StopOutcome(enum.Enum):
    """What a Stop press did; the value is the short answer the presser sees."""

    STOPPED = "Stopping…"
    NOTHING = "Nothing to stop."
    NOT_YOURS = "Only the person who asked can stop this answer."


class ApprovalOutcome(enum.Enum):
    """What an Approve or Deny press did; the value is the short answer the presser sees."""

    APPROVED = "Approved."
    DENIED = "Denied."
    GONE = "This request is no longer waiting."
    UNAVAILABLE = "I cannot reach my records right now. Please press again in a moment."
    NOT_YOURS = "Only the person who asked can approve or deny this."


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
        self.runtime = runtime
        self.conversations = Conversations(runtime, runs_per_minute=settings.user_runs_per_minute)
        self.limiter = RateLimiter(self.budget)
        self._settings = settings
        self._live_refused: set[Hashable] = set()  # chats that refused drafts or native streams
        self._refusals = Once(REFUSAL_EVERY)  # chats that heard an allowlist refusal lately
        self.redis: Redis | None = None
        """The Redis the replicas share (replica mode), else None."""
        self.dedupe = Dedupe(self.platform)
        """Which updates were answered already: the handlers drop one delivered again."""

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

    @property
    def shared_key(self) -> str:
        """Who this bot is on its platform (its user id), so that bots sharing a Redis keep apart."""
        raise NotImplementedError

    def share(self, client: Redis, inflight: InFlight) -> None:
        """Replica mode: work with the other replicas of this bot through `client` (from before `listen`): the
        updates answered, the rate budgets of the bot and its chats (`channels.shared_budget`), and the
        conversations' queues and leases (`bot.shared_queues`; this replica is named as in its in-flight records,
        and finishes those other replicas left in the conversations it takes over)."""
        self.redis = client
        prefix = f"livebot:{self.platform}:{self.shared_key}"
        self.dedupe = Dedupe(self.platform, client, f"{prefix}:seen")
        self.limiter.share(SharedBudgets(client, f"{self.platform}:{self.shared_key}"))
        self.conversations.share(
            SharedQueues(client, prefix, inflight.owner),
            lambda address: self.surface(self.target_type.from_address(address)),
            lambda conversation: finish_leftovers(self, inflight, conversation),
            self.fetcher,
        )

    def fetcher(self, source: dict[str, Any]) -> Callable[[int], Awaitable[bytes]]:
        """Replica mode: the download of a file that came with a message another replica took in
        (`Attachment.source`)."""
        raise NotImplementedError

    # -- what the core does -----------------------------------------------------------------------------

    def dispatch(self, verdict: Verdict[T], what: str) -> None:
        """Act on a parser's verdict about `what` (an update or event, for the debug log); returns at once."""
        match verdict:
            case Answer(incoming=incoming, target=target):
                self.conversations.submit(incoming, lambda: self.surface(target), target.address())
            case Refuse(target=target, text=text, outsider=True):
                if self._refusals.first(target.chat):
                    self.conversations.aside(self._refuse_outsider(target, text))
                else:
                    log.debug("%s: outsider refused already this hour; %s not answered", target.chat, what)
            case Refuse(target=target, text=text):
                self.conversations.notify(lambda: self.surface(target), text)
            case Ignore(reason=reason):
                log.debug("%s ignored: %s", what, reason)

    async def stop_pressed(self, press: StopPress[T]) -> StopOutcome:
        """Stop the reply of the pressed message's conversation, if the presser may. Every kind of Stop press
        passes here, so this is the one place that decides who may stop a reply.

        Only the person who asked for the running reply, or an admin of the chat (`is_admin`), stops it; anyone
        else is told so and nothing stops. When no reply is running, the button outlived its reply (the bot was
        killed mid-answer): it is taken away, aside, so the platform's acknowledgement of the press does not wait.
        """
        asker = await self.conversations.asker_anywhere(press.conversation)
        if asker is None:
            buttons = capabilities(self.surface(press.target)).buttons
            if buttons is not None:
                self.conversations.aside(_drop_buttons(buttons, press.message))
            return StopOutcome.NOTHING
        if not await self.may_act(press.target, press.user, asker):
            log.info("%s: stop pressed by someone who did not ask; ignored", press.conversation)
            return StopOutcome.NOT_YOURS
        stopped = await self.conversations.stop_anywhere(press.conversation)
        return StopOutcome.STOPPED if stopped else StopOutcome.NOTHING

    async def approval_pressed(self, press: ApprovalPress[T]) -> ApprovalOutcome:
        """Decide the approval an Approve or Deny button belongs to, if the presser may (as for Stop: the person
        who asked, or an admin of the chat). Works on any replica and for buttons shown before a restart:
        approvals are in the store, and the run goes on from its checkpoint. The first decision counts; the
        request's message then says what was decided, and by whom."""
        approvals = self.conversations.approvals
        try:
            approval = await approvals.get(press.approval_id) if approvals is not None else None
            if approval is None or approval.conversation != press.conversation:  # (a button from another chat)
                return ApprovalOutcome.GONE
            if not await self.may_act(press.target, press.user, approval.asker):
                log.info("%s: approval pressed by someone who did not ask; ignored", press.conversation)
                return ApprovalOutcome.NOT_YOURS
            decision = approved(press.user_name) if press.approve else denied(press.user_name)
            surface = lambda: self.surface(press.target)  # noqa: E731
            if not await self.conversations.decide(approval, decision, surface, pressed=press.message):
                return ApprovalOutcome.GONE
        except (*STORE_ERRORS, RedisError) as exc:
            log.warning("%s: an approval press could not be decided (%s)", press.conversation, type(exc).__name__)
            return ApprovalOutcome.UNAVAILABLE
        log.info("%s: approval %s %s", press.conversation, approval.id, "approved" if press.approve else "denied")
        return ApprovalOutcome.APPROVED if press.approve else ApprovalOutcome.DENIED

    async def expire(self, approval: Approval) -> None:
        """APPROVAL_TIMEOUT passed (maybe while the bot was down, or on a replica that died): the approval is
        denied and the run goes on. Called at each look at the store until the decision is written (a failure,
        Redis away, is tried again at the next); only the first decides."""
        decision = expired(self._settings.approval_timeout)
        if approval.address is None:  # nowhere to go on: it stops waiting (the next message answers the calls)
            log.warning("%s: approval %s has no address; denied without going on", approval.conversation, approval.id)
            assert self.conversations.approvals is not None  # (it came from them)
            await self.conversations.approvals.record(Ruling(approval.id, decision))
            return
        target = self.target_type.from_address(approval.address)
        surface = lambda: self.surface(target)  # noqa: E731
        if await self.conversations.decide(approval, decision, surface):
            log.info("%s: approval %s expired", approval.conversation, approval.id)

    async def may_act(self, target: T, user: str, asker: str) -> bool:
        """Whether `user` may act on a reply `asker` asked for (stop it, approve its tool calls): the asker, or an
        admin of the chat. Every press that needs authority asks here."""
        return user == asker or await self.is_admin(target, user)

    async def _refuse_outsider(self, target: T, text: str) -> None:
        """Send an allowlist refusal as a low-priority call: dropped, not queued, when the chat's budget is short,
        so a stranger's messages never delay the answers of the people the bot serves."""
        surface = self.surface(target)
        try:
            with self.limiter.low_priority():
                await surface.send(text, final=True)
        except ChannelError as exc:
            log.info("%s: refusal not sent (%s)", target.conversation, exc)
        finally:
            with contextlib.suppress(ChannelError):
                await surface.close()

    async def is_admin(self, target: T, user: str) -> bool:
        """Whether `user` administers the chat of `target` (and so may stop anyone's reply there). A platform that
        can tell overrides it; the answer may be cached briefly. Never raises: when in doubt, False."""
        return False

    async def take_over(self, leftover: Leftover, inflight: InFlight) -> None:
        """Finish a reply another process left in flight (this bot's earlier run that crashed; a replica that
        died, or handed it over as it shut down): the one entry point for any leftover record. Returns once its
        message is settled; the rest of the answer then streams as the next turn of its conversation.

        By the run's checkpoint (`Agent.cut_run`): a run that can go on gets a mark on the cut message (`cut_mark`)
        and goes on from the checkpoint as a new reply (the model asked again with the stored question), before
        the conversation's follow-ups; a run that had finished (the crash came after its final edit) only loses the
        Stop button (its message shows the answer's end), so nothing is answered twice; one that cannot go on (the
        thread is gone) gets LOST_MARK. The record is claimed first (`InFlight.claim`: another process that
        claimed it is left to it) and dropped once the message is settled, settled or not: a message the platform
        will not edit is logged, never retried at every start.
        """
        if not await inflight.claim(leftover):
            log.info("%s: a reply cut short is being finished elsewhere", leftover.conversation)
            return
        try:
            cut, answer = await self.runtime.cut_run(leftover.thread_id, since=leftover.started)
        except Exception:
            log.exception("%s: the checkpoint of a reply cut short cannot be read", leftover.conversation)
            cut, answer = Cut.LOST, ""
        shown = leftover.screen.text.rstrip()
        if cut is Cut.FINISHED:  # the final edit may have shown more than the record knew: the answer's end
            await _settle(self, leftover, answer if answer.startswith(shown) else shown, None)
        elif (mark := cut_mark(leftover, cut)) is not None:  # (None: handed over with nothing open to settle)
            await _settle(self, leftover, shown, mark)
        await inflight.drop(leftover.id)
        if cut is Cut.UNFINISHED:
            target = self.target_type.from_address(leftover.address)
            self.conversations.carry_on(leftover.conversation, leftover.asker, lambda: self.surface(target))
            log.info("%s: the run cut short goes on from its checkpoint", leftover.conversation)

    async def settle_cut_reply(self, leftover: Leftover, text: str, mark: str | None) -> None:
        """Settle the message of a reply cut short: it shows `text` (what it showed, or more) and `mark` (None: the
        run had finished, and `text` is the answer's end), without the Stop button. A native stream still open is
        stopped with the mark (the text stays exactly as shown); one that expired, and a message being edited, get
        the text and the mark by an edit; a draft, which is no message, and a reply with no message open, get them
        as a new message. A finished run's answer needs no new message (its final message went out), except on a
        draft a replica handed over (`Leftover.handed_over`: its record is exact, so the final did not go out).

        Raises:
            ChannelError: The platform refused (the message was deleted, ...): the caller logs it and moves on.
        """
        surface = self.surface(self.target_type.from_address(leftover.address))
        screen, can = leftover.screen, capabilities(surface)
        if mark is not None:
            text = f"{text}\n\n{mark}" if text else mark
        if screen.message is None:
            if mark is not None or (leftover.handed_over and screen.text):
                await surface.send(text, final=True)
            return
        if screen.mode == LiveMode.NATIVE.value and can.stream is not None:
            try:
                await can.stream.stream_stop(screen.message, "" if mark is None else f"\n\n{mark}")
                return
            except StreamingRefused:
                pass  # expired (or stopped) meanwhile: it takes an edit
        if screen.buttons and can.buttons is not None:
            can.buttons.adopt(screen.message)
        elif mark is None:
            return  # no button and no mark: the message stays as it is
        try:
            await surface.edit(screen.message, text, final=True)
        except FormattingRejected:
            await surface.edit(screen.message, text, final=True, plain=True)
        except MessageTooLong:  # the mark does not fit under the text: it follows it
            await surface.edit(screen.message, screen.text, final=True)
            if mark is not None:
                await surface.send(mark, final=True)

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


def cut_mark(leftover: Leftover, cut: Cut) -> str | None:
    """The mark the message of a reply cut short gets when its run goes on (UNFINISHED) or cannot (LOST).

    After a crash (or a replica's death) it says so: RESUMED_MARK, or LOST_MARK. A reply a replica handed over as
    it shut down (`Leftover.handed_over`) goes on cleanly where no message was open (a draft, which is no message
    and which the resumed reply's own draft and final message replace; or a pause between messages, as while a
    tool runs, where the answer goes on in a new message as after any tool): no mark. Only a message left open
    mid-step (edits, a native stream) gets HANDED_OVER_MARK, since that step is written again from its start.
    """
    if cut is Cut.LOST:
        return LOST_MARK
    if not leftover.handed_over:
        return RESUMED_MARK
    return HANDED_OVER_MARK if leftover.screen.message is not None else None


async def finish_leftovers(bot: ChannelBot[Any], inflight: InFlight, conversation: str | None = None) -> None:
    """Take over every reply of `bot`'s platform an earlier run of this process left in flight (or, with
    `conversation`, those of that conversation, which this replica takes over from a dead one)
    (`ChannelBot.take_over`), their messages settled within FINISH_PATIENCE; the runs that go on are queued."""
    leftovers = await inflight.leftovers(bot.platform, conversation=conversation)
    if not leftovers:
        return
    log.info("%s: finishing %d reply(ies) cut short", conversation or bot.platform, len(leftovers))
    tasks = [asyncio.create_task(bot.take_over(leftover, inflight)) for leftover in leftovers]
    _, late = await asyncio.wait(tasks, timeout=FINISH_PATIENCE)
    for task in late:
        task.cancel()
    if late:
        log.warning("%s: %d reply(ies) cut short not finished in %g s; tried again at the next start",
                    bot.platform, len(late), FINISH_PATIENCE)  # fmt: skip
        await asyncio.wait(late)


async def _settle(bot: ChannelBot[Any], leftover: Leftover, text: str, mark: str | None) -> None:
    """`settle_cut_reply`, tried again after a 429 or a network error; a failure is logged, never raised."""
    where = leftover.conversation
    for attempt in range(1, FINISH_ATTEMPTS + 1):
        try:
            await bot.settle_cut_reply(leftover, text, mark)
            log.info("%s: a reply cut short was settled", where)
            return
        except (RateLimited, TransientError) as exc:
            if attempt == FINISH_ATTEMPTS:
                log.warning("%s: a reply cut short could not be finished (%s); dropped", where, exc)
                return
            await asyncio.sleep(exc.retry_after if isinstance(exc, RateLimited) else attempt)
        except ChannelError as exc:  # deleted, chat gone, ...: asking again gets the same answer
            log.warning("%s: a reply cut short could not be finished (%s); dropped", where, exc)
            return
        except Exception:
            log.exception("%s: finishing a reply cut short failed; dropped", where)
            return


async def _drop_buttons(surface: ButtonSurface, message: Any) -> None:
    with contextlib.suppress(ChannelError):
        await surface.drop_buttons(message)


@contextlib.asynccontextmanager
async def serve_channel(settings: Settings, agent: AgentThread, kind: type[B]) -> AsyncIterator[B]:
    """Run a `kind` bot with its outbox for the duration of the block: start-up and shutdown, in order.

    Start: the state store (in-flight records, outbox, approvals), the runtime, the platform client and the bot,
    the replies an earlier run left in flight taken over (`finish_leftovers`: messages settled, runs queued), the
    intake, then the courier that delivers what an earlier run left in the outbox. Stop: the courier (after the
    entry it is sending), the intake (no new messages), the replies in flight (SHUTDOWN_GRACE, then cut short with
    a notice; what they could not deliver stays in the outbox for the next start), the platform client, and last
    the in-flight records of the replies that ended.
    """
    ready = Readiness()
    database_url = settings.database_url.get_secret_value() if settings.database_url else None
    async with (
        open_store(settings.bot_data_dir, database_url) as store,
        open_inflight(store) as inflight,
        open_attachments(settings, agent.files) as files,
        contextlib.AsyncExitStack() as shared,
    ):
        outbox = await open_outbox(store, settings.bot_data_dir)
        approvals = await open_approvals(store, settings.bot_data_dir, kind.platform, settings.approval_timeout)
        if database_url is not None:
            ready.checks["postgres"] = store.problem
        client = None
        if settings.redis_url is not None:
            client = await shared.enter_async_context(open_redis(settings.redis_url.get_secret_value()))
            ready.checks["redis"] = lambda: redis_problem(client)
        runtime = Runtime(
            agent,
            outbox=outbox,
            channel=kind.platform,
            command_prefix=kind.command_prefix,
            patience=settings.final_patience,
            attachments=files,
            inflight=inflight,
            approvals=approvals,
        )
        async with kind.connect(settings, runtime) as bot:
            if client is not None:
                bot.share(client, inflight)
            live = Live(
                kind.platform,
                in_flight=lambda: bot.conversations.replying,
                dropped=lambda: bot.limiter.dropped,
                outbox=lambda: outbox.figures(kind.platform),
            )
            # The health and metrics endpoints outlive the grace: /readyz says "shutting down" and /metrics counts
            # the last replies until the process is about to exit.
            async with serve_metrics(settings.metrics_listen, settings.metrics_port, live, ready):
                try:
                    if settings.replicas:  # another replica's replies are in flight, not cut: the sweep takes over
                        log.info("%s: replica mode: replies cut short are not finished at start-up", kind.platform)
                    else:
                        await finish_leftovers(bot, inflight)
                    async with bot.listen():
                        courier = asyncio.create_task(
                            outbox.courier(kind.platform, bot.deliver), name=f"{kind.platform}-outbox"
                        )
                        watcher = asyncio.create_task(approvals.watch(bot.expire), name=f"{kind.platform}-approvals")
                        ready.listening = True
                        try:
                            yield bot
                        finally:
                            ready.shutting_down = True
                            watcher.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await watcher
                            await outbox.stop(courier)  # after the delivery it is in, so no send goes unrecorded
                finally:
                    await bot.conversations.shutdown(settings.shutdown_grace)
