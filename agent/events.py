"""What an agent run reports to whoever shows the answer.

`agent.run` turns LangGraph's stream into this small closed set so that the bot runtime never touches LangChain
message types. The order within one run is: any number of `TextDelta`; then, for each model step that asks for
tools, the `ToolCall`s of that step (all of them, *before* any tool runs), more `TextDelta`s are impossible until
the matching `ToolResult`s have arrived; and exactly one terminal `Done` or `Failed` last. A run that pauses for
approval ends with `ApprovalNeeded` and `Done`; `Agent.resume` then streams the rest the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UserContent = str | list[str | dict[str, Any]]
"""The user's turn as the model gets it: a message, or OpenAI content parts (`{"type": "text", ...}` and
`{"type": "image_url", ...}` parts, whose URLs may be references into the conversation's file store)."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's Markdown, in order; concatenating all of them gives the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asked for a tool. Emitted before the tool starts, so the caller can finish the text so far.

    `call_id` names the call within its run by model step and position ("2.0": the second step that used tools,
    its first call), not by the server's id, which may repeat across steps and turns or be missing.
    """

    call_id: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    approved: bool = False
    """A person approved it (a resumed run's first calls): it runs now. A call to a gated tool that is not
    approved is followed by `ApprovalNeeded` instead of its result."""


@dataclass(frozen=True, slots=True)
class Picture:
    """An image a tool made for the user: `ref` names it in the conversation's file store (media.store)."""

    ref: str
    caption: str = ""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool finished. `ok` is False when it raised, timed out or was unknown; `content` is what the model sees;
    `pictures` are images the tool made for the user (a chart), shown before the answer continues.

    `call_id` is the one of its `ToolCall`.
    """

    call_id: str
    name: str
    content: str
    ok: bool = True
    pictures: tuple[Picture, ...] = ()


@dataclass(frozen=True, slots=True)
class ApprovalNeeded:
    """The run paused before `calls` (tools that need a person's approval); `Done` follows. The run goes on only
    with `Agent.resume`, with one decision for all of them (see agent/approval.py)."""

    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts summed over every model call of the run (0 where the model did not report them)."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Done:
    """The run ended normally."""

    usage: Usage = Usage()


@dataclass(frozen=True, slots=True)
class Failed:
    """The run ended early. `notice` is short, safe to show a user (no secrets, no traceback); `kind` labels the
    cause for the metrics (`agent.errors.failure_kind`, or `history` / `silent` / `stalled`)."""

    notice: str
    kind: str = "other"


AgentEvent = TextDelta | ToolCall | ToolResult | ApprovalNeeded | Done | Failed
