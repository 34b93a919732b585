"""What the checkpoint says of a run a crash cut short, and going on with it: a second agent on the same memory
plays the restarted process while the first is still stuck where the crash caught it (kill -9 itself is in
tests/scenarios/test_crash_recovery.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from agent import AgentConfig, open_agent
from agent.events import TextDelta
from agent.run import Cut
from tests.agent.conftest import collect, default_tools, text_of
from tests.doubles.openai_server import Held, OpenAIDouble, Text

MakeConfig = Callable[..., AgentConfig]


async def test_a_run_cut_mid_answer_goes_on_with_the_stored_question(
    llm: OpenAIDouble, make_config: MakeConfig
) -> None:
    release = asyncio.Event()
    llm.script(Held("Half of it, then the rest.", after_chars=10, release=release), Text("The whole answer."))
    config = make_config(llm)
    started = time.time()
    async with open_agent(config, default_tools()) as first, open_agent(config, default_tools()) as restarted:
        run = first.run("what is up?", thread_id="t:1")
        assert isinstance(await anext(run), TextDelta)  # the model is writing when the process dies
        assert await restarted.cut_run("t:1", since=started) == (Cut.UNFINISHED, "")
        events = await collect(restarted.carry_on("t:1"))
        assert text_of(events) == "The whole answer."
        assert [m["content"] for m in llm.requests[1]["messages"] if m["role"] == "user"] == ["what is up?"]
        assert await restarted.cut_run("t:1", since=started) == (Cut.FINISHED, "The whole answer.")
        release.set()
        await run.aclose()


async def test_a_run_whose_question_never_reached_the_memory_or_whose_thread_is_gone_is_lost(
    llm: OpenAIDouble, make_config: MakeConfig
) -> None:
    llm.script(Text("Done."))
    async with open_agent(make_config(llm), default_tools()) as agent:
        assert await agent.cut_run("t:1", since=time.time()) == (Cut.LOST, "")  # nothing there at all
        await collect(agent.run("hello", thread_id="t:1"))
        # A reply that started after the last checkpoint: its question was never stored.
        assert await agent.cut_run("t:1", since=time.time() + 1) == (Cut.LOST, "")
        await agent.reset("t:1")
        assert await agent.cut_run("t:1", since=0) == (Cut.LOST, "")
