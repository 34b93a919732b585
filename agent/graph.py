"""The LangGraph agent: `create_agent` with our guard rails, and the run settings that go with it."""

from __future__ import annotations

from collections.abc import Sequence

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from agent.budget import TokenBudget
from agent.call_ids import CallIds
from agent.config import AgentConfig
from agent.middleware import StepLimit, ToolGuard

MODEL_NODE = "model"
TOOLS_NODE = "tools"


def build_graph(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    config: AgentConfig,
    checkpointer: BaseCheckpointSaver | None,
) -> CompiledStateGraph:
    """Compile the agent graph.

    Args:
        model: The chat model (ChatOpenAI or the demo model); it must support `bind_tools`.
        tools: The tools the model may call, passed in so `agent` never depends on who assembles them.
        config: Supplies the system prompt, the step limit, the tool timeout and the token budget.
        checkpointer: Where conversations are remembered, keyed by `thread_id`; None keeps nothing.

    Returns:
        The compiled graph, with nodes `model` and `tools` (and the middleware's own nodes).
    """
    return create_agent(
        model,
        list(tools),
        system_prompt=config.system_prompt,
        checkpointer=checkpointer,
        middleware=[
            CallIds(),  # outermost: every other middleware and the stored history see calls with ids
            StepLimit(config.step_limit),
            ToolGuard(config.tool_timeout, [tool.name for tool in tools]),
            # Innermost, so it measures the request exactly as it goes out (StepLimit may rewrite it).
            TokenBudget(config.token_budget),
        ],
    )


def recursion_limit(step_limit: int) -> int:
    """LangGraph's superstep budget for one run, set so that StepLimit always ends the run first.

    One tool step takes three supersteps (model, ToolGuard.after_model, tools) and the final answer two, so
    `3 * step_limit + 2` would do; the margin leaves room for middleware added later. The limit still matters
    as a backstop: it turns a bug that loops into an error instead of an endless bill.
    """
    return 4 * (step_limit + 1) + 20
