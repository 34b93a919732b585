"""The agent's tools, one module each."""

from __future__ import annotations

from langchain_core.tools import BaseTool

# Modules, not the tool objects: `from tools.calculator import calculator` here would rebind the attribute
# `tools.calculator` from the module to the tool and confuse `import tools.calculator` and monkeypatching.
from media.store import FileStore
from tools import calculator, chart, clock, web_fetch

__all__ = ["default_tools"]


def default_tools(*, allow_private_fetch: bool = False, files: FileStore | None = None) -> list[BaseTool]:
    """The tools the agent is built with.

    Args:
        allow_private_fetch: Let `web_fetch` reach loopback and private networks. Off by default because a
            model can be talked into fetching any URL; only for a bot meant to read an intranet.
        files: The conversations' file store (the agent's, `AgentConfig.files_dir`), where `chart` puts its
            pictures for the bot to send; without one there is no `chart`.

    Returns:
        A new list each call (callers may extend it): calculator, current_time, web_fetch, and chart.
    """
    found = [
        calculator.calculator,
        clock.current_time,
        web_fetch.make_web_fetch(allow_private=allow_private_fetch),
    ]
    if files is not None:
        found.append(chart.make_chart(files))
    return found
