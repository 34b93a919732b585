"""The LangGraph agent: model factory (ChatOpenAI or the offline demo model), graph and run loop.

The bot uses `open_agent(config, tools)` and `Agent.run(text, thread_id=...)`, and sees only the events of
`agent.events`; nothing here imports `bot` or `channels`.
"""

from agent.config import AgentConfig
from agent.events import AgentEvent, Done, Failed, TextDelta, ToolCall, ToolResult, Usage
from agent.memory import MemoryUnavailable
from agent.run import Agent, open_agent

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentEvent",
    "Done",
    "Failed",
    "MemoryUnavailable",
    "TextDelta",
    "ToolCall",
    "ToolResult",
    "Usage",
    "open_agent",
]
