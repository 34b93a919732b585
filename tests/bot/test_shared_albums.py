"""Albums collected in Redis across replicas (`bot.shared_albums`), against a real Redis: the items two replicas
took in are taken once, whole and in the order they were sent, with their files downloadable by the replica that
takes them; an item that comes while the album waits moves its due time; an album whose replicas stopped waiting
for it is taken by another replica's sweep."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis

from bot.shared_albums import AlbumItem, SharedAlbums
from channels.inbound import Attachment, FileKind, Incoming

ALBUM = "-100:album-1"


def fetcher(source: dict[str, Any]) -> Callable[[int], Awaitable[bytes]]:
    """Downloads that give the file id back, so a test sees which file a rebuilt attachment fetches."""

    async def fetch(limit: int) -> bytes:
        return str(source["file_id"]).encode()[:limit]

    return fetch


async def never(limit: int) -> bytes:
    raise AssertionError("the replica that took the item in is not the one that downloads it")


def item(text: str, sent: int, *, addressed: bool = False) -> AlbumItem:
    photo = Attachment("photo.jpg", FileKind.IMAGE, "image/jpeg", 1000, never, source={"file_id": f"photo{sent}"})
    incoming = Incoming("telegram:-100", text, "7", "Alice", (photo,), sent)
    return AlbumItem(incoming, {"chat_id": -100, "kind": "group", "reply_to": sent}, addressed)


class Replica:
    """One replica's collector, and the albums it handed over."""

    def __init__(self, client: redis.Redis, prefix: str, *, quiet: float = 0.3, overdue: float = 2.0) -> None:
        self.completed: list[list[AlbumItem]] = []
        self.albums = SharedAlbums(client, prefix, fetcher, self.completed.append, quiet=quiet, overdue=overdue)


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_the_items_two_replicas_took_in_are_taken_once_whole_in_the_order_sent(client: redis.Redis) -> None:
    prefix = f"livebot:test:{uuid.uuid4().hex}"
    a, b = Replica(client, prefix, quiet=1.0), Replica(client, prefix, quiet=1.0)
    await a.albums.add(ALBUM, item("@bot which is brightest?", 101, addressed=True))
    await b.albums.add(ALBUM, item("", 103))  # b took in the third before a had the second
    await a.albums.add(ALBUM, item("", 102))
    await until(lambda: not a.albums.waiting and not b.albums.waiting)  # every waiter is done
    (album,) = a.completed + b.completed  # one replica got it, once
    assert [i.incoming.sent for i in album] == [101, 102, 103]
    assert [i.addressed for i in album] == [True, False, False]
    assert album[0].incoming.text == "@bot which is brightest?" and album[0].address["reply_to"] == 101
    files = [file for i in album for file in i.incoming.attachments]
    assert [await file.fetch(100) for file in files] == [b"photo101", b"photo102", b"photo103"]
    assert await a.albums.take(ALBUM) is None  # gone from Redis
    await a.albums.close()
    await b.albums.close()


async def test_an_item_that_comes_while_the_album_waits_moves_its_due_time(client: redis.Redis) -> None:
    prefix = f"livebot:test:{uuid.uuid4().hex}"
    patient, prompt = Replica(client, prefix, quiet=60), Replica(client, prefix, quiet=0)
    await patient.albums.add(ALBUM, item("first", 1))
    wait = await patient.albums.take(ALBUM)
    assert isinstance(wait, float) and 0 < wait <= 60  # not due: nothing taken
    await prompt.albums.add(ALBUM, item("second", 2))  # due now: its last item's time, plus no quiet
    await until(lambda: bool(prompt.completed))
    assert [[i.incoming.text for i in album] for album in prompt.completed] == [["first", "second"]]
    await patient.albums.close()  # its waiter stops waiting: it finds nothing to take
    await prompt.albums.close()
    assert patient.completed == []


async def test_an_album_whose_replicas_stopped_waiting_is_taken_by_another_replicas_sweep(
    client: redis.Redis,
) -> None:
    prefix = f"livebot:test:{uuid.uuid4().hex}"
    gone, other = Replica(client, prefix, quiet=0.2), Replica(client, prefix, overdue=0.2)
    await gone.albums.add(ALBUM, item("@bot look", 5, addressed=True))
    await gone.albums.close()  # it shuts down (or dies) before the album is due: the item stays in Redis
    other.albums.start()
    await until(lambda: bool(other.completed))
    assert [[i.incoming.text for i in album] for album in other.completed] == [["@bot look"]]
    await other.albums.close()
    assert gone.completed == []
