"""The agent's tools, one module each."""

from __future__ import annotations

from langchain_core.tools import BaseTool

# Modules, not the tool objects: `from tools.calculator import calculator` here would rebind the attribute
# `tools.calculator` from the module to the tool and confuse `import tools.calculator` and monkeypatching.
from tools import calculator, clock, web_fetch

__all__ = ["default_tools"]


def default_tools(*, allow_private_fetch: bool = False) -> list[BaseTool]:
    """The tools the agent is built with.

    Args:
        allow_private_fetch: Let `web_fetch` reach loopback and private networks. Off by default because a
            model can be talked into fetching any URL; only for a bot meant to read an intranet.

    Returns:
        A new list each call (callers may extend it): calculator, current_time, web_fetch.
    """
    return [
        calculator.calculator,
        clock.current_time,
        web_fetch.make_web_fetch(allow_private=allow_private_fetch),
    ]
