"""Approval before a tool acts, in the console: the request is a y/n question, a line answers it, and a restart
of the console between the question and the answer still resumes the run (it is checkpointed, the request is on
disk). The tool is a real FastMCP server's (tests/doubles/mcp_server.py) marked `require_approval`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.doubles.openai_server import OpenAIDouble, Text, ToolCalls
from tests.scenarios.conftest import run_bot
from tests.scenarios.test_mcp import stdio, tool_answer, write_config

QUESTION = "echo hi through the server"


def approval_env(model_env: dict, tmp_path: Path, **settings: str) -> dict[str, str]:
    config = write_config(tmp_path, double=stdio(tools=["echo"], require_approval=["echo"]))
    return {**model_env, "MCP_CONFIG": config, **settings}


async def console_until(env: dict[str, str], cwd: Path, text: str, timeout: float = 60) -> str:
    """Run the piped console with stdin held open until its output shows `text`; returns the output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "console", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env, cwd=cwd,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    out = ""
    try:
        async with asyncio.timeout(timeout):
            while text not in out:
                line = await process.stdout.readline()
                assert line, f"the console ended without showing {text!r}: {out}"
                out += line.decode()
        process.stdin.close()
        out += (await process.stdout.read()).decode()
        assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return out


def script_echo(llm: OpenAIDouble) -> None:
    llm.script(
        ToolCalls([("echo", {"text": "hi `there`"})], text_before="I'll ask the server."),
        Text("The server said hi."),
    )


async def test_yes_runs_the_tool_and_the_answer_follows(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> None:
    script_echo(llm)
    env = approval_env(model_env, tmp_path)
    done = await run_bot(["console"], stdin=f"{QUESTION}\ny\n", env=env, cwd=tmp_path)
    assert done.code == 0, done.err
    before, after = done.out.split("Approve? Type y (yes) or n (no).", 1)
    assert "bot › I'll ask the server." in before
    assert "🔐 **Approval needed** before I use a tool:" in before and "**double: echo**" in before
    assert '"text": "hi \\u0060there\\u0060"' in before  # the model's backticks cannot close the code block
    assert after.index("you › y") < after.index("✅ Approved by you.") < after.index("bot › The server said hi.")
    assert tool_answer(llm.requests[1]) == "double echoes: hi `there`"


async def test_no_tells_the_model_the_user_declined(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> None:
    llm.script(ToolCalls([("echo", {"text": "hi"})]), Text("All right, I won't."))
    done = await run_bot(["console"], stdin=f"{QUESTION}\nn\n", env=approval_env(model_env, tmp_path), cwd=tmp_path)
    assert done.code == 0, done.err
    assert "❌ Denied by you." in done.out and done.out.rstrip().endswith("bot › All right, I won't.")
    declined = tool_answer(llm.requests[1])
    assert "User rejected the tool call for `echo`" in declined and "declined" in declined
    assert len(llm.requests) == 2


async def test_a_new_message_denies_the_waiting_call_then_is_answered(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    llm.script(ToolCalls([("echo", {"text": "hi"})]), Text("Skipping the tool."), Text("It is Tuesday."))
    env = approval_env(model_env, tmp_path)
    done = await run_bot(["console"], stdin=f"{QUESTION}\nwhat day is it?\n", env=env, cwd=tmp_path)
    assert done.code == 0, done.err
    out = done.out
    # The new line is shown, then what it did to the request, the answer without the tool, and its own answer.
    order = ["you › what day is it?", "❌ Denied: a new message came instead.", "Skipping the tool.", "It is Tuesday."]
    assert [out.index(text) for text in order] == sorted(out.index(text) for text in order)
    assert "they wrote a new message instead" in tool_answer(llm.requests[1])
    assert llm.requests[2]["messages"][-1] == {"role": "user", "content": "what day is it?"}


async def test_a_restart_between_the_question_and_the_answer_still_resumes(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    script_echo(llm)
    env = approval_env(model_env, tmp_path)
    first = await run_bot(["console"], stdin=f"{QUESTION}\n", env=env, cwd=tmp_path)
    assert first.code == 0, first.err
    assert "Approve? Type y (yes) or n (no)." in first.out and len(llm.requests) == 1

    second = await run_bot(["console"], stdin="y\n", env=env, cwd=tmp_path)  # a new process
    assert second.code == 0, second.err
    assert "**double: echo**" in second.err  # the banner shows the request that waits
    assert "✅ Approved by you." in second.out and second.out.rstrip().endswith("bot › The server said hi.")
    assert tool_answer(llm.requests[1]) == "double echoes: hi `there`"


async def test_no_answer_within_the_timeout_is_a_denial(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> None:
    llm.script(ToolCalls([("echo", {"text": "hi"})]), Text("No approval came, so I did not ask the server."))
    env = approval_env(model_env, tmp_path, APPROVAL_TIMEOUT="1")
    first = await run_bot(["console"], stdin=f"{QUESTION}\n", env=env, cwd=tmp_path)
    assert first.code == 0, first.err
    # The deadline is on disk: the next start, whenever it comes, finds it passed and denies the call. Stdin is
    # held open until the answer arrives, so nothing here waits for a fixed time.
    second = await console_until(env, tmp_path, "did not ask the server.")
    assert "⌛ No answer within 1 s: denied." in second
    assert "no one approved it within 1 s" in tool_answer(llm.requests[1])


async def test_stop_cancels_the_waiting_call_without_a_model_call_and_the_chat_goes_on(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    llm.script(ToolCalls([("echo", {"text": "hi"})]), Text("Hello again."))
    env = approval_env(model_env, tmp_path)
    done = await run_bot(["console"], stdin=f"{QUESTION}\n/stop\nhello\n", env=env, cwd=tmp_path)
    assert done.code == 0, done.err
    assert done.out.index("⏹ Cancelled.") < done.out.index("bot › Hello again.")
    assert len(llm.requests) == 2  # the question, then "hello": the stop itself called no model
    sent = llm.requests[1]["messages"]
    cancelled = next(m for m in sent if m["role"] == "tool")
    assert "Cancelled" in str(cancelled["content"]) and sent[-1] == {"role": "user", "content": "hello"}


async def test_web_fetch_asks_first_with_the_setting(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> None:
    llm.script(ToolCalls([("web_fetch", {"url": "http://127.0.0.1:9/page"})]), Text("I did not fetch it."))
    env = {**model_env, "WEB_FETCH_REQUIRE_APPROVAL": "true"}
    done = await run_bot(["console"], stdin="read http://127.0.0.1:9/page\nn\n", env=env, cwd=tmp_path)
    assert done.code == 0, done.err
    assert "**web_fetch**" in done.out and '"url": "http://127.0.0.1:9/page"' in done.out
    assert "User rejected the tool call for `web_fetch`" in tool_answer(llm.requests[1])
