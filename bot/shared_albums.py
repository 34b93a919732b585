"""Replica mode: an album's items collected in Redis whichever replica each lands on, and answered once, whole.

Telegram sends each photo or file of an album as a message of its own; behind a load balancer they land on
different replicas, so the one-process collector (`channels.telegram.albums`) would answer each replica's part on
its own. Here each item is appended to a list per album (`add`), and the album's due time (its latest item plus
`quiet`, on Redis's clock) is its score in one sorted set per bot. Every replica that took in an item waits until
the album is due, then tries to take it: one Lua script checks the due time and takes every item (an item that came
meanwhile moved the due time on: the waiter waits again), so exactly one replica gets the album and hands it to
`complete`, its items in the order the platform sent them.

The album lives in Redis, not in the replica that waits for it: when every replica that took in one of its items
dies or shuts down before it is due, any replica's sweep (every `SWEEP_EVERY` seconds) takes the albums overdue
by `OVERDUE`, about two seconds late. An album's items expire after `TTL` (the sweep forgets its due time then).
What a dying replica can still lose is what any message risks: an item it acknowledged and had not added yet, and
an album it took and had not queued yet (`complete` queues it at once, in Redis: a few milliseconds).

Why these primitives: a list keeps every item whatever replica adds it; a sorted set on Redis's clock finds the
overdue albums without scanning keys and keeps every replica on one clock; one script takes atomically, without
a lock or a designated owner that could die holding it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from bot.shared_queues import SWEEP_EVERY, Entry
from channels.inbound import Incoming

log = logging.getLogger(__name__)

OVERDUE = 2.0
"""Seconds past its due time after which an album is taken by a sweep (the replicas that waited for it died)."""
TTL = 3600
"""Seconds an album's items are kept in Redis when no replica takes them."""
Fetcher = Callable[[dict[str, Any]], Callable[[int], Awaitable[bytes]]]

_ADD = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local now = redis.call('TIME')
return redis.call('ZADD', KEYS[2], now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(ARGV[3]), ARGV[4])
"""
_TAKE = """
local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not due then return false end
local now = redis.call('TIME')
local wait = tonumber(due) - (now[1] * 1000 + math.floor(now[2] / 1000))
if wait > 0 then return wait end
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return items
"""
_OVERDUE = """
local now = redis.call('TIME')
local due = now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', due, 'LIMIT', 0, ARGV[2])
"""


@dataclass(frozen=True, slots=True)
class AlbumItem:
    """One item of an album as the replicas share it.

    Attributes:
        incoming: The item as its own message (its text, sender, files and `sent`).
        address: Where a reply to it goes, as data (what the platform needs to rebuild its target).
        addressed: The item was for the bot by itself (in a group: it mentions the bot); an album is answered
            when one of its items was.
    """

    incoming: Incoming
    address: dict[str, Any]
    addressed: bool

    def encode(self) -> str:
        return json.dumps({"entry": Entry.of(self.incoming, self.address).encode(), "addressed": self.addressed})

    @classmethod
    def decode(cls, raw: bytes | str, fetcher: Fetcher) -> AlbumItem:
        data = json.loads(raw)
        entry = Entry.decode(data["entry"])
        assert entry.address is not None
        return cls(entry.incoming(fetcher), entry.address, bool(data["addressed"]))


class SharedAlbums:
    """The albums of one bot's replicas being collected.

    Args:
        client: The Redis the replicas share.
        prefix: The bot's keys' prefix (`livebot:<platform>:<bot id>`).
        fetcher: The download of an item's file another replica took in (`ChannelBot.fetcher`).
        complete: Takes a whole album, its items in the order they were sent; called once per album, by one
            replica.
        quiet: Seconds without another item after which an album is whole.
        overdue: See `OVERDUE` (tests shorten it).
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        fetcher: Fetcher,
        complete: Callable[[list[AlbumItem]], None],
        *,
        quiet: float,
        overdue: float = OVERDUE,
    ) -> None:
        self._prefix = prefix
        self._due = f"{prefix}:albums"
        self._fetcher = fetcher
        self._complete = complete
        self._quiet = quiet
        self._overdue = overdue
        self._add = client.register_script(_ADD)
        self._take = client.register_script(_TAKE)
        self._overdue_albums = client.register_script(_OVERDUE)
        self._waiting: dict[str, int] = {}  # album -> this replica's waiters for it
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    @property
    def waiting(self) -> int:
        """Albums this replica waits for now."""
        return len(self._waiting)

    def start(self) -> None:
        """Look for overdue albums (every replica does) until `close`."""
        self._spawn(self._sweep())

    async def add(self, album: str, item: AlbumItem) -> None:
        """Add `item` to `album` (unique per bot: the chat and the media group); this replica then waits for the
        album to be whole and tries to take it, unless it waits for it already.

        Raises:
            RedisError: Redis cannot take it (the caller collects the album in memory, as one process does).
        """
        created = await self._add(
            keys=[self._list(album), self._due],
            args=[item.encode(), TTL * 1000, int(self._quiet * 1000), album],
        )
        if created or not self._waiting.get(album):  # (a new album may reuse an id whose waiter is ending)
            self._waiting[album] = self._waiting.get(album, 0) + 1
            self._spawn(self._wait(album))

    async def take(self, album: str) -> list[AlbumItem] | float | None:
        """The album's items in the order they were sent, taken (no other replica gets them); the seconds until
        it is due instead when it is not yet; None when it is gone (another replica took it)."""
        taken = await self._take(keys=[self._list(album), self._due], args=[album])
        if taken is None:
            return None
        if isinstance(taken, int):
            return taken / 1000
        items = [AlbumItem.decode(raw, self._fetcher) for raw in taken]
        return sorted(items, key=lambda item: item.incoming.sent)

    async def close(self) -> None:
        """Stop waiting and sweeping (at shutdown); a take in flight is finished first, so no album taken is lost.
        The albums still collected stay in Redis, for the other replicas."""
        self._stopping.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    def _list(self, album: str) -> str:
        return f"{self._prefix}:album:{album}"

    async def _wait(self, album: str) -> None:
        """Wait until `album` is due, then take it and hand it over (unless another replica did)."""
        try:
            delay: float = self._quiet
            while not await self._stopped_within(delay):
                taken = await self.take(album)
                if not isinstance(taken, float):
                    self._hand_over(album, taken)
                    return
                delay = taken
        except RedisError as exc:  # the album stays in Redis: a sweep takes it once Redis answers again
            log.warning("album %s: cannot take it from Redis (%s)", album, type(exc).__name__)
        finally:
            self._waiting[album] -= 1
            if not self._waiting[album]:
                del self._waiting[album]

    async def _sweep(self) -> None:
        """Take the albums whose replicas stopped waiting for them (they died or shut down)."""
        while not await self._stopped_within(SWEEP_EVERY):
            try:
                for raw in await self._overdue_albums(keys=[self._due], args=[int(self._overdue * 1000), 100]):
                    album = raw.decode() if isinstance(raw, bytes) else str(raw)
                    taken = await self.take(album)
                    if not isinstance(taken, float):
                        self._hand_over(album, taken, late=True)
            except RedisError as exc:
                log.warning("cannot look for albums left behind (%s)", type(exc).__name__)
            except Exception:  # (the sweep must outlive one bad album)
                log.exception("looking for albums left behind failed")

    def _hand_over(self, album: str, items: list[AlbumItem] | None, *, late: bool = False) -> None:
        if not items:  # taken by another replica (or expired)
            return
        if late:
            log.info("album %s: taken over from the replicas that took it in (they stopped)", album)
        self._complete(items)

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait `seconds`, or less if `close` is called meanwhile; returns whether it was."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), max(seconds, 0.0))
        return self._stopping.is_set()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("collecting albums failed", exc_info=error)
