"""Running the real bot as a subprocess, with settings that point it at the doubles the test started."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.doubles.openai_server import OpenAIDouble

ROOT = Path(__file__).resolve().parents[2]
_OWN_SETTINGS = ("OPENAI_", "LLM_", "TELEGRAM_", "SLACK_", "STREAM_", "BOT_", "DATABASE_URL", "LOG_LEVEL")


@dataclass
class Finished:
    code: int
    out: str
    err: str


def bot_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a bot process: none of the developer's own settings, data in `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_SETTINGS)}
    env.update(BOT_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT), DEMO_TOKEN_DELAY="0", **settings)
    return env


async def run_bot(args: list[str], *, stdin: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> Finished:
    """Run `python -m bot ARGS` with piped stdin and wait for it to exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), timeout)
    assert process.returncode is not None
    return Finished(process.returncode, out.decode(), err.decode())


@pytest.fixture
async def llm() -> AsyncIterator[OpenAIDouble]:
    async with OpenAIDouble() as double:
        yield double


@pytest.fixture
def model_env(tmp_path: Path, llm: OpenAIDouble) -> dict[str, str]:
    """Settings for a bot that talks to the OpenAI double."""
    return bot_env(tmp_path, OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="sk-test-" + "x" * 24, LLM_MODEL="m")
