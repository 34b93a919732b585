"""The agent as the settings describe it: the bot's own tools, web search, and the MCP servers' tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from agent.thread import AgentThread, OpenTools, open_agent_thread
from bot.settings import Settings
from media.store import FileStore
from tools import default_tools


@asynccontextmanager
async def open_bot_agent(settings: Settings) -> AsyncIterator[AgentThread]:
    """Open the agent with every tool the settings give it, for the lifetime of the block.

    The MCP servers are started on the agent's loop, which is the loop that calls their tools. The MCP SDK is
    imported only when there are servers: it adds seconds to start-up on a busy machine.

    Raises:
        SettingsError: MCP_CONFIG is malformed.
        MemoryUnavailable: The conversation store cannot be opened.
    """
    files = FileStore(settings.agent_config().files_dir)
    tools = default_tools(
        allow_private_fetch=settings.web_fetch_allow_private,
        fetch_approval=settings.web_fetch_require_approval,
        search=settings.search_backends,
        files=files,
    )
    open_tools: OpenTools | None = None
    if settings.mcp_servers:
        from tools.mcp_servers import McpServers

        open_tools = McpServers(settings.mcp_servers, reserved=[tool.name for tool in tools], files=files).open
    async with open_agent_thread(settings.agent_config(), tools, open_tools=open_tools) as agent:
        yield agent
