"""Approval before a tool acts: the run pauses before a gated tool call and goes on once a person decided.

A tool is gated when its `metadata["require_approval"]` is true (MCP_CONFIG's `require_approval`, see
`tools.mcp_servers.name_tools`; `web_fetch` with WEB_FETCH_REQUIRE_APPROVAL). The pause is LangChain's
`HumanInTheLoopMiddleware` in its batched mode: after a model step that asks for a gated tool it raises a LangGraph
`interrupt` listing every gated call of the step, before any tool of the step runs, and the checkpoint keeps the
paused run. `Agent.resume` continues it from the checkpoint with one decision for all of them, in this process or
after a restart. A denied call is answered with a tool result saying the user declined, so the model answers
without it; the step's other calls run either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain.agents.middleware import HumanInTheLoopMiddleware, InterruptOnConfig
from langchain_core.tools import BaseTool

DENIED = "the user declined it"
"""Why a call was not run, as the model reads it, unless a more precise reason is given."""


def needs_approval(tool: BaseTool) -> bool:
    """Whether calls to `tool` wait for a person's approval."""
    return bool((tool.metadata or {}).get("require_approval"))


def approval_gate(tools: Sequence[BaseTool]) -> HumanInTheLoopMiddleware | None:
    """The middleware that pauses before the gated tools among `tools`; None when no tool is gated."""
    gated: dict[str, bool | InterruptOnConfig] = {
        tool.name: InterruptOnConfig(allowed_decisions=["approve", "reject"]) for tool in tools if needs_approval(tool)
    }
    return HumanInTheLoopMiddleware(gated, edit_notice=None) if gated else None


def decisions(count: int, *, approve: bool, reason: str = DENIED) -> dict[str, Any]:
    """The resume value for a paused step with `count` gated calls: one decision for all of them."""
    decision: dict[str, Any] = {"type": "approve"} if approve else {"type": "reject", "message": reason}
    return {"decisions": [decision] * count}


def requested_calls(interrupts: Sequence[Any]) -> list[dict[str, Any]]:
    """The calls a pause waits on (`{"name": ..., "args": ...}`), from LangGraph's `Interrupt` values."""
    calls: list[dict[str, Any]] = []
    for pending in interrupts:
        value = getattr(pending, "value", None)
        requests = value.get("action_requests") if isinstance(value, dict) else None
        for request in requests or []:
            if isinstance(request, dict) and isinstance(request.get("name"), str):
                calls.append({"name": request["name"], "args": dict(request.get("args") or {})})
    return calls
