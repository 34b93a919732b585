"""MCP servers as tools: one session per server for the bot's lifetime, reopened when it breaks.

`McpServers.open()` connects to every configured server at start-up and lists its tools with
`langchain-mcp-adapters`; `current()` gives them as LangChain tools. A server that cannot be started or reached
does not stop start-up: one log line names it, the bot starts without its tools (/tools says it is unavailable)
and keeps trying in the background; when it answers, its tools are offered from the next reply on (`subscribe`:
the agent rebuilds its graph, whose tools are fixed when it is compiled). It must run on the loop the agent runs on
(agent/thread.py): the MCP SDK's sessions are anyio task groups bound to the loop that opened them.

Each server has a supervisor task that holds its session open. A call that finds the connection broken (a stdio
server that died, an HTTP server that went away or forgot the session) is answered with an error the model can
read, and the supervisor opens a new session (starting a stdio server again) at once, and after a backoff of
1, 2, 4 … 60 s while that keeps failing.
Calls made while a server is coming back wait up to `RECONNECT_WAIT` seconds for it, then are told it is
unavailable. Either way the tool raises `McpUnavailable`, whose text ToolGuard hands the model as an error result.

The adapters' tools keep their schema and result conversion; their calls are routed through an interceptor to the
server's current session, so the tools survive a restart. What the model gets back is text: long text is cut at
`MAX_RESULT_CHARS`, and audio, files and links are described in a line (`describe_media`), because a tool message
cannot carry them to every model. Images go to the user instead, by the path the chart tool's pictures take: each
is checked and re-encoded (media.images), kept in the conversation's file store and named in the ToolMessage's
artifact, so the bot shows it between the text before the tool and the answer after it; the model reads that an
image was shown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import anyio
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from langchain_mcp_adapters.interceptors import MCPToolCallRequest
from langchain_mcp_adapters.sessions import create_session
from langchain_mcp_adapters.tools import load_mcp_tools
from mcp import ClientSession, McpError
from mcp.types import CONNECTION_CLOSED, CallToolResult, ContentBlock, ErrorData, ImageContent, TextContent

from media.errors import Unreadable
from media.images import prepare_image
from media.store import FileStore
from tools.mcp_config import ServerConfig

__all__ = ["MAX_RESULT_CHARS", "McpServers", "describe_media"]

logger = logging.getLogger(__name__)

MAX_RESULT_CHARS = 8_000
"""Characters of text one MCP tool result may give the model (as much as a web_fetch page)."""
CONNECT_TIMEOUT = 30.0
"""Seconds to start a server and list its tools, unless its `timeout` says otherwise."""
RECONNECT_WAIT = 20.0
"""Seconds a call waits for a server that is being restarted before it is told the server is unavailable."""
PING_INTERVAL = 5.0
"""While a call to an HTTP server runs, it is pinged this often; no answer within as long means it is gone."""
FIRST_RETRY = 1.0
MAX_RETRY = 60.0
TRUNCATED_MARK = "[truncated]"
MAX_PICTURES = 4
"""Images of one result shown to the user; more are described in a line, like audio and files."""
MAX_PICTURE_BYTES = 10 * 1024 * 1024
"""Largest image (decoded) a result may show; a larger one is described instead."""
SHOWN = "[image: shown to the user]"
_SESSION_GONE = frozenset({CONNECTION_CLOSED, 32600})
"""Error codes that mean the session is over: the SDK's "Connection closed", and its "Session terminated" when an
HTTP server no longer knows the session (it was restarted)."""
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")
_MAX_TOOL_NAME = 64  # OpenAI's limit on function names


class McpUnavailable(Exception):
    """The server of the tool is down (the message, for the model, says so and that it is being restarted)."""


class McpServer:
    """One server's session, held open by a supervisor task and reopened when a call finds it broken.

    Args:
        config: The server's entry in MCP_CONFIG.
        files: The conversations' file store, where images in results are kept to be shown (None: described).
        on_listed: Called when a server that was down at start-up comes up and its tools are known.
    """

    def __init__(
        self, config: ServerConfig, files: FileStore | None = None, on_listed: Callable[[], None] = lambda: None
    ) -> None:
        self.config = config
        self.tools: list[BaseTool] = []
        """The server's tools (the allowlist applied), once it answered; they stay through restarts."""
        self._files = files
        self._on_listed = on_listed
        self._listed = asyncio.Event()
        self._tried = asyncio.Event()  # the first attempt to connect is over, one way or the other
        self._started = False
        self._failure = ""
        self.state = "not started"
        """"running" or "restarting (why)": what the model is told when the server is unavailable."""
        self._session: ClientSession | None = None
        self._ended = asyncio.Event()  # set when `_session` has ended
        self._up = asyncio.Event()
        self._broken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connect_timeout(self) -> float:
        return self.config.timeout or CONNECT_TIMEOUT

    @property
    def listed(self) -> bool:
        """Whether the server has answered once and its tools are known (`tools`)."""
        return self._listed.is_set()

    async def start(self) -> None:
        """Start the supervisor and wait for the tools, at most `connect_timeout`. A server that cannot be started
        or reached by then is named in one log line and left to come up in the background: its tools appear when
        it does (`on_listed`), and until then /tools says it is unavailable."""
        self._task = asyncio.create_task(self._supervise(), name=f"mcp-{self.config.name}")
        waits = [asyncio.ensure_future(self._listed.wait()), asyncio.ensure_future(self._tried.wait())]
        try:
            await asyncio.wait(waits, timeout=self.connect_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if not self.listed:
            reason = self._failure or f"no answer within {self.connect_timeout:g} s"
            self.state = f"unavailable ({reason})"
            logger.warning("%s; starting without its tools, trying again in the background", self._start_failed(reason))
        self._started = True

    async def stop(self) -> None:
        """End the session (a stdio server's process with it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _supervise(self) -> None:
        retry = 0.0  # a session that was up and broke is reopened at once; failures after that back off
        while True:
            ended = asyncio.Event()
            try:
                connection = {**self.config.connection(), "session_kwargs": {"message_handler": self._on_message}}
                async with create_session(connection) as session:  # type: ignore[arg-type]
                    async with asyncio.timeout(self.connect_timeout):  # (an HTTP server that never answers)
                        await session.initialize()
                        if not self.listed:
                            self.tools = await self._load_tools(session)
                    self._session, self._ended, self.state = session, ended, "running"
                    self._up.set()
                    if not self.listed:
                        self._listed.set()
                        if self._started:  # it came up after the bot started: the agent takes its tools now
                            logger.info("MCP server %s is up; its tools are offered now", self.config.name)
                            self._on_listed()
                    retry = 0.0
                    await self._broken.wait()
                    self.state = "restarting (its connection broke)"
            except Exception as exc:
                self._failure = _describe(exc)
                if self.listed:
                    self.state = f"restarting ({self._failure})"
                    logger.warning("MCP server %s: %s", self.config.name, self.state)
                else:
                    self.state = f"unavailable ({self._failure})"
                    logger.info("MCP server %s: still %s", self.config.name, self.state)
            finally:
                ended.set()  # calls still waiting on this session fail now instead of hanging
                self._session = None
                self._up.clear()
                self._broken.clear()
                self._tried.set()
            if retry:
                logger.info("MCP server %s: reconnecting in %g s", self.config.name, retry)
                await asyncio.sleep(retry)
            retry = min(max(retry * 2, FIRST_RETRY), MAX_RETRY)

    async def _load_tools(self, session: ClientSession) -> list[BaseTool]:
        tools = await load_mcp_tools(session, server_name=self.config.name, tool_interceptors=[self._route])
        allowed = self.config.tools
        if allowed is not None:
            missing = allowed - {tool.name for tool in tools}
            if missing:
                logger.warning("MCP server %s has no tool(s) %s", self.config.name, ", ".join(sorted(missing)))
            tools = [tool for tool in tools if tool.name in allowed]
        return tools

    async def _route(
        self, request: MCPToolCallRequest, handler: Callable[[MCPToolCallRequest], Awaitable[Any]]
    ) -> CallToolResult | ToolMessage:
        """Call the tool on the session open now (not the one the tool was listed on), as text for the model."""
        session, ended = await self._live_session()
        try:
            # A stdio server that dies closes its pipe, which ends the call at once; only HTTP needs the pings.
            ping = self.config.transport != "stdio"
            result = await _unless_ended(session, session.call_tool(request.name, request.args), ended, ping=ping)
        except (McpError, anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream) as exc:
            if isinstance(exc, McpError) and exc.error.code not in _SESSION_GONE:
                raise  # the server answered: a protocol-level error about this call, the session is fine
            self._mark_broken(session)
            raise McpUnavailable(
                f"The MCP server '{self.config.name}' stopped responding ({_describe(exc)}). It is being "
                "restarted; its tools may work again in a moment."
            ) from None
        return await self._with_pictures(request, result)

    async def _with_pictures(self, request: MCPToolCallRequest, result: CallToolResult) -> CallToolResult | ToolMessage:
        """The result as text for the model, and its images as pictures for the user (`ToolMessage.artifact`, the
        path the chart tool's pictures take), where the call came from a conversation and the bot keeps files."""
        runtime = request.runtime
        call_id = getattr(runtime, "tool_call_id", None)
        config = getattr(runtime, "config", None) or {}
        thread = str((config.get("configurable") or {}).get("thread_id") or "")
        images = [block for block in result.content if isinstance(block, ImageContent)][:MAX_PICTURES]
        if result.isError or not images or self._files is None or not call_id or not thread:
            return for_the_model(result)
        pictures = await asyncio.to_thread(_store_pictures, self._files, thread, images)
        shown = {id(block) for block, ref in zip(images, pictures, strict=True) if ref is not None}
        blocks = [TextContent(type="text", text=SHOWN) if id(b) in shown else b for b in result.content]
        text = for_the_model(result.model_copy(update={"content": blocks}))
        caption = f"{self.config.name}: {request.name}"
        return ToolMessage(
            content="\n".join(block.text for block in text.content if isinstance(block, TextContent)),
            tool_call_id=call_id,
            artifact={"pictures": [{"ref": ref, "caption": caption} for ref in pictures if ref is not None]},
        )

    async def _on_message(self, message: object) -> None:
        """The session's message handler: an exception here is the transport failing (an HTTP request that found
        no server); the requests waiting on it would wait for ever, so the session is replaced."""
        if isinstance(message, Exception) and self._session is not None:
            logger.warning("MCP server %s: transport failed: %s", self.config.name, _describe(message))
            self._mark_broken(self._session)

    async def _live_session(self) -> tuple[ClientSession, asyncio.Event]:
        try:
            async with asyncio.timeout(RECONNECT_WAIT):
                while self._session is None:
                    await self._up.wait()
        except TimeoutError:
            raise McpUnavailable(
                f"The MCP server '{self.config.name}' is unavailable right now: {self.state}. Its tools "
                "cannot be used until it is back; tell the user if that matters for the answer."
            ) from None
        return self._session, self._ended

    def _mark_broken(self, session: ClientSession) -> None:
        if session is self._session:  # (a late failure on the old session must not restart the new one)
            self._session = None  # calls from now on wait for the new session
            self._up.clear()
            self._broken.set()

    def _start_failed(self, reason: str) -> str:
        where = self.config.command if self.config.transport == "stdio" else self.config.url
        return f"MCP server '{self.config.name}' ({where}) could not be started: {reason}"


class McpServers:
    """Every server in MCP_CONFIG, opened together for the bot's lifetime.

    Args:
        configs: The servers (`tools.mcp_config.load_mcp_config`).
        reserved: Names of the bot's own tools: an MCP tool with one of these names is prefixed with its server.
    """

    def __init__(
        self, configs: Sequence[ServerConfig], *, reserved: Iterable[str] = (), files: FileStore | None = None
    ) -> None:
        self.servers = [McpServer(config, files, on_listed=self._changed) for config in configs]
        self._reserved = set(reserved)
        self._listeners: list[Callable[[], None]] = []

    def current(self) -> list[BaseTool]:
        """The tools of every server that has answered, named for the model."""
        up = [server for server in self.servers if server.listed]
        return name_tools(up, [server.tools for server in up], reserved=self._reserved)

    def unavailable(self) -> dict[str, str]:
        """The servers that have not answered since the bot started, each with why."""
        return {server.config.name: server.state for server in self.servers if not server.listed}

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on this loop) whenever `current` changes: a server that was down came up."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[McpServers]:
        """Start every server (waiting for each at most its connect timeout) and yield these servers, whose
        `current` tools the agent offers; stop the servers on exit. A server that is down does not stop start-up."""
        try:
            await asyncio.gather(*(server.start() for server in self.servers))
            yield self
        finally:
            for server in self.servers:
                await server.stop()


async def _unless_ended(
    session: ClientSession, call: Awaitable[CallToolResult], ended: asyncio.Event, *, ping: bool
) -> CallToolResult:
    """`call`, or a "connection closed" error as soon as its session ends or (with `ping`) stops answering pings.

    An HTTP server that dies while it answers leaves the SDK's request waiting for ever (the response stream just
    ends); a ping every `PING_INTERVAL` seconds of a long call finds out, and its failure closes the session.
    """
    calling = asyncio.ensure_future(call)
    watching = asyncio.ensure_future(ended.wait())
    pinging = asyncio.ensure_future(_until_ping_fails(session) if ping else asyncio.Event().wait())
    try:
        await asyncio.wait({calling, watching, pinging}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (calling, watching, pinging):
            task.cancel()
        await asyncio.gather(calling, watching, pinging, return_exceptions=True)
    if calling.cancelled():
        raise McpError(ErrorData(code=CONNECTION_CLOSED, message="Connection closed"))
    return calling.result()


async def _until_ping_fails(session: ClientSession) -> None:
    while True:
        await asyncio.sleep(PING_INTERVAL)
        try:
            async with asyncio.timeout(PING_INTERVAL):
                await session.send_ping()
        except Exception:
            return


def name_tools(
    servers: Sequence[McpServer], listed: Sequence[Sequence[BaseTool]], *, reserved: set[str]
) -> list[BaseTool]:
    """Give each tool a name the model can call and carry what the bot needs to know about it in its metadata.

    A tool keeps its own name unless another server or the bot has one like it; then it is called
    `<server>_<tool>`. Names are cut to what OpenAI accepts (letters, digits, _ and -, at most 64).

    Metadata set: `mcp_server`, `mcp_tool` (the server's name for it), `require_approval` (bool) and `timeout`
    (seconds per call, or None for TOOL_TIMEOUT).
    """
    counts = Counter(_TOOL_NAME.sub("_", tool.name) for tools in listed for tool in tools)
    named: list[BaseTool] = []
    taken = set(reserved)
    for server, tools in zip(servers, listed, strict=True):
        for tool in tools:
            own = _TOOL_NAME.sub("_", tool.name)
            name = own if counts[own] == 1 and own not in reserved else f"{server.config.name}_{own}"
            name = _TOOL_NAME.sub("_", name)[:_MAX_TOOL_NAME]
            while name in taken:
                name = name[: _MAX_TOOL_NAME - 1] + "_"
            taken.add(name)
            metadata = {
                **(tool.metadata or {}),
                "mcp_server": server.config.name,
                "mcp_tool": tool.name,
                "require_approval": server.config.needs_approval(tool.name),
                "timeout": server.config.timeout,
            }
            named.append(tool.model_copy(update={"name": name, "metadata": metadata}))
    return named


def for_the_model(result: CallToolResult) -> CallToolResult:
    """The result as text: media described in a line each, the text cut at `MAX_RESULT_CHARS`."""
    parts = [block.text if isinstance(block, TextContent) else describe_media(block) for block in result.content]
    text = "\n".join(parts) if parts else "(the tool returned nothing)"
    if len(text) > MAX_RESULT_CHARS:
        text = text[: MAX_RESULT_CHARS - len(TRUNCATED_MARK) - 2].rstrip() + "\n\n" + TRUNCATED_MARK
    return result.model_copy(update={"content": [TextContent(type="text", text=text)]})


def _store_pictures(files: FileStore, thread: str, images: Sequence[ImageContent]) -> list[str | None]:
    """Each image checked and re-encoded (media.images: bounded, no metadata) into the conversation's file store;
    None for one that is not an image, too large or damaged (it is then described, not shown). Blocking."""
    refs: list[str | None] = []
    for image in images:
        try:
            if len(image.data) > MAX_PICTURE_BYTES * 4 // 3 + 4:
                raise Unreadable("too large")
            prepared = prepare_image(base64.b64decode(image.data, validate=True), "an MCP tool's image")
            refs.append(files.put(thread, prepared.data, prepared.suffix))
        except (Unreadable, ValueError, OSError) as exc:
            logger.info("an MCP tool's image is not shown: %s", exc)
            refs.append(None)
    return refs


def describe_media(block: ContentBlock) -> str:
    """One line about content a tool message cannot carry as it is (a picture, audio, a file or a link)."""
    kind = getattr(block, "type", "content")
    mime = getattr(block, "mimeType", None) or getattr(getattr(block, "resource", None), "mimeType", None)
    uri = getattr(block, "uri", None) or getattr(getattr(block, "resource", None), "uri", None)
    data = getattr(block, "data", None) or getattr(getattr(block, "resource", None), "blob", None)
    details = [str(mime)] if mime else []
    if data:
        details.append(f"about {len(data) * 3 // 4:,} bytes")
    if uri:
        details.append(str(uri))
    resource_text = getattr(getattr(block, "resource", None), "text", None)
    if resource_text is not None:
        return str(resource_text)
    return f"[{kind}{': ' + ', '.join(details) if details else ''}; not shown in this chat]"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
