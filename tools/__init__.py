"""The agent's tools, one module each."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.tools import BaseTool

# Modules, not the tool objects: `from tools.calculator import calculator` here would rebind the attribute
# `tools.calculator` from the module to the tool and confuse `import tools.calculator` and monkeypatching.
from tools import calculator, clock, web_fetch, web_search

__all__ = ["default_tools"]


def default_tools(
    *, allow_private_fetch: bool = False, search: Sequence[web_search.SearchBackend] = ()
) -> list[BaseTool]:
    """The tools the agent is built with (MCP servers' tools come on top, see `tools.mcp_servers`).

    Args:
        allow_private_fetch: Let `web_fetch` reach loopback and private networks. Off by default because a
            model can be talked into fetching any URL; only for a bot meant to read an intranet.
        search: The web search backends, in the order they are tried; none: no `web_search` tool.

    Returns:
        A new list each call (callers may extend it): calculator, current_time, web_fetch, and web_search when
        a backend is given.
    """
    found = web_search.make_web_search(search)
    return [
        calculator.calculator,
        clock.current_time,
        web_fetch.make_web_fetch(allow_private=allow_private_fetch),
        *([found] if found is not None else []),
    ]
