"""The console bot with piped stdin/stdout: each line echoed, then its whole answer, against a real
OpenAI-compatible server."""

from __future__ import annotations

from pathlib import Path

from tests.doubles.openai_server import Break, Error, OpenAIDouble, Text, ToolCalls
from tests.scenarios.conftest import bot_env, run_bot


async def test_plain_answer_is_printed_once_whole(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> None:
    answer = "Hello! This answer arrives in many small pieces but is printed once."
    llm.script(Text(answer, chunk_size=3))
    done = await run_bot(["console"], stdin="hi there\n", env=model_env, cwd=tmp_path)
    assert (done.code, done.out) == (0, f"you › hi there\nbot › {answer}\n\n")
    assert llm.requests[0]["messages"][-1] == {"role": "user", "content": "hi there"}
    assert llm.requests[0]["stream"] is True


async def test_tool_round_trip_then_the_answer(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> None:
    llm.script(
        ToolCalls([("calculator", {"expression": "6*7"})], text_before="Let me compute that."),
        Text("6 × 7 is **42**."),
    )
    done = await run_bot(["console"], stdin="what is 6*7?\n", env=model_env, cwd=tmp_path)
    assert (done.code, done.out) == (0, "you › what is 6*7?\nbot › Let me compute that.\n\n6 × 7 is **42**.\n\n")
    tool_answer = llm.requests[1]["messages"][-1]
    assert (tool_answer["role"], tool_answer["content"]) == ("tool", "42")  # the real calculator ran


async def test_broken_stream_keeps_the_text_so_far_and_the_bot_keeps_answering(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    llm.script(Break("The first answer was going well until", after_chars=24), Text("Second answer."))
    done = await run_bot(["console"], stdin="one\ntwo\n", env=model_env, cwd=tmp_path)
    assert done.out == (
        "you › one\nbot › The first answer was goi\n\n⚠️ The connection to the model server was lost mid-answer.\n\n"
        "you › two\nbot › Second answer.\n\n"
    )
    assert done.code == 1  # a script learns that a reply failed
    assert len(llm.requests) == 2


async def test_memory_survives_a_restart(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> None:
    llm.script(Text("Nice to meet you, Ada."), Text("You are Ada."))
    await run_bot(["console"], stdin="my name is Ada\n", env=model_env, cwd=tmp_path)
    done = await run_bot(["console"], stdin="who am I?\n", env=model_env, cwd=tmp_path)
    assert done.out == "you › who am I?\nbot › You are Ada.\n\n"
    contents = [m["content"] for m in llm.requests[1]["messages"]]
    assert contents[-3:] == ["my name is Ada", "Nice to meet you, Ada.", "who am I?"]


async def test_reset_forgets_the_conversation(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> None:
    llm.script(Text("Noted."), Text("Fresh start."))
    done = await run_bot(["console"], stdin="remember 7\n/reset\nwhat number?\n", env=model_env, cwd=tmp_path)
    assert "forgot this conversation" in done.out
    assert [m["role"] for m in llm.requests[1]["messages"]] == ["system", "user"]


async def test_offline_demo_answers_with_a_tool_round_trip(tmp_path: Path) -> None:
    done = await run_bot(["console"], stdin="what is 2+2\n", env=bot_env(tmp_path), cwd=tmp_path)
    assert done.code == 0
    assert "calculator" in done.out and "**4**" in done.out  # the answer quotes the tool's result
    assert "demo" in done.out.lower() and "OPENAI_API_KEY" in done.out


async def test_malformed_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    done = await run_bot(["console"], stdin="", env=bot_env(tmp_path, STREAM_MODE="fast"), cwd=tmp_path)
    assert done.code == 2
    assert done.err.count("\n") == 1 and "STREAM_MODE" in done.err and "Traceback" not in done.err


async def test_the_log_goes_to_a_file_without_secrets(llm: OpenAIDouble, model_env: dict, tmp_path: Path) -> None:
    llm.script(Text("ok"))
    env = {**model_env, "LOG_LEVEL": "DEBUG"}
    done = await run_bot(["console"], stdin="hi\n", env=env, cwd=tmp_path)
    assert done.out == "you › hi\nbot › ok\n\n"
    log = (tmp_path / "data" / "livebot.log").read_text()
    assert "DEBUG" in log and "DEBUG" not in done.err  # logging was on, into the file
    assert env["OPENAI_API_KEY"] not in log + done.err + done.out


async def test_a_failed_reply_makes_the_exit_status_non_zero(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    llm.script(Text("Fine."), Error(401, "Incorrect API key provided", "invalid_request_error"), Text("Fine again."))
    done = await run_bot(["console"], stdin="one\ntwo\nthree\n", env=model_env, cwd=tmp_path)
    assert done.code == 1
    assert "⚠️ The model server rejected the API key." in done.out and "Fine again." in done.out
    assert "Traceback" not in done.out + done.err
    assert (
        done.err.strip().endswith(f"(problems were logged to {Path('data') / 'livebot.log'})")
        or "livebot.log" in done.err
    )


async def test_lines_with_a_command_run_in_order_and_slash_stop_alone_says_nothing_runs(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    done = await run_bot(["console"], stdin="/stop\n", env=model_env, cwd=tmp_path)
    assert done.out == "you › /stop\nbot › There is no reply in progress to stop.\n\n"
    assert llm.requests == []


async def test_terminal_control_sequences_in_the_answer_are_never_written(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    hostile = "Hi\x1b]0;pwned title\x07 \x1b]52;c;ZXZpbA==\x07 \x1b[2J\x1b[H there\x9b31m"
    llm.script(Text(hostile))
    done = await run_bot(["console", "--plain"], stdin="hi\n", env=model_env, cwd=tmp_path)
    assert "\x1b" not in done.out and "\x07" not in done.out and "\x9b" not in done.out
    assert "␛]0;pwned title␇" in done.out  # shown, harmless


async def test_unreachable_database_stops_start_up_with_one_line_and_no_password(tmp_path: Path) -> None:
    env = bot_env(tmp_path, DATABASE_URL="postgresql://bot:hunter2-secret@127.0.0.1:1/livebot")
    done = await run_bot(["console"], stdin="hi\n", env=env, cwd=tmp_path)
    assert done.code == 2
    assert done.err.strip().count("\n") == 0 and "Postgres" in done.err
    assert "hunter2-secret" not in done.err + done.out
