"""The OpenAI double itself: the strictness the agent tests rely on."""

from __future__ import annotations

import json

import aiohttp

from tests.doubles.openai_server import OpenAIDouble, Text


async def post(llm: OpenAIDouble, messages: list[dict], **extra: object) -> tuple[int, str]:
    body = {"model": llm.model, "messages": messages, "stream": True, **extra}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{llm.base_url}/chat/completions", json=body) as response,
    ):
        return response.status, await response.text()


async def test_unanswered_tool_calls_are_rejected_like_openai(llm: OpenAIDouble) -> None:
    llm.script(Text("never sent"))
    call = {"id": "call_1", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "user", "content": "hello?"},
    ]

    status, text = await post(llm, messages)

    assert status == 400
    error = json.loads(text)["error"]
    assert error["type"] == "invalid_request_error"
    assert "call_1" in error["message"]
    assert len(llm.requests) == 1
    assert llm.pending == 1


async def test_malformed_tools_are_rejected_like_openai(llm: OpenAIDouble) -> None:
    llm.script(Text("never sent"))
    spaced = {"type": "function", "function": {"name": "look up", "parameters": {"type": "object"}}}
    listed = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "array"}}}
    for tools in ([], [{"name": "lookup"}], [spaced], [listed]):
        status, text = await post(llm, [{"role": "user", "content": "hi"}], tools=tools)
        assert status == 400, tools
        assert json.loads(text)["error"]["param"] == "tools"
    assert llm.pending == 1


async def test_an_empty_script_is_a_loud_500(llm: OpenAIDouble) -> None:
    status, text = await post(llm, [{"role": "user", "content": "hi"}])
    assert status == 500
    assert "no scripted reply" in text


async def test_text_streams_as_sse_chunks_and_done(llm: OpenAIDouble) -> None:
    llm.script(Text("Hello world", chunk_size=5))

    status, text = await post(llm, [{"role": "user", "content": "hi"}])

    assert status == 200
    events = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    content = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"])
    assert content == "Hello world"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_models_are_listed(llm: OpenAIDouble) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{llm.base_url}/models") as response:
        assert (await response.json())["data"][0]["id"] == llm.model
