"""What an operator watches: Prometheus metrics, a liveness and a readiness check (METRICS_PORT, off by default).

The counters and histograms below are module-level, as prometheus-client intends, and are only ever incremented
or observed on the paths that already do the work (a reply's start and end, a platform call's answer, a loop-lag
sample): an increment is a lock and an addition, no I/O. What is cheaper to read than to keep (replies in flight,
calls the limiter dropped, the outbox's depth and age) is read when /metrics is scraped, by `Live`.

- `/metrics`: the registry in Prometheus's text format.
- `/healthz`: 200 while the process's event loop answers (a stalled or dead process does not).
- `/readyz`: 200 when the bot is connected to its platform and listening, every store it uses (Postgres, Redis)
  answers, and it is not shutting down; else 503 with the reasons, one a line. A load balancer sends webhooks
  only to ready replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.webhooks import serve

if TYPE_CHECKING:
    from bot.streaming import StreamingHandler

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

_LATENCY = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300)
REPLIES_STARTED = Counter(
    "livebot_replies_started", "Replies the agent started, by platform.", ["platform"], registry=REGISTRY
)
REPLIES_FINISHED = Counter(
    "livebot_replies_finished",
    "Replies that ended, by platform and outcome (answered, stopped, shutdown, handed_over, failed).",
    ["platform", "outcome"],
    registry=REGISTRY,
)
REPLIES_FAILED = Counter(
    "livebot_replies_failed",
    "Replies that ended with a failure notice, by platform and reason (model, file, error, undelivered).",
    ["platform", "reason"],
    registry=REGISTRY,
)
FIRST_VISIBLE = Histogram(
    "livebot_first_visible_seconds",
    "From a reply's start to the first text the user sees.",
    ["platform"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
FINAL = Histogram(
    "livebot_final_seconds",
    "From a reply's start to its whole text on screen.",
    ["platform"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
PLATFORM_CALLS = Counter(
    "livebot_platform_calls", "Calls made to the platform's API, by method.", ["platform", "method"], registry=REGISTRY
)
PLATFORM_RATE_LIMITED = Counter(
    "livebot_platform_rate_limited",
    "Platform calls answered 429 (flood control), by method.",
    ["platform", "method"],
    registry=REGISTRY,
)
MODEL_ERRORS = Counter(
    "livebot_model_errors", "Agent runs that ended early, by kind (timeout, auth, ...).", ["kind"], registry=REGISTRY
)
LOOP_LAG = Histogram(
    "livebot_event_loop_lag_seconds",
    "How late the event loop ran a callback due now (sampled every 50 ms).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "livebot_duplicate_updates",
    "Updates or events delivered again (a retry, another replica's) and not answered twice.",
    ["platform"],
    registry=REGISTRY,
)
LEASES_TAKEN_OVER = Counter(
    "livebot_leases_taken_over",
    "Leases this replica took over from one that stopped renewing them (poller: Telegram's long polling;"
    " conversation: a conversation's queue and its replies cut short).",
    ["lease"],
    registry=REGISTRY,
)


class Outcome:
    """One reply's figures: counted as started when made, and as finished (with its latency) by `record`.

    Args:
        platform: The label.
        handler: The reply's StreamingHandler (its clock and the moment its first text was on screen).
    """

    def __init__(self, platform: str, handler: StreamingHandler) -> None:
        self._platform = platform
        self._handler = handler
        self._started = handler.clock.now()
        self._outcome = "answered"
        REPLIES_STARTED.labels(platform).inc()

    def failed(self, reason: str, model_error: str | None = None) -> None:
        """The reply ends with a failure notice (`model`, `file`, `error`, or its text `undelivered`)."""
        self._outcome = "failed"
        REPLIES_FAILED.labels(self._platform, reason).inc()
        if model_error is not None:
            MODEL_ERRORS.labels(model_error).inc()

    def ended(self, outcome: str) -> None:
        """The reply was cut short: `stopped` (by its user) or `shutdown`."""
        self._outcome = outcome

    def handed_over(self) -> None:
        """The reply stopped here unfinished, and another replica finishes it (this one lost the lease, or shuts
        down): finished as `handed_over`, with no final latency (the reply that finishes it has its own)."""
        self._seen()
        REPLIES_FINISHED.labels(self._platform, "handed_over").inc()

    def record(self, delivered: bool) -> None:
        """The reply is over; `delivered` says whether its whole text is on screen."""
        platform = self._platform
        self._seen()
        if delivered:
            FINAL.labels(platform).observe(self._handler.clock.now() - self._started)
        elif self._outcome != "failed":
            self.failed("undelivered")
        REPLIES_FINISHED.labels(platform, self._outcome).inc()

    def _seen(self) -> None:
        if self._handler.first_visible is not None:
            FIRST_VISIBLE.labels(self._platform).observe(self._handler.first_visible - self._started)


@dataclass(eq=False)  # registered by identity
class Live(Collector):
    """The bot's figures read when /metrics is scraped (so keeping them costs the replies nothing).

    Attributes:
        platform: The label of every figure.
        in_flight: Replies running now.
        dropped: Calls the rate limiter refused so far (intermediate updates under pressure).
        outbox: Entries waiting and the age of the oldest in seconds (awaited before each scrape).
    """

    platform: str
    in_flight: Callable[[], int]
    dropped: Callable[[], int]
    outbox: Callable[[], Awaitable[tuple[int, float]]]
    _outbox: tuple[int, float] = (0, 0.0)

    async def refresh(self) -> None:
        """Read what needs I/O (the outbox) before a scrape; a store that fails keeps the last figures."""
        try:
            self._outbox = await self.outbox()
        except Exception as exc:  # the scrape still answers; /readyz says what is down
            log.info("metrics: outbox figures not read (%s)", type(exc).__name__)

    def collect(self) -> Iterator[Any]:
        labels = [self.platform]
        gauges = (
            ("livebot_conversations_in_flight", "Replies running now.", self.in_flight()),
            ("livebot_outbox_depth", "Final messages waiting in the outbox.", self._outbox[0]),
            ("livebot_outbox_oldest_age_seconds", "Age of the oldest entry waiting in the outbox.", self._outbox[1]),
        )
        for name, doc, value in gauges:
            gauge = GaugeMetricFamily(name, doc, labels=["platform"])
            gauge.add_metric(labels, value)
            yield gauge
        dropped = CounterMetricFamily(
            "livebot_limiter_dropped", "Calls the rate limiter refused (updates skipped).", labels=["platform"]
        )
        dropped.add_metric(labels, self.dropped())
        yield dropped


@dataclass
class Readiness:
    """What /readyz checks: each check returns None when fine, else a short reason (no secrets)."""

    checks: dict[str, Callable[[], Awaitable[str | None]]] = field(default_factory=dict)
    listening: bool = False
    shutting_down: bool = False

    async def problems(self) -> list[str]:
        found = []
        if self.shutting_down:
            found.append("shutting down")
        elif not self.listening:
            found.append("platform: not connected yet")
        for name, check in self.checks.items():
            try:
                problem = await asyncio.wait_for(check(), timeout=2.0)
            except Exception as exc:
                problem = type(exc).__name__
            if problem:
                found.append(f"{name}: {problem}")
        return found


def metrics_app(live: Live | None, ready: Readiness) -> web.Application:
    """The aiohttp app of /metrics, /healthz and /readyz."""

    async def metrics(request: web.Request) -> web.Response:
        if live is not None:
            await live.refresh()
        body = await asyncio.to_thread(generate_latest, REGISTRY)  # the process collector reads /proc
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        problems = await ready.problems()
        if problems:
            return web.Response(status=503, text="".join(f"{problem}\n" for problem in problems))
        return web.Response(text="ready\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


@contextlib.asynccontextmanager
async def serve_metrics(host: str, port: int | None, live: Live | None, ready: Readiness) -> AsyncIterator[None]:
    """Serve /metrics, /healthz and /readyz on host:port for the duration of the block (nothing when port is None).

    Raises:
        SettingsError: The address cannot be listened on (one line naming METRICS_LISTEN / METRICS_PORT).
    """
    if port is None:
        yield
        return
    if live is not None:
        REGISTRY.register(live)
    try:
        runner = await serve(metrics_app(live, ready), host, port, names="METRICS_LISTEN / METRICS_PORT")
        try:
            yield
        finally:
            await runner.cleanup()
    finally:
        if live is not None:
            REGISTRY.unregister(live)


def _method(platform: str, path: str) -> str:
    """The API method a request URL calls: its last path segment under the API (never the token before it);
    downloads of files are one label, so file names never become labels."""
    if (platform == "telegram" and "/file/" in path) or (platform == "slack" and "/api/" not in path):
        return "file"
    return path.rstrip("/").rsplit("/", 1)[-1] or "unknown"


def _counted(platform: str, path: str, status: int) -> None:
    method = _method(platform, path)
    PLATFORM_CALLS.labels(platform, method).inc()
    if status == 429:
        PLATFORM_RATE_LIMITED.labels(platform, method).inc()


async def count_httpx_call(response: httpx.Response) -> None:
    """An httpx response hook (python-telegram-bot's HTTPXRequest): count the call and a 429."""
    _counted("telegram", response.request.url.path, response.status_code)


def slack_trace() -> aiohttp.TraceConfig:
    """An aiohttp trace for slack_sdk's session: count each Web API call and a 429."""

    async def on_end(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        _counted("slack", params.url.path, params.response.status)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_end)
    return trace
