"""An offline, deterministic chat model, so a fresh checkout answers without any account or server.

It behaves like a real streaming model where the rest of the bot can tell the difference: text arrives token by
token with a delay, and tool calls arrive as streamed `tool_call_chunks` (name first, JSON arguments in pieces),
so the whole path — StreamingHandler, the break before a tool call, the tool step, the answer — runs for real.
Its "understanding" is a few regular expressions, chosen so that everything the README promises can be seen:
arithmetic goes to `calculator` and time questions to `current_time` (in the zone or city asked for), with the
tools slowed to about a second (`slowed`) so the status line shows while they run; it remembers what the user
said earlier in the conversation (so memory and /reset can be seen); and it writes a long answer with a table and
a code block on request (so rendering can be seen). Its first answer in a conversation says plainly that it is
the demo and how to configure a real model; later ones do not repeat it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool

FIRST_NOTICE = (
    "\n\n---\n*This is livebot's **offline demo model**: no language model is configured, so the replies are "
    "scripted. To use a real model, set `OPENAI_API_KEY` (and `LLM_MODEL`, e.g. `gpt-4o-mini`), or set "
    "`OPENAI_BASE_URL` to a local OpenAI-compatible server such as Ollama (`http://localhost:11434/v1`) and "
    "`LLM_MODEL` to one of its models, then restart the bot.*"
)
HELP = (
    "Hi! I'm a scripted stand-in, so I can't really follow free text, but I can show you what livebot does. Try:\n\n"
    "- **what is 2+2** or **compute (3+4)*5**: a tool call, with its status line while it runs;\n"
    "- **what time is it in Tokyo?**: the clock, in any city or zone;\n"
    "- **my name is Ada**, later **what's my name?** or **what did I say?**: memory (and `/reset` forgets it);\n"
    "- **show me a table**: a long answer with a table and a code block."
)
TOOL_PAUSE = 1.0
"""Seconds each tool takes in the demo (when it streams at a readable pace), so its status line can be seen."""

# Numbers and brackets joined by at least one binary operator: "2+2", "(3+4)*5", "2 ** 10", "7 % 3".
_ARITHMETIC = re.compile(r"-?[\d.(]+[\d.)]*(?:\s*(?:\*\*|[-+*/%^])\s*[-\d.()]+)+")
_TIME = re.compile(
    r"\b(what time|time is it|the time|the date|what day|today'?s date|current (?:time|date)|what date)\b",
    re.IGNORECASE,
)
_TIMEZONE = re.compile(r"\b(UTC|GMT|[A-Z][A-Za-z_]+/[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_]+)?)\b")
_PLACE = re.compile(r"\bin ([A-Za-z_]+(?: [A-Za-z_]+)?)", re.IGNORECASE)
_MY_NAME = re.compile(r"\b(?:my name is|call me) ([A-Z][\w-]*)", re.IGNORECASE)
_ASK_NAME = re.compile(r"\b(what'?s|what is|do you know|remember) my name\b|\bwho am i\b", re.IGNORECASE)
_ASK_RECALL = re.compile(r"\bwhat (did|have) i (say|said|told|tell)|\bremember\b|\bearlier\b", re.IGNORECASE)
_ASK_LONG = re.compile(r"\b(table|long|markdown|code|example|format)", re.IGNORECASE)
LONG_ANSWER = """## Three ways to stream an answer

Each chat platform offers a different way to show text **while it is written**:

| platform | how it streams | updates |
|---|---|---|
| Telegram private chat | native drafts, then a message | a few a second |
| Telegram group | one message, edited | every 3.1 s |
| Slack thread | native stream (`chat.appendStream`) | as it comes |
| Console | redrawn in place | 20 a second |

A reply goes through the same handler everywhere; only the *surface* differs:

```python
async with StreamingHandler(surface) as handler:
    async for event in agent.run(question, thread_id=conversation):
        handler.emit(event.text)
```

Things to notice:

1. The table and the code above were rendered while they streamed.
2. Long lines wrap at words, never in the middle of one.
3. `/stop` (or Ctrl-C in the console) stops an answer like this one half-way."""
_TOKEN = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to say and, optionally, which tool to call afterwards."""

    text: str
    tool: tuple[str, dict[str, Any]] | None = None


class DemoChatModel(BaseChatModel):
    """The offline demo model.

    Attributes:
        delay: Seconds between streamed tokens; 0 in tests.
    """

    delay: float = 0.03

    @property
    def _llm_type(self) -> str:
        return "livebot-demo"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Remember the tools in OpenAI's format, as ChatOpenAI does, so the reply can check which exist."""
        return self.bind(tools=[convert_to_openai_tool(tool) for tool in tools], **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for index, chunk in enumerate(_chunks(messages, _tool_names(kwargs))):
            if self.delay and index:
                await asyncio.sleep(self.delay)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for index, chunk in enumerate(_chunks(messages, _tool_names(kwargs))):
            if self.delay and index:
                time.sleep(self.delay)
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: ChatGenerationChunk | None = None
        async for chunk in self._astream(messages, stop, run_manager, **kwargs):
            merged = chunk if merged is None else merged + chunk
        return _result(merged)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: ChatGenerationChunk | None = None
        for chunk in self._stream(messages, stop, run_manager, **kwargs):
            merged = chunk if merged is None else merged + chunk
        return _result(merged)


def _result(merged: ChatGenerationChunk | None) -> ChatResult:
    chunk = merged.message if merged is not None else AIMessageChunk(content="")
    message = AIMessage(
        content=chunk.content,
        tool_calls=getattr(chunk, "tool_calls", []),
        usage_metadata=getattr(chunk, "usage_metadata", None),
        response_metadata=chunk.response_metadata,
        id=chunk.id,
    )
    return ChatResult(generations=[ChatGeneration(message=message)])


def _tool_names(kwargs: dict[str, Any]) -> set[str]:
    return {tool["function"]["name"] for tool in kwargs.get("tools") or [] if "function" in tool}


def _chunks(messages: list[BaseMessage], tools: set[str]) -> Iterator[ChatGenerationChunk]:
    """The reply as the chunks a streaming OpenAI client would produce."""
    plan = plan_reply(messages, tools)
    pieces = _TOKEN.findall(plan.text)
    for piece in pieces:
        yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
    output_tokens = len(pieces)
    finish_reason = "stop"
    if plan.tool is not None:
        name, args = plan.tool
        call_id = f"call_demo_{len(messages)}"
        head = tool_call_chunk(name=name, args="", id=call_id, index=0)
        yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[head]))
        arguments = json.dumps(args)
        for start in range(0, len(arguments), 6):
            piece = tool_call_chunk(name=None, args=arguments[start : start + 6], id=None, index=0)
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[piece]))
            output_tokens += 1
        finish_reason = "tool_calls"
    input_tokens = sum(len(message.text.split()) for message in messages)
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
    yield ChatGenerationChunk(
        message=AIMessageChunk(
            content="",
            usage_metadata=usage,  # type: ignore[arg-type]
            response_metadata={"finish_reason": finish_reason, "model_name": "livebot-demo"},
            chunk_position="last",
        )
    )


def plan_reply(messages: Sequence[BaseMessage], tools: set[str]) -> _Plan:
    """Decide the reply from the conversation so far.

    Args:
        messages: The request's messages (a system message may come first).
        tools: Names of the tools bound for this call; a tool that is not bound is never called.

    Returns:
        The text to stream and the tool call (if any) to stream after it.
    """
    first_answer = not any(isinstance(message, AIMessage) and not message.tool_calls for message in messages)
    notice = FIRST_NOTICE if first_answer else ""
    if messages and isinstance(messages[-1], ToolMessage):
        return _Plan(_answer_from_tools(messages) + notice)

    said = [message.text for message in messages if isinstance(message, HumanMessage)]
    question, earlier = (said[-1], said[:-1]) if said else ("", [])
    if match := _ARITHMETIC.search(question):
        expression = match.group(0).strip()
        if "calculator" in tools:
            return _Plan("Let me work that out with the calculator.", ("calculator", {"expression": expression}))
        return _Plan(f"I'd use the `calculator` tool for `{expression}`, but it isn't available right now.{notice}")
    if _TIME.search(question):
        zone = _zone_in(question)
        if "current_time" in tools:
            return _Plan("Let me check the clock.", ("current_time", {"timezone": zone}))
        return _Plan(f"I'd use the `current_time` tool for that, but it isn't available right now.{notice}")
    if _ASK_NAME.search(question):
        return _Plan(_recall_name(earlier) + notice)
    if match := _MY_NAME.search(question):
        name = match.group(1)
        return _Plan(
            f"Nice to meet you, **{name}**! I'll remember that: ask me *what's my name?* later. "
            + f"`/reset` makes me forget.{notice}"
        )
    if _ASK_RECALL.search(question):
        return _Plan(_recall(earlier) + notice)
    if _ASK_LONG.search(question):
        return _Plan(LONG_ANSWER + notice)
    return _Plan(HELP + notice)


def _zone_in(question: str) -> str:
    """The IANA zone a question names, directly ("Europe/Berlin") or by city ("in Tokyo", "in new york")."""
    if found := _TIMEZONE.search(question):
        return found.group(1)
    for match in _PLACE.finditer(question):
        words = match.group(1).split()
        for count in (2, 1):  # "New York" before "New"
            place = "_".join(words[:count]).casefold()
            if zone := _zones_by_city().get(place):
                return zone
    return "UTC"


@cache
def _zones_by_city() -> dict[str, str]:
    """ "tokyo" -> "Asia/Tokyo", "new_york" -> "America/New_York": the last part of every IANA zone name."""
    return {name.rsplit("/", 1)[-1].casefold(): name for name in sorted(available_timezones()) if "/" in name}


def _recall_name(earlier: Sequence[str]) -> str:
    for text in reversed(earlier):
        if match := _MY_NAME.search(text):
            return f"Your name is **{match.group(1)}**: you told me earlier in this conversation."
    return "You haven't told me your name in this conversation. Say *my name is …* and ask again."


def _recall(earlier: Sequence[str]) -> str:
    if not earlier:
        return "Nothing yet: this conversation starts with your question."
    shown = earlier[-5:]
    lines = "\n".join(f"- {text[:200]}" for text in shown)
    more = f" (the last {len(shown)} of {len(earlier)})" if len(earlier) > len(shown) else ""
    return f"Earlier in this conversation you said{more}:\n\n{lines}"


def slowed(tools: Sequence[BaseTool], pause: float) -> list[BaseTool]:
    """`tools`, each taking at least `pause` seconds, as real tools (a web page, a search) do.

    The demo's own tools answer in microseconds, and the status line that shows while a tool runs would never be
    seen. The tool still runs for real, under the same timeout and error rules.
    """
    if pause <= 0:
        return list(tools)

    def wrap(tool: BaseTool) -> BaseTool:
        async def run(**kwargs: Any) -> Any:
            await asyncio.sleep(pause)
            return await tool.ainvoke(kwargs)

        return StructuredTool.from_function(
            coroutine=run, name=tool.name, description=tool.description, args_schema=tool.args_schema
        )

    return [wrap(tool) for tool in tools]


def _answer_from_tools(messages: Sequence[BaseMessage]) -> str:
    """Phrase the results of the tool calls that ended the conversation so far."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.insert(0, message)
    requested = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    calls = {call["id"]: call for call in requested.tool_calls} if requested is not None else {}
    lines = []
    for result in results:
        call = calls.get(result.tool_call_id)
        name = call["name"] if call else (result.name or "tool")
        args = call["args"] if call else {}
        content = result.text.strip()
        if result.status == "error":
            lines.append(f"The `{name}` tool failed: {content}")
        elif name == "calculator":
            lines.append(f"{args.get('expression', 'The result')} = **{content}**")
        elif name == "current_time":
            lines.append(f"The current time ({args.get('timezone', 'UTC')}) is **{content}**.")
        else:
            lines.append(f"The `{name}` tool returned:\n\n{content[:500]}")
    return "\n\n".join(lines)
