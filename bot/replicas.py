"""Replica mode (REDIS_URL): what the bot processes serving one bot share through Redis.

Redis holds only what is short-lived and safe to lose with it: which updates were already answered (`Dedupe`)
and who polls Telegram (`bot.poller`). Everything durable (memory, the outbox) is in Postgres. The client is
redis-py's asyncio client, with its own connection pool and retries on a dropped connection.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from bot.settings import SettingsError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
"""Seconds to reach Redis, and to wait for one of its answers: a stalled Redis must not hold an update for long."""


def where(url: str) -> str:
    """`host:port/db` of a Redis URL, without its password (for messages)."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or '/0'}"
    except ValueError:
        return "(a malformed URL)"


@contextlib.asynccontextmanager
async def open_redis(url: str) -> AsyncIterator[redis.Redis]:
    """A Redis client for the lifetime of the block, checked with a PING first.

    Raises:
        SettingsError: Redis cannot be reached or refused the login (one line naming REDIS_URL, no password).
    """
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=CONNECT_TIMEOUT,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    try:
        try:
            await client.ping()
        except RedisError as exc:
            raise SettingsError(f"cannot reach Redis at REDIS_URL ({where(url)}): {type(exc).__name__}") from None
        yield client
    finally:
        await client.aclose()


async def redis_problem(client: redis.Redis) -> str | None:
    """For /readyz: None when Redis answers a PING, else why not."""
    try:
        await client.ping()
    except RedisError as exc:
        return type(exc).__name__
    return None
