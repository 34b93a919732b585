"""web_search against the SearXNG, Brave and Tavily doubles on 127.0.0.1, through the real httpx client.

The backends are configured URLs, not chosen by the model, so they are reached on loopback without the
WEB_FETCH_ALLOW_PRIVATE switch that web_fetch needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.doubles.search_api import BRAVE_KEY, TAVILY_KEY, SearchDouble
from tools import default_tools
from tools.catalog import describe_tools
from tools.web_search import Brave, SearchError, Searxng, Tavily, make_web_search, search_web

RESULTS = [
    ("Python 3.11 release notes", "https://docs.python.org/3.11/whatsnew/3.11.html", "What's new in Python 3.11"),
    ("PEP 654", "https://peps.python.org/pep-0654/", "Exception groups and except*"),
]


@pytest.fixture
async def api() -> AsyncIterator[SearchDouble]:
    async with SearchDouble(results=list(RESULTS)) as double:
        yield double


async def test_searxng_results_are_numbered_titles_urls_and_snippets(api: SearchDouble) -> None:
    tool = make_web_search([Searxng(api.searxng_url)])
    assert tool is not None
    text = await tool.ainvoke({"query": "python 3.11"})
    assert text == (
        "Results for 'python 3.11' (SearXNG):\n\n"
        "1. Python 3.11 release notes\n   https://docs.python.org/3.11/whatsnew/3.11.html\n"
        "   What's new in Python 3.11\n\n"
        "2. PEP 654\n   https://peps.python.org/pep-0654/\n   Exception groups and except*"
    )
    assert api.requests[0]["query"] == {"q": "python 3.11", "format": "json"}


async def test_brave_sends_its_key_and_markup_in_snippets_becomes_plain_text(api: SearchDouble) -> None:
    text = await search_web([Brave(BRAVE_KEY, url=api.brave_url)], "pep", 1)
    assert "(Brave Search)" in text and "1. Python 3.11 release notes" in text and "2." not in text
    assert "About What's new in Python 3.11 & more" in text  # <strong> and &amp; are gone
    assert api.requests[0]["headers"]["X-Subscription-Token"] == BRAVE_KEY
    assert api.requests[0]["query"]["count"] == "1"


async def test_tavily_sends_a_bearer_key_and_the_result_count(api: SearchDouble) -> None:
    text = await search_web([Tavily(TAVILY_KEY, url=api.tavily_url)], "exception groups", 2)
    assert "(Tavily)" in text and "https://peps.python.org/pep-0654/" in text
    assert api.requests[0]["json"] == {"query": "exception groups", "max_results": 2}


async def test_a_refused_key_is_reported_by_service_without_the_key(api: SearchDouble) -> None:
    with pytest.raises(SearchError) as refused:
        await search_web([Brave("BSA-wrong-key", url=api.brave_url)], "x", 3)
    assert "Brave Search refused the request (HTTP 401)" in str(refused.value)
    assert "BSA-wrong-key" not in str(refused.value)


async def test_the_next_backend_answers_when_the_first_fails(api: SearchDouble) -> None:
    api.json_enabled = False  # a SearXNG whose JSON format is not enabled answers 403
    text = await search_web([Searxng(api.searxng_url), Tavily(TAVILY_KEY, url=api.tavily_url)], "pep", 5)
    assert "(Tavily)" in text


async def test_every_backend_failing_names_each_problem(api: SearchDouble) -> None:
    api.fail_with = 503
    with pytest.raises(SearchError) as failed:
        await search_web([Searxng(api.searxng_url), Brave(BRAVE_KEY, url=api.brave_url)], "pep", 5)
    assert str(failed.value) == "web search failed: SearXNG answered HTTP 503; Brave Search answered HTTP 503"


async def test_an_unreachable_backend_is_an_error_for_the_model() -> None:
    with pytest.raises(SearchError, match="SearXNG could not be reached"):
        await search_web([Searxng("http://127.0.0.1:1")], "pep", 5)


async def test_hostile_results_are_tamed(api: SearchDouble) -> None:
    api.results = [
        ("x" * 5000, "https://example.com/long", "<script>alert(1)</script>" + "y" * 5000),
        ("Bad link", "javascript:alert(1)", "never shown"),
    ]
    text = await search_web([Searxng(api.searxng_url)], "pep", 5)
    assert "javascript:" not in text and "never shown" not in text and "<script>" not in text
    assert len(text) < 700


async def test_without_a_backend_there_is_no_tool_and_tools_says_how_to_add_one() -> None:
    tools = default_tools()
    assert "web_search" not in [tool.name for tool in tools]
    assert "SEARXNG_URL" in describe_tools(tools) and "BRAVE_API_KEY" in describe_tools(tools)
    with_search = default_tools(search=[Searxng("http://127.0.0.1:1")])
    assert "web_search" in [tool.name for tool in with_search]
    assert "SEARXNG_URL" not in describe_tools(with_search)
