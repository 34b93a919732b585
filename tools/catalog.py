"""What the bot says about its tools: the name shown while one runs, and the /tools list.

Both are read from the tools themselves, so they can never disagree with what the model is offered: an MCP tool
carries its server and its own name in `metadata` (see `tools.mcp_servers.name_tools`); any other tool is the
bot's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from langchain_core.tools import BaseTool

from tools.web_search import NO_BACKEND_HINT

MAX_DESCRIPTION_CHARS = 120


def tool_label(tool: BaseTool) -> str:
    """How a running tool is named to the user: "github: create_issue" for an MCP tool, else its name."""
    metadata = tool.metadata or {}
    server = metadata.get("mcp_server")
    return f"{server}: {metadata.get('mcp_tool', tool.name)}" if server else tool.name


def describe_tools(tools: Sequence[BaseTool], *, unavailable: Mapping[str, str] | None = None) -> str:
    """The /tools answer in Markdown: the bot's own tools, then each MCP server's, one line per tool; a server that
    is down (`unavailable`: its name -> why) is listed as such, with its tools to come when it answers."""
    groups: dict[str | None, list[BaseTool]] = {None: []}
    for tool in tools:
        groups.setdefault((tool.metadata or {}).get("mcp_server"), []).append(tool)
    sections = []
    for server, members in groups.items():
        heading = "**Built in**" if server is None else f"**MCP server `{server}`**"
        lines = [f"- `{tool.name}`: {_summary(tool)}" for tool in members] or ["- (none)"]
        sections.append("\n".join([heading, *lines]))
    for server in unavailable or {}:  # (why is in the log: an error text is no reading for a chat)
        sections.append(f"**MCP server `{server}`**\n- unavailable right now; its tools come when it answers")
    if not any(tool.name == "web_search" for tool in tools):
        sections.append(NO_BACKEND_HINT)
    return "Tools I can use now:\n\n" + "\n\n".join(sections)


def _summary(tool: BaseTool) -> str:
    """The first sentence of the description, one line, cut to fit a chat line."""
    text = " ".join((tool.description or "").split())
    first = text.split(". ", 1)[0].rstrip(".")
    if len(first) > MAX_DESCRIPTION_CHARS:
        first = first[: MAX_DESCRIPTION_CHARS - 1].rstrip() + "…"
    return first or "(no description)"
