"""MCP servers as tools, end to end: a real MCP server written with the `mcp` SDK (tests/doubles/mcp_server.py)
over stdio and over Streamable HTTP, the real bot, and the OpenAI double as a scripted model."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.agent_setup import open_bot_agent
from bot.telegram_app import serve_telegram
from tests.doubles.openai_server import OpenAIDouble, Text, ToolCalls
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import ROOT, run_bot, telegram_settings
from tests.scenarios.slack_scene import free_port
from tools.mcp_config import ServerConfig
from tools.mcp_servers import MAX_RESULT_CHARS, TRUNCATED_MARK, McpServers

SERVER = str(ROOT / "tests" / "doubles" / "mcp_server.py")
BUILT_IN = ["calculator", "current_time", "web_fetch", "chart"]


def stdio(name: str = "double", **extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [SERVER, "stdio", "--name", name], **extra}


def write_config(tmp_path: Path, **servers: dict[str, Any]) -> str:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return str(path)


def offered(request: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in request.get("tools", [])]


def tool_answer(request: dict[str, Any]) -> str:
    """What the model was told the last tool returned (the OpenAI wire format: a string or text parts)."""
    message = request["messages"][-1]
    assert message["role"] == "tool"
    content = message["content"]
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


async def test_tools_of_a_stdio_server_are_listed_called_and_their_result_reaches_the_model(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    llm.script(ToolCalls([("echo", {"text": "hi"})], text_before="Asking the server."), Text("It said hi."))
    env = {**model_env, "MCP_CONFIG": write_config(tmp_path, double=stdio())}
    done = await run_bot(["console"], stdin="/tools\nsay hi through the server\n", env=env, cwd=tmp_path)
    assert done.code == 0, done.err
    listing, answer = done.out.split("Asking the server.", 1)
    assert "**MCP server `double`**" in listing and "- `echo`: Repeat the text back" in listing
    assert "- `calculator`" in listing  # the built-in tools are listed too
    assert answer.strip() == "It said hi."
    assert offered(llm.requests[0]) == [*BUILT_IN, "echo", "add", "long_text", "picture", "fail", "crash"]
    assert tool_answer(llm.requests[1]) == "double echoes: hi"


async def test_an_allowlist_hides_the_other_tools(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> None:
    llm.script(Text("ok"))
    env = {**model_env, "MCP_CONFIG": write_config(tmp_path, double=stdio(tools=["echo", "add"]))}
    done = await run_bot(["console"], stdin="/tools\nhello\n", env=env, cwd=tmp_path)
    assert done.code == 0, done.err
    assert offered(llm.requests[0]) == [*BUILT_IN, "echo", "add"]
    assert "`echo`" in done.out and "`add`" in done.out and "crash" not in done.out and "picture" not in done.out


async def test_names_that_collide_are_prefixed_with_their_server(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    llm.script(ToolCalls([("beta_echo", {"text": "x"})]), Text("done"))
    config = write_config(tmp_path, alpha=stdio("alpha", tools=["echo"]), beta=stdio("beta", tools=["echo"]))
    done = await run_bot(["console"], stdin="which echo?\n", env={**model_env, "MCP_CONFIG": config}, cwd=tmp_path)
    assert done.code == 0, done.err
    assert offered(llm.requests[0]) == [*BUILT_IN, "alpha_echo", "beta_echo"]
    assert tool_answer(llm.requests[1]) == "beta echoes: x"


async def test_a_stdio_server_that_dies_mid_call_is_a_tool_error_and_is_started_again(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    starts = tmp_path / "starts.log"
    llm.script(
        ToolCalls([("crash", {})]),
        Text("The server broke."),
        ToolCalls([("echo", {"text": "again"})]),
        Text("It is back."),
    )
    env = {**model_env, "MCP_CONFIG": write_config(tmp_path, double=stdio(env={"MCP_DOUBLE_STARTS": str(starts)}))}
    done = await run_bot(["console"], stdin="crash it\ntry again\n", env=env, cwd=tmp_path)
    assert done.code == 0, done.err
    assert done.out == "you › crash it\nbot › The server broke.\n\nyou › try again\nbot › It is back.\n\n"
    error = llm.requests[1]["messages"][-1]
    assert error["role"] == "tool" and "The MCP server 'double' stopped responding" in tool_answer(llm.requests[1])
    assert tool_answer(llm.requests[3]) == "double echoes: again"
    assert len(starts.read_text().splitlines()) == 2  # one process for the bot's life, one after the crash


async def test_a_malformed_config_stops_start_up_naming_the_file(model_env: dict, tmp_path: Path) -> None:
    config = write_config(tmp_path, double={"command": "x", "comand": "y"})
    done = await run_bot(["console"], stdin="hi\n", env={**model_env, "MCP_CONFIG": config}, cwd=tmp_path)
    assert done.code == 2
    assert done.err == f"livebot: setting MCP_CONFIG is invalid: {config}: mcpServers.double: unknown key 'comand'\n"


async def test_results_are_text_for_the_model_capped_with_pictures_described() -> None:
    servers = McpServers([ServerConfig(name="d", transport="stdio", command=sys.executable, args=(SERVER, "stdio"))])
    async with servers.open() as opened:
        by_name = {tool.name: tool for tool in opened.current()}
        long = await by_name["long_text"].ainvoke({"chars": 50_000})
        picture = await by_name["picture"].ainvoke({})
        failed = await by_name["fail"].ainvoke({"reason": "no such file"})
    (long_text,) = [block["text"] for block in long]
    assert len(long_text) <= MAX_RESULT_CHARS and long_text.endswith(TRUNCATED_MARK)
    assert [block["text"] for block in picture] == ["[image: image/png, about 69 bytes; not shown in this chat]"]
    assert "no such file" in failed[0]["text"]
    assert by_name["echo"].metadata == {
        "mcp_server": "d",
        "mcp_tool": "echo",
        "require_approval": False,
        "timeout": None,
    }


async def test_require_approval_is_carried_on_each_tool() -> None:
    config = ServerConfig(
        name="d",
        transport="stdio",
        command=sys.executable,
        args=(SERVER, "stdio"),
        tools=frozenset({"echo", "crash"}),
        require_approval=frozenset({"crash"}),
        timeout=45,
    )
    async with McpServers([config]).open() as opened:
        approval = {tool.name: (tool.metadata or {})["require_approval"] for tool in opened.current()}
        timeouts = {(tool.metadata or {})["timeout"] for tool in opened.current()}
    assert approval == {"echo": False, "crash": True} and timeouts == {45}


@asynccontextmanager
async def http_server(port: int, name: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """The MCP double serving Streamable HTTP on 127.0.0.1:`port`, yielded once it accepts connections."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, SERVER, "http", str(port), "--name", name, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        for _ in range(600):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)  # polling for readiness, not timing anything
                continue
            writer.close()
            break
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_a_streamable_http_server_in_telegram_with_a_crash_and_a_restart(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    port = free_port()
    alice = tg.add_user("Alice", username="alice")
    dm = tg.private_chat(alice)
    config = telegram_settings(
        tg, llm, tmp_path / "data", mcp_config=write_config(tmp_path, web={"url": f"http://127.0.0.1:{port}/mcp"})
    )
    llm.script(
        ToolCalls([("echo", {"text": "hi"})], text_before="Let me ask."),
        Text("It echoed."),
        ToolCalls([("crash", {})]),
        Text("It crashed."),
        ToolCalls([("echo", {"text": "back?"})]),
        Text("It is back."),
    )
    async with http_server(port, "web") as first, open_bot_agent(config) as agent, serve_telegram(config, agent):
        tg.user_message(dm, alice, "/tools")
        await tg.wait_for(lambda: any("MCP server web" in text for text in tg.visible_texts(dm)), timeout=60)
        tg.user_message(dm, alice, "echo hi")
        await tg.wait_for(lambda: tg.visible_texts(dm)[1:] == ["Let me ask.", "It echoed."], timeout=60)
        assert any("Using web: echo" in draft.text for draft in tg.drafts(dm))  # the status line names the server
        assert tool_answer(llm.requests[1]) == "web echoes: hi"

        tg.user_message(dm, alice, "crash it")
        await asyncio.wait_for(first.wait(), 30)  # the tool took the server down mid-call
        async with http_server(port, "web"):
            await tg.wait_for(lambda: tg.visible_texts(dm)[-1] == "It crashed.", timeout=60)
            assert "The MCP server 'web' stopped responding" in tool_answer(llm.requests[3])
            tg.user_message(dm, alice, "and now?")
            await tg.wait_for(lambda: tg.visible_texts(dm)[-1] == "It is back.", timeout=60)
    assert tool_answer(llm.requests[5]) == "web echoes: back?"


async def test_an_image_in_a_result_goes_to_the_chat_as_a_picture(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    config = telegram_settings(tg, llm, tmp_path / "data", mcp_config=write_config(tmp_path, double=stdio()))
    llm.script(ToolCalls([("picture", {})], text_before="Here it comes."), Text("That was the picture."))
    async with open_bot_agent(config) as agent, serve_telegram(config, agent):
        tg.user_message(dm, alice, "show me the picture")
        await tg.wait_for(lambda: tg.visible_texts(dm)[-1:] == ["That was the picture."], timeout=60)
    photos = [message for message in tg.bot_messages(dm) if message.photo]
    assert len(photos) == 1 and photos[0].caption == "double: picture"
    texts = [message.text or message.caption for message in tg.bot_messages(dm)]
    assert texts == ["Here it comes.", "double: picture", "That was the picture."]  # in the answer's flow
    assert tool_answer(llm.requests[1]) == "[image: shown to the user]"


async def test_a_server_down_at_start_up_does_not_stop_it_and_its_tools_come_when_it_is_up(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    alice = tg.add_user("Alice")
    dm = tg.private_chat(alice)
    config = telegram_settings(
        tg, llm, tmp_path / "data", mcp_config=write_config(tmp_path, late={"url": f"http://127.0.0.1:{port}/mcp"})
    )
    llm.script(Text("Only my own tools."), ToolCalls([("echo", {"text": "late"})]), Text("It is here now."))
    async with open_bot_agent(config) as agent, serve_telegram(config, agent):
        [line] = [r.getMessage() for r in caplog.records if "MCP server 'late'" in r.getMessage()]
        assert "could not be started" in line and "trying again in the background" in line
        tg.user_message(dm, alice, "/tools")
        await tg.wait_for(lambda: any("unavailable right now" in text for text in tg.visible_texts(dm)), timeout=60)
        tg.user_message(dm, alice, "hello")
        await tg.wait_for(lambda: tg.visible_texts(dm)[-1] == "Only my own tools.", timeout=60)
        assert offered(llm.requests[0]) == BUILT_IN

        async with http_server(port, "late"):
            await tg.wait_for(lambda: any(tool.name == "echo" for tool in agent.tools), timeout=90)
            tg.user_message(dm, alice, "/tools")
            await tg.wait_for(lambda: "echo: Repeat the text back" in tg.visible_texts(dm)[-1], timeout=60)
            tg.user_message(dm, alice, "echo late")
            await tg.wait_for(lambda: tg.visible_texts(dm)[-1] == "It is here now.", timeout=60)
    assert offered(llm.requests[1]) == [*BUILT_IN, "echo", "add", "long_text", "picture", "fail", "crash"]
    assert tool_answer(llm.requests[2]) == "late echoes: late"
