"""Each update or event answered once, however often the platform delivers it.

Platforms deliver at least once: Slack retries an event it thinks was not acknowledged in 3 s, Telegram hands a
new poller the updates the last one had not confirmed (after a crash) and retries a webhook that failed. With
one process the ids seen lately are kept in memory; with replicas (REDIS_URL) in Redis, where the first replica
to claim an id (`SET key 1 NX EX ttl`: atomic, so exactly one claim wins) answers it and every other delivery,
to any replica, is dropped. The key expires after `TTL`: redeliveries come within minutes.
"""

from __future__ import annotations

import logging

import redis.asyncio as redis
from redis.exceptions import RedisError

from bot.metrics import DUPLICATES
from channels.slack.inbound import SeenEvents

log = logging.getLogger(__name__)

TTL = 3600
"""Seconds an id is remembered in Redis."""


class Dedupe:
    """Says yes to an id the first time any replica (or this process) sees it.

    Args:
        platform: The metrics label.
        client: The shared Redis, or None to remember in this process (the last 4096 ids).
        namespace: Redis keys' prefix: one per bot, so two bots sharing a Redis never meet.
    """

    def __init__(self, platform: str, client: redis.Redis | None = None, namespace: str = "") -> None:
        self._platform = platform
        self._client = client
        self._namespace = namespace
        self._seen = SeenEvents()

    async def first(self, update_id: str) -> bool:
        """Whether `update_id` is new (and now claimed). When Redis cannot be asked, the update is answered: a
        rare duplicate answer is better than a lost question."""
        if self._client is None:
            new = self._seen.first_time(update_id)
        else:
            try:
                new = bool(await self._client.set(f"{self._namespace}:{update_id}", 1, nx=True, ex=TTL))
            except RedisError as exc:
                log.warning("%s: cannot check update %s in Redis (%s); answering it", self._platform, update_id, exc)
                return True
        if not new:
            DUPLICATES.labels(self._platform).inc()
            log.info("%s: update %s delivered again; already answered", self._platform, update_id)
        return new
