"""web_search in the running bot: settings choose the backend, the model's call reaches it, the results reach the
model. The SearXNG double listens on 127.0.0.1 with WEB_FETCH_ALLOW_PRIVATE off: a configured search backend is
not a URL the model chose, so it is not held to web_fetch's private-address rule."""

from __future__ import annotations

from pathlib import Path

from tests.doubles.openai_server import OpenAIDouble, Text, ToolCalls
from tests.doubles.search_api import TAVILY_KEY, SearchDouble
from tests.scenarios.conftest import run_bot


async def test_the_model_searches_through_searxng_and_reads_the_results(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    llm.script(ToolCalls([("web_search", {"query": "pep 654", "count": 3})]), Text("PEP 654 adds exception groups."))
    async with SearchDouble(results=[("PEP 654", "https://peps.python.org/pep-0654/", "Exception groups")]) as api:
        env = {**model_env, "SEARXNG_URL": api.searxng_url}
        done = await run_bot(["console"], stdin="/tools\nwhat is pep 654?\n", env=env, cwd=tmp_path)
    assert done.code == 0, done.err
    assert "`web_search`" in done.out and "SEARXNG_URL" not in done.out
    assert done.out.endswith("you › what is pep 654?\nbot › PEP 654 adds exception groups.\n\n")
    assert api.requests[0]["query"] == {"q": "pep 654", "format": "json"}
    tool = llm.requests[1]["messages"][-1]
    assert tool["role"] == "tool" and "1. PEP 654\n   https://peps.python.org/pep-0654/" in tool["content"]


async def test_a_hosted_backend_takes_over_when_searxng_fails(
    llm: OpenAIDouble, model_env: dict, tmp_path: Path
) -> None:
    llm.script(ToolCalls([("web_search", {"query": "pep 654"})]), Text("Found it."))
    async with SearchDouble(results=[("PEP 654", "https://peps.python.org/pep-0654/", "Exception groups")]) as api:
        api.json_enabled = False
        env = {
            **model_env,
            "SEARXNG_URL": api.searxng_url,
            "TAVILY_API_KEY": TAVILY_KEY,
            "TAVILY_API_URL": api.tavily_url,
        }
        done = await run_bot(["console"], stdin="search\n", env=env, cwd=tmp_path)
    assert done.code == 0, done.err
    assert "(Tavily)" in llm.requests[1]["messages"][-1]["content"]
    assert TAVILY_KEY not in done.err


async def test_without_a_backend_tools_says_how_to_add_one(model_env: dict, tmp_path: Path) -> None:
    done = await run_bot(["console"], stdin="/tools\n", env=model_env, cwd=tmp_path)
    assert "Web search is off" in done.out and "SEARXNG_URL" in done.out and "TAVILY_API_KEY" in done.out
