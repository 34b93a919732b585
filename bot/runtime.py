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

from agent.events import AgentEvent, Done, Failed, Picture, ToolCall, ToolResult
from agent.thread import AgentThread
from bot.attachments import Attachments, Turn
from bot.metrics import Outcome
from bot.outbox import Outbox
from bot.streaming import StreamingHandler
from channels.clock import Clock
from channels.commands import HELP, RESET, START, TOOLS, Command, command_of, help_commands
from channels.inbound import Incoming
from channels.surface import ReplySurface
from media.errors import FileProblem
from tools.catalog import describe_tools, tool_label

log = logging.getLogger(__name__)

STOPPED_MARK = "⏹ _Stopped._"
SHUTDOWN = "shutdown"
"""The cancel message that marks a reply stopped because the bot is shutting down, not by the user."""
SHUTDOWN_MARK = "⏹ _The bot is restarting; this answer was cut short. Please ask again in a moment._"
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
    ) -> None:
        self._agent = agent
        self._attachments = attachments
        self._clock = clock
        self._outbox = outbox
        self._channel = channel
        self._patience = patience
        self._help = f"{ABOUT}\n\nCommands: {help_commands(command_prefix)}."
        self._labels = {tool.name: tool_label(tool) for tool in agent.tools}
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
        await self.say(surface, describe_tools(self._agent.tools))

    async def _reset(self, incoming: Incoming, surface: ReplySurface) -> None:
        await self._agent.reset(incoming.conversation)
        await self.say(surface, RESET_DONE)

    async def say(self, surface: ReplySurface, text: str) -> None:
        """Send a fixed text (help, a refusal) through the same streaming path as an answer."""
        async with StreamingHandler(surface, clock=self._clock) as handler:
            handler.emit(text)

    async def _reply(self, incoming: Incoming, surface: ReplySurface) -> None:
        handler = StreamingHandler(surface, clock=self._clock)
        handler.patience = self._patience
        handler.feedback = True
        outcome = Outcome(self._channel, handler)
        await handler.start()
        readable = False  # text worth reading since the start or the last tool: the text before a tool is no answer

        def write(text: str) -> None:  # called on the agent's thread
            nonlocal readable
            handler.emit(text)
            readable = readable or bool(text.strip())  # blank lines alone show nothing

        events: AsyncGenerator[AgentEvent] | None = None
        try:
            turn = await self._attachments.prepare(incoming) if self._attachments else Turn(incoming.text)
            handler.emit(turn.heard)  # what a voice note said, before the answer to it
            events = self._agent.run(turn.content, thread_id=incoming.conversation, on_text=write)
            async for event in events:
                match event:
                    case ToolCall(name=name, call_id=call_id):
                        await handler.take()  # the tool does not start until this returns
                        await handler.tool_started(self._labels.get(name, name), call_id)
                        readable = False
                    case ToolResult(name=name, call_id=call_id, ok=ok, content=content, pictures=pictures):
                        if not ok:
                            log.info("%s: tool %s failed: %s", incoming.conversation, name, content[:200])
                        await handler.tool_finished(self._labels.get(name, name), call_id, ok=ok)
                        for picture in pictures:  # the model goes on once they are shown
                            await self._show(incoming, handler, picture)
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
            if not readable:
                handler.emit(EMPTY_ANSWER)
        except FileProblem as problem:  # no model call: the reply says what is wrong with the file
            log.info("%s: file refused: %s", incoming.conversation, problem)
            handler.emit(str(problem))
            outcome.failed("file")
        except asyncio.CancelledError as stopped:
            if events is not None:
                await events.aclose()  # the model's stream is closed and no more text comes: the mark goes last
            shutting_down = SHUTDOWN in stopped.args
            outcome.ended("shutdown" if shutting_down else "stopped")
            handler.emit(f"\n\n{SHUTDOWN_MARK if shutting_down else STOPPED_MARK}")
            if shutting_down:
                handler.patience = min(handler.patience, SHUTDOWN_PATIENCE)
            raise
        except Exception:
            outcome.failed("error")
            raise
        finally:
            if events is not None:
                await events.aclose()
            delivered = await handler.stop()
            outcome.record(delivered)
            if not delivered:
                await self._keep(incoming, surface, handler.undelivered)

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
