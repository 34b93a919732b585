"""Noticing a model that goes quiet: a first-token deadline per model step and an idle deadline between chunks.

The HTTP client's own read timeout is no use for this: it is retried by the OpenAI SDK behind our back (a silent
server once got a notice only after 362 s and two reconnects), and it cannot tell "still loading the model" from
"stopped half-way". Here the run loop asks `deadline()` before waiting for the next stream item and gives up when
it passes; the reply then ends with the text so far and the notice of `agent.errors.silence_notice`.

While tools run there is no deadline (`TOOL_TIMEOUT` bounds them). A chunk with nothing in it (the role header,
a reasoning delta LangChain does not surface) is a sign of life, not a first token: it keeps the step alive for
another idle period but does not end the first-token wait early.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessageChunk

from agent.graph import MODEL_NODE


class SilenceWatch:
    """The deadlines of one run, on the event loop's clock.

    Args:
        first_token: MODEL_FIRST_TOKEN_TIMEOUT: seconds a model step may take to send its first words or tool call.
        idle: MODEL_IDLE_TIMEOUT: seconds the model may stay silent once it has started.
        now: The loop time the run starts at (its first model step starts then).
    """

    def __init__(self, first_token: float, idle: float, now: float) -> None:
        self.first_token = first_token
        self.idle = idle
        self.started = False  # the current model step has sent content
        self._step_start = now
        self._alive = now  # the last sign of life of the current model step
        self._tools = False  # tools were running after the last item

    def deadline(self, *, tools_running: bool) -> float | None:
        """The loop time past which the model counts as silent; None while tools run."""
        if tools_running:
            return None
        if self.started:
            return self._alive + self.idle
        if self._alive > self._step_start:  # signs of life without content yet: whichever is later
            return max(self._step_start + self.first_token, self._alive + self.idle)
        return self._step_start + self.first_token

    def saw(self, mode: str, payload: Any, now: float, *, tools_running: bool) -> None:
        """Account for one stream item (call after the translator has read it)."""
        if tools_running or self._tools:  # the next model step's clocks start when the last tool is done
            self._tools = tools_running
            self.started = False
            self._step_start = self._alive = now
            return
        if mode != "messages":
            return
        message, metadata = payload
        if isinstance(message, AIMessageChunk) and metadata.get("langgraph_node") == MODEL_NODE:
            self._alive = now
            if message.text or message.tool_call_chunks:
                self.started = True
