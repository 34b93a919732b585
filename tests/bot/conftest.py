"""Fixtures of the bot's unit tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis


@pytest.fixture
async def client() -> AsyncIterator[redis.Redis]:
    """A client of LIVEBOT_TEST_REDIS_URL (the test skipped without it); tests keep apart by key prefix."""
    url = os.environ.get("LIVEBOT_TEST_REDIS_URL")
    if not url:
        pytest.skip("LIVEBOT_TEST_REDIS_URL is not set (.ci/run starts Redis and sets it)")
    async with redis.Redis.from_url(url) as shared:
        yield shared
