"""The LangGraph agent: `create_agent` with our guard rails, and the run settings that go with it."""

from __future__ import annotations

from collections.abc import Sequence

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from agent.approval import approval_gate
from agent.budget import TokenBudget
from agent.call_ids import CallIds
from agent.config import AgentConfig
from agent.middleware import StepLimit, ToolGuard
from agent.pictures import Pictures
from media.store import FileStore

MODEL_NODE = "model"
TOOLS_NODE = "tools"


def build_graph(
    model: BaseChatModel,
    tools: Sequence[BaseTool],
    config: AgentConfig,
    checkpointer: BaseCheckpointSaver | None,
    files: FileStore | None = None,
) -> CompiledStateGraph:
    """Compile the agent graph.

    Args:
        model: The chat model (ChatOpenAI or the demo model); it must support `bind_tools`.
        tools: The tools the model may call, passed in so `agent` never depends on who assembles them.
        config: Supplies the system prompt, the step limit, the tool timeout and the token budget.
        checkpointer: Where conversations are remembered, keyed by `thread_id`; None keeps nothing.
        files: Where the images of the user's turns are kept (default: `config.files_dir`).

    Returns:
        The compiled graph, with nodes `model` and `tools` (and the middleware's own nodes).
    """
    gate = approval_gate(tools)
    return create_agent(
        model,
        list(tools),
        system_prompt=config.system_prompt,
        checkpointer=checkpointer,
        middleware=[
            CallIds(),  # outermost: every other middleware and the stored history see calls with ids
            StepLimit(config.step_limit),
            ToolGuard(config.tool_timeout, [tool.name for tool in tools]),
            # Pauses after a model step that asks for a gated tool, before any tool of the step runs.
            *([gate] if gate is not None else []),
            # Inside StepLimit, so it measures the request as it goes out (StepLimit may rewrite it); an image
            # counts the same whether it is still a reference or already its data.
            TokenBudget(config.token_budget),
            # Innermost: only the images of the turns that fit the budget are read from disk.
            Pictures(files or FileStore(config.files_dir), vision=config.vision, model=config.model),
        ],
    )


def recursion_limit(step_limit: int) -> int:
    """LangGraph's superstep budget for one run, set so that StepLimit always ends the run first.

    One tool step takes three supersteps (model, ToolGuard.after_model, tools) and the final answer two, so
    `3 * step_limit + 2` would do; the margin leaves room for middleware added later. The limit still matters
    as a backstop: it turns a bug that loops into an error instead of an endless bill.
    """
    return 4 * (step_limit + 1) + 20
