"""`web_search`: titles, URLs and snippets from a search backend, for the model to cite and read with web_fetch.

Backends are chosen by settings: a self-hosted SearXNG (its JSON API), Brave Search and Tavily. With several, the
first that answers wins (in that order), so a hosted API can back up a SearXNG that is down. With none, the tool is
not offered at all (`make_web_search` returns None), and /tools says how to add one.

The backends' URLs come from the bot's settings, never from the model, so unlike web_fetch they are not checked
against private addresses: a SearXNG on the same machine or network is the usual set-up. What a backend sends back
is still read as hostile: the body is capped at `MAX_BODY_BYTES`, snippets are reduced to plain text and cut, and
only http(s) result URLs are passed on.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

__all__ = [
    "NO_BACKEND_HINT",
    "Brave",
    "SearchBackend",
    "SearchError",
    "SearchResult",
    "Searxng",
    "Tavily",
    "make_web_search",
]

BRAVE_URL = "https://api.search.brave.com/res/v1/web/search"
TAVILY_URL = "https://api.tavily.com/search"
NO_BACKEND_HINT = (
    "Web search is off: set `SEARXNG_URL` (a SearXNG instance with its JSON format enabled), `BRAVE_API_KEY` or "
    "`TAVILY_API_KEY` and restart the bot to add it."
)
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_SNIPPET_CHARS = 300
MAX_TITLE_CHARS = 200
TIMEOUT = 10.0
_TAG = re.compile(r"<[^>]{0,200}>")
_HEADERS = {"User-Agent": "livebot/0.1 (web_search tool)", "Accept": "application/json"}


class SearchError(Exception):
    """A backend did not answer usefully; the message is for the model (no key in it)."""


@dataclass(frozen=True, slots=True)
class SearchResult:
    title: str
    url: str
    snippet: str


class SearchBackend(Protocol):
    """One search API. `name` appears in errors; `search` raises SearchError or httpx errors."""

    @property
    def name(self) -> str: ...

    async def search(self, client: httpx.AsyncClient, query: str, count: int) -> list[SearchResult]: ...


@dataclass(frozen=True, slots=True)
class Searxng:
    """A SearXNG instance (SEARXNG_URL, its root); its settings.yml must list `json` under `search.formats`."""

    url: str
    name: str = "SearXNG"

    async def search(self, client: httpx.AsyncClient, query: str, count: int) -> list[SearchResult]:
        endpoint = self.url.rstrip("/") + "/search"
        body = await _get_json(client, "GET", endpoint, self.name, params={"q": query, "format": "json"})
        return _results(body.get("results"), "title", "url", "content")[:count]


@dataclass(frozen=True, slots=True)
class Brave:
    """Brave Search's web search API (BRAVE_API_KEY)."""

    api_key: str = field(repr=False)
    url: str = BRAVE_URL
    name: str = "Brave Search"

    async def search(self, client: httpx.AsyncClient, query: str, count: int) -> list[SearchResult]:
        headers = {"X-Subscription-Token": self.api_key}
        body = await _get_json(client, "GET", self.url, self.name, params={"q": query, "count": count}, headers=headers)
        web = body.get("web")
        return _results(web.get("results") if isinstance(web, dict) else None, "title", "url", "description")[:count]


@dataclass(frozen=True, slots=True)
class Tavily:
    """Tavily's search API (TAVILY_API_KEY)."""

    api_key: str = field(repr=False)
    url: str = TAVILY_URL
    name: str = "Tavily"

    async def search(self, client: httpx.AsyncClient, query: str, count: int) -> list[SearchResult]:
        headers = {"Authorization": f"Bearer {self.api_key}"}
        payload = {"query": query, "max_results": count}
        body = await _get_json(client, "POST", self.url, self.name, json=payload, headers=headers)
        return _results(body.get("results"), "title", "url", "content")[:count]


async def _get_json(client: httpx.AsyncClient, method: str, url: str, name: str, **kwargs: Any) -> dict[str, Any]:
    async with client.stream(method, url, **kwargs) as response:
        if response.status_code in (401, 403):
            raise SearchError(f"{name} refused the request (HTTP {response.status_code}): check its key or settings")
        if response.status_code == 429:
            raise SearchError(f"{name} is rate-limiting this bot (HTTP 429); try again later")
        if not response.is_success:
            raise SearchError(f"{name} answered HTTP {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise SearchError(f"{name} sent more than {MAX_BODY_BYTES // 1024 // 1024} MB")
    try:
        parsed = json.loads(body)
    except ValueError:
        raise SearchError(f"{name} did not answer with JSON") from None
    if not isinstance(parsed, dict):
        raise SearchError(f"{name} answered with unexpected JSON")
    return parsed


def _results(items: object, title_key: str, url_key: str, snippet_key: str) -> list[SearchResult]:
    if not isinstance(items, list):
        return []
    results = []
    for item in items:
        if not isinstance(item, dict):
            continue
        url = item.get(url_key)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            continue
        title = _plain(item.get(title_key), MAX_TITLE_CHARS) or url
        results.append(SearchResult(title, url, _plain(item.get(snippet_key), MAX_SNIPPET_CHARS)))
    return results


def _plain(value: object, limit: int) -> str:
    """Snippets may carry markup (Brave wraps matches in <strong>): reduce to one line of plain text."""
    if not isinstance(value, str):
        return ""
    text = " ".join(html.unescape(_TAG.sub("", value[: limit * 4])).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def format_results(query: str, results: Sequence[SearchResult], source: str) -> str:
    """Numbered results the model can cite, one block each: title, URL, snippet."""
    if not results:
        return f"No results for {query!r} ({source})."
    blocks = [
        f"{n}. {result.title}\n   {result.url}" + (f"\n   {result.snippet}" if result.snippet else "")
        for n, result in enumerate(results, 1)
    ]
    return f"Results for {query!r} ({source}):\n\n" + "\n\n".join(blocks)


async def search_web(backends: Sequence[SearchBackend], query: str, count: int, *, timeout: float = TIMEOUT) -> str:
    """Ask the backends in order; the first that answers gives the results.

    Raises:
        SearchError: Every backend failed; the message names each one's problem.
    """
    query = query.strip()
    if not query:
        raise SearchError("the query is empty")
    problems = []
    async with httpx.AsyncClient(headers=_HEADERS, timeout=timeout, follow_redirects=False) as client:
        for backend in backends:
            try:
                async with asyncio.timeout(timeout):
                    results = await backend.search(client, query, count)
            except TimeoutError:
                problems.append(f"{backend.name} did not answer within {timeout:g} s")
            except SearchError as exc:
                problems.append(str(exc))
            except httpx.HTTPError as exc:
                problems.append(f"{backend.name} could not be reached ({type(exc).__name__})")
            else:
                return format_results(query, results, backend.name)
    raise SearchError("web search failed: " + "; ".join(problems))


class _Args(BaseModel):
    query: str = Field(description="What to search for, as you would type it into a search engine.")
    count: int = Field(5, ge=1, le=10, description="How many results to return (1-10).")


def make_web_search(backends: Sequence[SearchBackend], *, timeout: float = TIMEOUT) -> BaseTool | None:
    """Build the `web_search` tool over `backends`, or None when there are none (the tool is then not offered)."""
    if not backends:
        return None
    chosen = tuple(backends)

    async def web_search(query: str, count: int = 5) -> str:
        return await search_web(chosen, query, count, timeout=timeout)

    return StructuredTool.from_function(
        coroutine=web_search,
        name="web_search",
        description=(
            "Search the web. Returns numbered results with a title, URL and snippet each. Cite the URLs you use; "
            "to read a result in full, pass its URL to web_fetch."
        ),
        args_schema=_Args,
    )
