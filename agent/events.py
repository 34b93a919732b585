"""What an agent run reports to whoever shows the answer.

`agent.run` turns LangGraph's stream into this small closed set so that the bot runtime never touches LangChain
message types. The order within one run is: any number of `TextDelta`; then, for each model step that asks for
tools, the `ToolCall`s of that step (all of them, *before* any tool runs), more `TextDelta`s are impossible until
the matching `ToolResult`s have arrived; and exactly one terminal `Done` or `Failed` last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A tool finished. `ok` is False when it raised, timed out or was unknown; `content` is what the model sees.

    `call_id` is the one of its `ToolCall`.
    """

    call_id: str
    name: str
    content: str
    ok: bool = True


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
    """The run ended early. `notice` is short, safe to show a user (no secrets, no traceback)."""

    notice: str


AgentEvent = TextDelta | ToolCall | ToolResult | Done | Failed
