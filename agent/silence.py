"""Noticing a model that goes quiet: a first-token deadline per model call and an idle deadline between chunks.

The HTTP client's own read timeout is no use for this: the OpenAI SDK retries it behind our back (a silent server
once got a notice only after 362 s and two reconnects), and it cannot tell "still loading the model" from "stopped
half-way". Here the run loop asks `deadline()` before waiting for the next stream item and gives up when it passes;
the reply then ends with the text so far and the notice of `agent.errors.silence_notice`.

Only the model's own time counts: from the start of the `model` task (LangGraph's `tasks` stream) to the last
chunk of its response. Tools (bounded by `TOOL_TIMEOUT`) and the graph's bookkeeping (checkpoint writes, which
queue up behind each other when a hundred replies end at once) are never mistaken for a silent model. A chunk with
nothing in it (the role header, a reasoning delta LangChain does not surface) is a sign of life, not a first
token: it keeps the call alive for another idle period but does not end the first-token wait early.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessageChunk

from agent.graph import MODEL_NODE


class SilenceWatch:
    """The deadlines of one run, on the event loop's clock.

    Args:
        first_token: MODEL_FIRST_TOKEN_TIMEOUT: seconds a model call may take to send its first words or tool call.
        idle: MODEL_IDLE_TIMEOUT: seconds the model may stay silent once it has started.
    """

    def __init__(self, first_token: float, idle: float) -> None:
        self.first_token = first_token
        self.idle = idle
        self.started = False  # the model call in progress has sent content
        self._streaming = False  # a model call is in progress and its response has not ended
        self._call_start = 0.0
        self._alive = 0.0  # the last sign of life of the model call in progress

    def deadline(self) -> float | None:
        """The loop time past which the model counts as silent; None while no model call is waited for."""
        if not self._streaming:
            return None
        if self.started:
            return self._alive + self.idle
        if self._alive > self._call_start:  # signs of life without content yet: whichever is later
            return max(self._call_start + self.first_token, self._alive + self.idle)
        return self._call_start + self.first_token

    def saw(self, mode: str, payload: Any, now: float) -> None:
        """Account for one item of a stream with modes `messages` and `tasks`."""
        if mode == "tasks" and payload.get("name") == MODEL_NODE:
            self._streaming = "input" in payload  # a task's start has its input, its end its result
            self.started = False
            self._call_start = self._alive = now
        elif mode == "messages" and self._streaming:
            message, metadata = payload
            if isinstance(message, AIMessageChunk) and metadata.get("langgraph_node") == MODEL_NODE:
                self._alive = now
                self.started = self.started or bool(message.text or message.tool_call_chunks)
                if message.chunk_position == "last":
                    self._streaming = False  # the response is complete; what follows is bookkeeping
