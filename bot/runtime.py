"""The conversation runtime: turns one incoming message into one streamed reply.

Commands are answered here, the same on every channel; anything else runs the agent and feeds its events to a
StreamingHandler. The only rule about tools lives here too: `take()` before a tool runs, so the text before a
tool is finished and the answer after it opens a new message; a tool's pictures are shown before the model goes
on. A message with files is first made into the model's input (bot.attachments); a file that cannot be used is
answered with what is wrong with it, and the model is not called.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

from agent.approval import needs_approval
from agent.events import AgentEvent, ApprovalNeeded, Done, Failed, Picture, ToolCall, ToolResult
from agent.run import Cut
from agent.thread import AgentThread
from bot.approvals import CANNOT_ASK, Approvals, Decision, Ruling, describe_calls
from bot.attachments import Attachments, Turn
from bot.inflight import InFlight, Record
from bot.metrics import Outcome
from bot.outbox import Outbox
from bot.streaming import StreamingHandler
from channels.clock import Clock
from channels.commands import HELP, RESET, START, TOOLS, Command, command_of, help_commands
from channels.errors import ChannelError
from channels.inbound import Incoming
from channels.surface import ReplySurface, capabilities
from media.errors import FileProblem
from tools.catalog import describe_tools, tool_label

log = logging.getLogger(__name__)

STOPPED_MARK = "⏹ _Stopped._"
SHUTDOWN = "shutdown"
"""The cancel message that marks a reply stopped because the bot is shutting down, not by the user."""
LEASE_LOST = "lease lost"
"""The cancel message of a reply whose conversation another replica took over: it stops without writing."""
HAND_OVER = "hand over"
"""The cancel message of a reply a replica that shuts down hands over (replica mode, at the end of SHUTDOWN_GRACE):
it writes no more of the reply, and its in-flight record is written before its conversation is let go."""
SHUTDOWN_MARK = "⏹ _The bot is restarting; this answer was cut short. Please ask again in a moment._"
INTERRUPTED_MARK = "⚠️ _Interrupted: the bot restarted while writing this answer. Please ask again._"
"""Added at the next start to a reply a crash cut short whose run cannot go on (bot.channel, `take_over`)."""
LOST_MARK = f"{INTERRUPTED_MARK}\n_(It could not be resumed: the conversation memory no longer holds the question.)_"
"""INTERRUPTED_MARK with a note saying why the answer does not follow."""
RESUMED_MARK = "⚠️ _Interrupted: the bot restarted while writing this answer. The whole answer follows._"
"""Added at the next start to a reply a crash cut short whose run goes on from its checkpoint in a new reply."""
HANDED_OVER_MARK = "↪️ _Bot maintenance: the whole answer follows below._"
"""Added by the replica that takes over a reply another handed over at shutdown, to its message left open mid-step
(that step is written again from its start); nothing went wrong, so no warning, and nothing to ask again."""
SHUTDOWN_PATIENCE = 5.0
"""At shutdown, a final message waits at most this long for the platform; what is left goes to the outbox."""
EMPTY_ANSWER = "_(The model returned an empty answer. Try asking again, or rephrase.)_"
ABOUT = (
    "I'm **livebot**: ask me anything and I answer while I write. I can do arithmetic, tell the time in any "
    "timezone, read web pages and draw charts, and you can send me photos, voice notes and documents."
)
DEMO_HELP = (
    "\n\nNo language model is configured, so an offline **demo model** answers: it can do arithmetic, tell the "
    "time, draw a chart and say what files it got. Set OPENAI_API_KEY (or OPENAI_BASE_URL for a local server such "
    "as Ollama) and LLM_MODEL to talk to a real model."
)
Start = Callable[[StreamingHandler, Callable[[str], None]], Awaitable[AsyncGenerator[AgentEvent]]]
"""Begins a run to stream: given the reply's handler and the function that writes text to it, the run's events."""
RESET_DONE = "Done: I forgot this conversation. The next message starts fresh."


class Runtime:
    """Answers messages with the agent.

    Args:
        agent: The agent every conversation talks to.
        clock: Passed to each StreamingHandler (tests control time with it).
        outbox: Where final text that could not be delivered in time is kept for later delivery.
        channel: The outbox's name for this channel's entries.
        command_prefix: How users type a command here ("/reset", or in Slack the plain word "reset"), for the help.
        patience: FINAL_PATIENCE: how long a final message may wait for the platform before the outbox takes it.
        attachments: Turns messages with files into the model's input; None reads only text (files are ignored).
        approvals: Where requests to approve a tool call wait; None denies such calls at once (the model is told).
        inflight: Where each answer in flight is recorded, so one a crash cuts short is finished at the next start.
    """

    def __init__(
        self,
        agent: AgentThread,
        *,
        clock: Clock | None = None,
        outbox: Outbox | None = None,
        channel: str = "",
        command_prefix: str = "/",
        patience: float = float("inf"),
        attachments: Attachments | None = None,
        approvals: Approvals | None = None,
        inflight: InFlight | None = None,
    ) -> None:
        self._agent = agent
        self._inflight = inflight
        self.approvals = approvals
        self._attachments = attachments
        self._clock = clock
        self._outbox = outbox
        self._channel = channel
        self._patience = patience
        self._help = f"{ABOUT}\n\nCommands: {help_commands(command_prefix)}."
        self.commands: dict[Command, Callable[[Incoming, ReplySurface], Awaitable[None]]] = {
            START: self._show_help,
            HELP: self._show_help,
            RESET: self._reset,
            TOOLS: self._list_tools,
        }
        """The commands that are a turn of their conversation (`/stop` is not: `bot.conversations` acts on it)."""
        self.failed_replies = 0
        """Replies that ended with a failure notice (the piped console's exit status reports them)."""

    async def answer(self, incoming: Incoming, surface: ReplySurface) -> None:
        """Answer one message on `surface`. Cancelling the task stops the reply and keeps the text so far."""
        command = command_of(incoming.text)
        action = self.commands.get(command) if command is not None else None
        await (action or self._reply)(incoming, surface)

    async def _show_help(self, incoming: Incoming, surface: ReplySurface) -> None:
        await self.say(surface, self._help + (DEMO_HELP if self._agent.is_demo else ""))

    async def _list_tools(self, incoming: Incoming, surface: ReplySurface) -> None:
        await self.say(surface, describe_tools(self._agent.tools, unavailable=self._agent.unavailable))

    async def _reset(self, incoming: Incoming, surface: ReplySurface) -> None:
        await self._agent.reset(incoming.conversation)
        await self.say(surface, RESET_DONE)

    async def say(self, surface: ReplySurface, text: str) -> None:
        """Send a fixed text (help, a refusal) through the same streaming path as an answer."""
        async with StreamingHandler(surface, clock=self._clock) as handler:
            handler.emit(text)

    async def _reply(self, incoming: Incoming, surface: ReplySurface) -> None:
        async def start(handler: StreamingHandler, write: Callable[[str], None]) -> AsyncGenerator[AgentEvent]:
            turn = await self._attachments.prepare(incoming) if self._attachments else Turn(incoming.text)
            handler.emit(turn.heard)  # what a voice note said, before the answer to it
            return self._agent.run(turn.content, thread_id=incoming.conversation, on_text=write)

        await self._stream(incoming, surface, start)

    async def cut_run(self, thread_id: str, *, since: float) -> tuple[Cut, str]:
        """What the checkpoint says of the run on `thread_id` a crash cut short (`Agent.cut_run`)."""
        return await self._agent.cut_run(thread_id, since=since)

    async def carry_on(self, incoming: Incoming, surface: ReplySurface) -> None:
        """Go on with the run a crash cut short in `incoming.conversation` (`Agent.carry_on`): the whole answer
        streams to `surface` as a new reply, recorded in flight like any other."""

        async def start(handler: StreamingHandler, write: Callable[[str], None]) -> AsyncGenerator[AgentEvent]:
            return self._agent.carry_on(incoming.conversation, on_text=write)

        await self._stream(incoming, surface, start)

    async def resume(self, ruling: Ruling, surface: ReplySurface) -> None:
        """Go on with the run that paused for the approval `ruling` decides: the decision is written (only the
        first written counts), the request's message says what was decided (its buttons go), and the rest of the
        answer streams to `surface` in a new message."""
        assert self.approvals is not None  # only approvals it recorded are resumed
        approval, decision = await self.approvals.record(ruling), ruling.decision
        if approval is None:  # decided first by another decision: that one went on with the run
            return
        asks = capabilities(surface).approvals
        if asks is not None and approval.message is not None:
            try:
                await asks.settle_approval(approval.message, f"{approval.text}\n\n{decision.note}")
            except ChannelError as exc:
                log.info("%s: the approval request could not be settled (%s)", approval.conversation, exc)
        if not decision.resume:
            return
        incoming = Incoming(approval.conversation, "", approval.asker)
        await self._stream(incoming, surface, self._resumed(approval.conversation, decision.approve, decision.reason))

    async def _stream(
        self,
        incoming: Incoming,
        surface: ReplySurface,
        start: Start,
    ) -> None:
        """Stream the run `start` begins to `surface`; a run that pauses for approval ends with the request."""
        record = self._record(incoming, surface)
        handler = StreamingHandler(surface, clock=self._clock, on_screen=record.show if record else None)
        handler.patience = self._patience
        handler.feedback = True
        outcome = Outcome(self._channel, handler)
        await handler.start()
        readable = False  # text worth reading since the start or the last tool: the text before a tool is no answer
        paused: tuple[ToolCall, ...] = ()
        tools = {tool.name: tool for tool in self._agent.tools}  # (an MCP server that came up adds some)
        labels = {name: tool_label(tool) for name, tool in tools.items()}

        def write(text: str) -> None:  # called on the agent's thread
            nonlocal readable
            handler.emit(text)
            readable = readable or bool(text.strip())  # blank lines alone show nothing

        events: AsyncGenerator[AgentEvent] | None = None
        abandoned = False  # another replica finishes it: no more writes, the record stays for it
        try:
            events = await start(handler, write)
            async for event in events:
                match event:
                    case ToolCall(name=name, call_id=call_id, approved=approved):
                        await handler.take()  # the tool does not start until this returns
                        if approved or name not in tools or not needs_approval(tools[name]):  # gated: once approved
                            await handler.tool_started(labels.get(name, name), call_id)
                        readable = False
                    case ToolResult(name=name, call_id=call_id, ok=ok, content=content, pictures=pictures):
                        if not ok:
                            log.info("%s: tool %s failed: %s", incoming.conversation, name, content[:200])
                        await handler.tool_finished(labels.get(name, name), call_id, ok=ok)
                        for picture in pictures:  # the model goes on once they are shown
                            await self._show(incoming, handler, picture)
                    case ApprovalNeeded(calls=calls):
                        paused = calls
                    case Failed(notice=notice, kind=kind):
                        handler.emit(f"\n\n⚠️ {notice}")
                        readable = True
                        self.failed_replies += 1
                        outcome.failed("model", kind)
                    case Done(usage=usage):
                        log.debug(
                            "%s: answered (%d tokens in, %d out)",
                            incoming.conversation,
                            usage.input_tokens,
                            usage.output_tokens,
                        )
            if paused:
                handler.feedback = False  # the answer comes after the decision
            elif not readable:
                handler.emit(EMPTY_ANSWER)
        except FileProblem as problem:  # no model call: the reply says what is wrong with the file
            log.info("%s: file refused: %s", incoming.conversation, problem)
            handler.emit(str(problem))
            outcome.failed("file")
        except asyncio.CancelledError as stopped:
            if events is not None:
                await events.aclose()  # the model's stream is closed and no more text comes: the mark goes last
            lost = LEASE_LOST in stopped.args  # (another replica may be writing already: not one more call)
            if lost or (HAND_OVER in stopped.args and record is not None):
                abandoned = True
                outcome.handed_over()
                handler.patience = min(handler.patience, SHUTDOWN_PATIENCE)
                await handler.abandon(tidy=not lost)
                if record is not None and not lost:
                    await record.hand_over()  # before the conversation is let go: the taker reads it then
                raise
            shutting_down = SHUTDOWN in stopped.args or HAND_OVER in stopped.args  # (no record: cannot hand over)
            outcome.ended("shutdown" if shutting_down else "stopped")
            handler.emit(f"\n\n{SHUTDOWN_MARK if shutting_down else STOPPED_MARK}")
            if shutting_down:
                handler.patience = min(handler.patience, SHUTDOWN_PATIENCE)
            raise
        except Exception:
            outcome.failed("error")
            raise
        finally:
            try:
                if events is not None:
                    await events.aclose()
                if not abandoned:
                    delivered = await handler.stop()
                    outcome.record(delivered)
                    if not delivered:
                        await self._keep(incoming, surface, handler.undelivered)
            finally:
                if record is not None and not abandoned:
                    record.end()
        if paused:
            await self._ask(incoming, surface, paused)

    def _record(self, incoming: Incoming, surface: ReplySurface) -> Record | None:
        """The in-flight record of an answer that starts now (none where a late finish makes no sense)."""
        address = surface.address()
        if self._inflight is None or address is None:
            return None
        thread_id = incoming.conversation  # the agent's LangGraph thread is the conversation (AgentThread.run)
        return self._inflight.begin(incoming.conversation, self._channel, address, thread_id, incoming.user_id)

    async def _ask(self, incoming: Incoming, surface: ReplySurface, calls: tuple[ToolCall, ...]) -> None:
        """Show the request to approve `calls` (the text before them is final by now). Where it cannot be shown,
        the calls are denied at once and the model answers without them."""
        labels = {tool.name: tool_label(tool) for tool in self._agent.tools}
        text = describe_calls([(labels.get(call.name, call.name), call.args) for call in calls])
        asks = capabilities(surface).approvals
        if self.approvals is not None and asks is not None:
            approval = await self.approvals.open(incoming.conversation, incoming.user_id, text, surface.address())
            try:
                message = await asks.ask_approval(text, approval.id)
            except ChannelError as exc:
                log.warning("%s: the approval request could not be shown (%s)", incoming.conversation, exc)
            else:
                await self.approvals.shown(approval, message)
                log.info("%s: waiting for approval %s", incoming.conversation, approval.id)
                return
            if await self.approvals.record(Ruling(approval.id, Decision(False, "", reason=CANNOT_ASK))) is None:
                return  # decided meanwhile
        log.info("%s: %d call(s) denied: no approval possible here", incoming.conversation, len(calls))
        await self._stream(incoming, surface, self._resumed(incoming.conversation, False, CANNOT_ASK))

    def _resumed(self, conversation: str, approve: bool, reason: str) -> Start:
        """How to start the rest of a paused run, decided."""

        async def start(handler: StreamingHandler, write: Callable[[str], None]) -> AsyncGenerator[AgentEvent]:
            return self._agent.resume(conversation, approve=approve, reason=reason, on_text=write)

        return start

    async def _show(self, incoming: Incoming, handler: StreamingHandler, picture: Picture) -> None:
        """Send a tool's picture between the text before the tool and the answer after it."""
        data = await asyncio.to_thread(self._agent.files.read, incoming.conversation, picture.ref)
        if data is None:
            log.warning("%s: picture %s is gone before it was shown", incoming.conversation, picture.ref)
            return
        await handler.picture(data, picture.caption)

    async def _keep(self, incoming: Incoming, surface: ReplySurface, texts: list[str]) -> None:
        """Hand final text the platform did not take to the outbox (or, without one, say so in the log)."""
        address = surface.address()
        if self._outbox is None or address is None:
            log.warning("%s: part of the reply could not be delivered", incoming.conversation)
            return
        for text in texts:
            await self._outbox.put(self._channel, address, text)
