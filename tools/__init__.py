"""The agent's tools, one module each."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.tools import BaseTool

# Modules, not the tool objects: `from tools.calculator import calculator` here would rebind the attribute
# `tools.calculator` from the module to the tool and confuse `import tools.calculator` and monkeypatching.
from media.store import FileStore
from tools import calculator, chart, clock, web_fetch, web_search

__all__ = ["default_tools"]


def default_tools(
    *,
    allow_private_fetch: bool = False,
    fetch_approval: bool = False,
    search: Sequence[web_search.SearchBackend] = (),
    files: FileStore | None = None,
) -> list[BaseTool]:
    """The tools the agent is built with (MCP servers' tools come on top, see `tools.mcp_servers`).

    Args:
        allow_private_fetch: Let `web_fetch` reach loopback and private networks. Off by default because a
            model can be talked into fetching any URL; only for a bot meant to read an intranet.
        fetch_approval: Mark `web_fetch` as needing a person's approval before each call (`require_approval`
            in its metadata, as MCP tools carry it; see agent/approval.py).
        search: The web search backends, in the order they are tried; none: no `web_search` tool.
        files: The conversations' file store (the agent's, `AgentConfig.files_dir`), where `chart` puts its
            pictures for the bot to send; without one there is no `chart`.

    Returns:
        A new list each call (callers may extend it): calculator, current_time, web_fetch, web_search when a
        backend is given, and chart when a file store is.
    """
    search_tool = web_search.make_web_search(search)
    fetch = web_fetch.make_web_fetch(allow_private=allow_private_fetch)
    if fetch_approval:
        fetch.metadata = {**(fetch.metadata or {}), "require_approval": True}
    return [
        calculator.calculator,
        clock.current_time,
        fetch,
        *([search_tool] if search_tool is not None else []),
        *([chart.make_chart(files)] if files is not None else []),
    ]
