"""Search APIs for tests, on 127.0.0.1: SearXNG's JSON API, Brave Search's web search and Tavily's search.

Each answers in the shape the real service documents and is as strict about its key as it is: Brave wants
`X-Subscription-Token`, Tavily `Authorization: Bearer <key>`; a wrong or missing key gets the service's 401/403.
SearXNG answers 403 to `format=json` unless the instance enables it (`json_enabled`), as a default install does.
Tests set `results` (title, url, snippet) and read `requests` (method, path, query, headers, JSON body).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BRAVE_KEY = "BSA-test-key-0123456789"
TAVILY_KEY = "tvly-test-key-0123456789"


@dataclass
class SearchDouble:
    """All three services on one server: `searxng_url`, `brave_url`, `tavily_url`."""

    results: list[tuple[str, str, str]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    json_enabled: bool = True
    fail_with: int | None = None
    """Answer every request with this HTTP status (a service that is down or over its quota)."""
    hold: asyncio.Event | None = None
    """While set to an event that is not set, requests wait for it before they are answered (a slow service)."""
    root: str = ""
    _runner: web.AppRunner | None = None

    @property
    def searxng_url(self) -> str:
        return f"{self.root}/searxng"

    @property
    def brave_url(self) -> str:
        return f"{self.root}/res/v1/web/search"

    @property
    def tavily_url(self) -> str:
        return f"{self.root}/tavily/search"

    async def __aenter__(self) -> SearchDouble:
        app = web.Application()
        app.router.add_get("/searxng/search", self._searxng)
        app.router.add_get("/res/v1/web/search", self._brave)
        app.router.add_post("/tavily/search", self._tavily)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.root = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _record(self, request: web.Request) -> web.Response | None:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "json": body,
            }
        )
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_with is not None:
            return web.json_response({"error": "unavailable"}, status=self.fail_with)
        return None

    async def _searxng(self, request: web.Request) -> web.Response:
        if failed := await self._record(request):
            return failed
        if request.query.get("format") != "json" or not self.json_enabled:
            return web.Response(status=403, text="403 Forbidden")
        if not request.query.get("q"):
            return web.Response(status=400, text="no query")
        items = [{"title": t, "url": u, "content": s, "engine": "double"} for t, u, s in self.results]
        return web.json_response({"query": request.query["q"], "number_of_results": len(items), "results": items})

    async def _brave(self, request: web.Request) -> web.Response:
        if failed := await self._record(request):
            return failed
        if request.headers.get("X-Subscription-Token") != BRAVE_KEY:
            return web.json_response(
                {"type": "ErrorResponse", "error": {"code": "SUBSCRIPTION_TOKEN_INVALID", "status": 422}}, status=401
            )
        count = int(request.query.get("count", "20"))
        items = [
            {"title": t, "url": u, "description": f"About <strong>{s}</strong> &amp; more", "type": "search_result"}
            for t, u, s in self.results[:count]
        ]
        return web.json_response(
            {"type": "search", "query": {"original": request.query["q"]}, "web": {"results": items}}
        )

    async def _tavily(self, request: web.Request) -> web.Response:
        if failed := await self._record(request):
            return failed
        if request.headers.get("Authorization") != f"Bearer {TAVILY_KEY}":
            return web.json_response({"detail": {"error": "Unauthorized: missing or invalid API key."}}, status=401)
        body = await request.json()
        items = [{"title": t, "url": u, "content": s, "score": 0.9} for t, u, s in self.results]
        return web.json_response(
            {"query": body["query"], "results": items[: body.get("max_results", 5)], "response_time": 0.1}
        )
