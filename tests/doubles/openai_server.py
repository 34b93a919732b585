"""An OpenAI-compatible chat completions server for tests, on 127.0.0.1.

Tests script the replies in order (`llm.script(Text("hi"), ToolCalls([...]))`) and the real ChatOpenAI talks to
it over real HTTP, so the SSE framing, streamed tool-call deltas, usage chunks, broken connections and error
bodies are the ones the production client parses. It takes image content parts (base64 data URLs, checked and
recorded) unless the model is scripted as one that `cannot_see` (then such a request gets OpenAI's 400), and it
serves `POST /v1/audio/transcriptions` (multipart `file` + `model`) with scripted transcripts. It is strict
where OpenAI is strict in a way that has bitten us: an assistant message whose `tool_calls` are not all
answered by `tool` messages is rejected with a 400, as OpenAI does, so history-repair bugs fail loudly. An
empty script answers 500 so a test that forgot a reply notices instead of hanging.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web


@dataclass(frozen=True)
class Text:
    """Stream `text` as content deltas of `chunk_size` characters, `delay` seconds apart, then stop."""

    text: str
    chunk_size: int = 4
    delay: float = 0.0


@dataclass(frozen=True)
class ToolCalls:
    """Stream `text_before` (if any), then each call's name and JSON arguments in pieces; finish "tool_calls".

    `calls` is a sequence of `(name, args)`; `args` may be a dict (serialised as JSON) or a raw string, so a test
    can send malformed arguments.
    """

    calls: Sequence[tuple[str, dict[str, Any] | str]]
    text_before: str = ""
    chunk_size: int = 5
    release: asyncio.Event | None = None
    """If set, the calls wait for it after `text_before` (a model step still running while the user writes)."""


@dataclass(frozen=True)
class Break:
    """Stream the first `after_chars` characters of `text`, then drop the connection (no final chunk, no [DONE])."""

    text: str
    after_chars: int
    chunk_size: int = 4


@dataclass(frozen=True)
class Hang:
    """Stream `text`, then keep the connection open and silent until the client goes away or the server stops."""

    text: str = ""
    chunk_size: int = 4


@dataclass(frozen=True)
class Held:
    """Stream the first `after_chars` characters of `text`, wait until `release` is set, then stream the rest."""

    text: str
    after_chars: int
    release: asyncio.Event
    chunk_size: int = 4


@dataclass(frozen=True)
class Error:
    """Answer with an HTTP error and an OpenAI-style error body instead of a stream.

    The OpenAI client retries 408, 409, 429 and 5xx (ChatOpenAI here: twice, with backoff), and each attempt
    takes the next reply: script such an error once per attempt, or prefer 400/401/404 in fast tests.
    """

    status: int
    message: str
    type: str = "server_error"
    code: str | None = None


@dataclass(frozen=True)
class Silent:
    """Accept the request and send nothing at all, not even the response headers, until the client goes away."""


Reply = Text | ToolCalls | Break | Hang | Held | Silent | Error


_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


@dataclass
class _Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class OpenAIDouble:
    """The server. Use `async with OpenAIDouble() as llm:` and pass `llm.base_url` to the client.

    Attributes:
        requests: Every chat completion request body received, in order (rejected ones included).
        disconnects: How many times a client went away before a stream was finished.
        disconnected: Set whenever that happens; tests may `clear()` it and wait on it again.
        token_times: For each streamed reply, the `time.monotonic()` of every content delta it sent (benchmarks
            measure "first model token -> first visible text" from these; the event loop's clock is the same).
        model: The model id reported by `GET /v1/models` and in chunks.
        call_ids: How streamed tool calls are named, as different servers do: "unique" (`call_N`, never reused,
            like OpenAI), "per_reply" (`call_1`, `call_2`, ... counted afresh in every response, so the same id
            comes back on every turn) or "none" (no id at all).
        api_key: When set, every request must carry it (`Authorization: Bearer ...`), or gets OpenAI's 401.
        outage: When set, every request is answered with this HTTP status (a server that is up but failing).
        silent: Every request is accepted and never answered (a wedged server), until the double stops.
    """

    model: str = "double-model"
    cannot_see: bool = False
    """Answer a request with image parts as OpenAI does for a model without vision: 400."""
    transcripts: deque[str] | None = None
    """What each transcription request hears, in order; None: the server has no transcription (404)."""
    transcriptions: list[dict[str, Any]] = field(default_factory=list)
    """Every transcription request: {"model", "filename", "size"}."""
    call_ids: Literal["unique", "per_reply", "none"] = "unique"
    api_key: str | None = None
    outage: int | None = None
    silent: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    disconnects: int = 0
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""
    token_times: list[list[float]] = field(default_factory=list)
    _replies: deque[Reply] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self, *replies: Reply) -> None:
        """Queue replies; each chat completion request takes the next one."""
        self._replies.extend(replies)

    @property
    def pending(self) -> int:
        """Replies scripted but not yet used (a test usually expects 0 at its end)."""
        return len(self._replies)

    async def start(self) -> str:
        """Listen on an ephemeral loopback port and return the base URL ending in `/v1`."""
        app = web.Application(middlewares=[self._gate])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self.base_url

    async def stop(self) -> None:
        """Release hanging streams and close the server."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OpenAIDouble:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- handlers -------------------------------------------------------------------------------------------

    @web.middleware
    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """What a real server checks before the endpoint runs: the key; and the failure modes a test asked for."""
        if self.silent:
            await self._stopping.wait()
            raise ConnectionResetError("the double stopped")
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(
                401,
                "Incorrect API key provided: sk-***. You can find your API key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                code="invalid_api_key",
            )
        if self.outage is not None:
            return _error(self.outage, "The server had an error while processing your request.", "server_error")
        return await handler(request)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "double"}]}
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if problem := _bad_tools(body.get("tools")):
            return _error(400, problem, "invalid_request_error", code=None, param="tools")
        if problem := _unanswered_tool_calls(body.get("messages", [])):
            return _error(400, problem, "invalid_request_error", code=None, param="messages")
        if problem := _bad_images(body.get("messages", [])):
            return _error(400, problem, "invalid_request_error", code="invalid_image_url", param="messages")
        if self.cannot_see and image_parts(body):
            return _error(
                400,
                "Invalid content type. image_url is only supported by certain models.",
                "invalid_request_error",
                param="messages",
            )
        if not self._replies:
            return _error(500, "OpenAIDouble: no scripted reply left for this request", "server_error")
        reply = self._replies.popleft()
        if isinstance(reply, Error):
            return _error(reply.status, reply.message, reply.type, code=reply.code)
        if not body.get("stream"):
            return _error(400, "OpenAIDouble only supports stream=true", "invalid_request_error")
        if isinstance(reply, Silent):
            await self._wait_while_connected(request)
            return web.Response(status=204)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        stream = _Stream(request, f"chatcmpl-{next(self._ids)}", self.model, include_usage)
        self.token_times.append(stream.token_times)
        try:
            await stream.open()
            await self._play(reply, stream, body)
        except (ConnectionResetError, ConnectionError):
            self._client_gone()
        return stream.response

    async def _play(self, reply: Reply, stream: _Stream, body: dict[str, Any]) -> None:
        prompt_tokens = _count_tokens(body.get("messages", []))
        if isinstance(reply, Text):
            for piece in _pieces(reply.text, reply.chunk_size):
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                await stream.delta({"content": piece})
            await stream.finish("stop", _Usage(prompt_tokens, len(reply.text.split())))
        elif isinstance(reply, ToolCalls):
            if reply.text_before:
                for piece in _pieces(reply.text_before, reply.chunk_size):
                    await stream.delta({"content": piece})
            if reply.release is not None:
                await reply.release.wait()
            for index, (name, args) in enumerate(reply.calls):
                arguments = args if isinstance(args, str) else json.dumps(args)
                head: dict[str, Any] = {"index": index, "type": "function"}
                if self.call_ids == "unique":
                    head["id"] = f"call_{next(self._ids)}"
                elif self.call_ids == "per_reply":
                    head["id"] = f"call_{index + 1}"
                await stream.delta({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
                for piece in _pieces(arguments, reply.chunk_size):
                    await stream.delta({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            await stream.finish("tool_calls", _Usage(prompt_tokens, 5 * len(reply.calls)))
        elif isinstance(reply, Break):
            for piece in _pieces(reply.text[: reply.after_chars], reply.chunk_size):
                await stream.delta({"content": piece})
            stream.abort()
        elif isinstance(reply, Held):
            for piece in _pieces(reply.text[: reply.after_chars], reply.chunk_size):
                await stream.delta({"content": piece})
            await reply.release.wait()
            for piece in _pieces(reply.text[reply.after_chars :], reply.chunk_size):
                await stream.delta({"content": piece})
            await stream.finish("stop", _Usage(prompt_tokens, len(reply.text.split())))
        elif isinstance(reply, Hang):
            for piece in _pieces(reply.text, reply.chunk_size):
                await stream.delta({"content": piece})
            await self._wait_while_connected(stream.request)

    async def _wait_while_connected(self, request: web.Request) -> None:
        """Hold the connection open, silent, until the client goes away (counted) or the server stops."""
        while not self._stopping.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                self._client_gone()
                return
            await asyncio.sleep(0.01)

    async def _transcribe(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, model = form.get("file"), form.get("model")
        if not isinstance(upload, web.FileField) or not isinstance(model, str) or not model:
            return _error(400, "'file' and 'model' are required (multipart/form-data)", "invalid_request_error")
        data = upload.file.read()
        self.transcriptions.append({"model": model, "filename": upload.filename, "size": len(data)})
        if self.transcripts is None:
            return web.json_response({"detail": "Not Found"}, status=404)
        if not data:
            return _error(400, "The audio file is empty.", "invalid_request_error", param="file")
        return web.json_response({"text": self.transcripts.popleft() if self.transcripts else ""})

    def _client_gone(self) -> None:
        self.disconnects += 1
        self.disconnected.set()


class _Stream:
    """One SSE response in the `chat.completion.chunk` format."""

    def __init__(self, request: web.Request, completion_id: str, model: str, include_usage: bool) -> None:
        self.request = request
        self.response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        self.id = completion_id
        self.model = model
        self.include_usage = include_usage
        self.created = int(time.time())
        self.token_times: list[float] = []
        self._first = True

    async def open(self) -> None:
        await self.response.prepare(self.request)

    def client_gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def _send(self, payload: dict[str, Any] | str) -> None:
        if self.client_gone():
            raise ConnectionResetError("client went away")
        data = payload if isinstance(payload, str) else json.dumps(payload)
        await self.response.write(f"data: {data}\n\n".encode())

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = usage
        return chunk

    async def delta(self, delta: dict[str, Any]) -> None:
        if self._first:
            delta = {"role": "assistant", **delta}
            self._first = False
        await self._send(self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]))
        if delta.get("content"):
            self.token_times.append(time.monotonic())

    async def finish(self, reason: str, usage: _Usage) -> None:
        if self._first:
            await self.delta({"content": ""})
        await self._send(self._chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": reason}]))
        if self.include_usage:
            counts = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            }
            await self._send(self._chunk([], counts))
        await self._send("[DONE]")
        await self.response.write_eof()

    def abort(self) -> None:
        """Drop the TCP connection mid-body, as a crashed or cut-off server would."""
        if self.request.transport is not None:
            self.request.transport.abort()


def image_parts(body: dict[str, Any]) -> list[str]:
    """The data URLs of every image part in a chat request's messages, in order."""
    return [
        str((part.get("image_url") or {}).get("url", ""))
        for message in body.get("messages", [])
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    ]


def text_parts(body: dict[str, Any], role: str = "user") -> list[str]:
    """The text of every message of `role` in a chat request, string content and text parts alike."""
    found = []
    for message in body.get("messages", []):
        if message.get("role") != role:
            continue
        content = message.get("content")
        if isinstance(content, str):
            found.append(content)
        elif isinstance(content, list):
            found.extend(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return found


def _bad_images(messages: list[dict[str, Any]]) -> str | None:
    """OpenAI's rule: an image part is an http(s) URL or a base64 data URL of an image."""
    for url in image_parts({"messages": messages}):
        if url.startswith(("http://", "https://")):
            continue
        head, _, data = url.partition(",")
        if not head.startswith("data:image/") or not head.endswith(";base64"):
            return f"Invalid image URL: expected a data URL of an image or an http(s) URL, got {url[:40]!r}."
        try:
            base64.b64decode(data, validate=True)
        except ValueError:
            return "Invalid base64 image data."
    return None


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), max(1, size))]


def _count_tokens(messages: list[dict[str, Any]]) -> int:
    """A stable stand-in for a tokenizer: words in every message's content."""
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content.split())
        elif isinstance(content, list):
            total += sum(len(str(part.get("text", "")).split()) for part in content if isinstance(part, dict))
    return total


def _bad_tools(tools: Any) -> str | None:
    """OpenAI's 400 for a malformed `tools` list (None when it is well formed or absent): each entry a function
    with a name of at most 64 letters, digits, `_` or `-` and, if given, an object schema for its parameters."""
    if tools is None:
        return None
    if not isinstance(tools, list) or not tools:
        return "Invalid 'tools': empty array. Expected an array with minimum length 1."
    for at, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            return f"Missing required parameter: 'tools[{at}].function'."
        name = function.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
            return f"Invalid 'tools[{at}].function.name': string does not match pattern. Expected ^[a-zA-Z0-9_-]+$."
        parameters = function.get("parameters", {"type": "object"})
        if not isinstance(parameters, dict) or parameters.get("type") != "object":
            return f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"'."
    return None


def _unanswered_tool_calls(messages: list[dict[str, Any]]) -> str | None:
    """OpenAI's rules: every assistant tool call has an id, every id is answered by the tool messages right after
    it, and a tool message answers a call of the assistant message it follows (ids are matched there only, so a
    server that reuses `call_1` on every turn is held to the same rules)."""
    calls: list[str] = []  # ids of the assistant message the tool messages being read follow
    for position, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in calls:
                return (
                    f"Invalid parameter: messages[{position}] with role 'tool' must be a response to a preceding "
                    "message with 'tool_calls'."
                )
            continue
        if role == "assistant" and message.get("tool_calls"):
            calls = [call.get("id") for call in message["tool_calls"]]
            if not all(calls):
                return f"Missing required parameter: 'messages[{position}].tool_calls[].id'."
            answered = set()
            for following in messages[position + 1 :]:
                if following.get("role") != "tool":
                    break
                answered.add(following.get("tool_call_id", ""))
            missing = [call_id for call_id in calls if call_id not in answered]
            if missing:
                return (
                    "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                    "'tool_call_id'. The following tool_call_ids did not have response messages: "
                    f"{', '.join(missing)}"
                )
        else:
            calls = []
    return None


def _error(status: int, message: str, kind: str, *, code: str | None = None, param: str | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status)
