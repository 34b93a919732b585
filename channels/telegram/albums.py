"""An album is one turn: Telegram sends each of its photos or files as a message of its own, sharing a
`media_group_id` and arriving within moments of each other. They are held until no more have come for `QUIET`
seconds, then answered together (the caption, usually on the first, is the question), replying to the first.
In replica mode an album's items land on different replicas: they are collected in Redis (`bot.shared_albums`)
and merged the same way (`merge`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from channels.inbound import Incoming
from channels.telegram.surface import TelegramTarget

QUIET = 0.8
"""Seconds without another item after which an album is complete (Telegram sends its items in one burst)."""


def merge(items: Sequence[Incoming]) -> Incoming:
    """An album's items (in the order they were sent) as one message: their texts joined, their files in order,
    from the first's sender and in its place."""
    first = items[0]
    text = "\n\n".join(item.text for item in items if item.text)
    files = tuple(file for item in items for file in item.attachments)
    return Incoming(first.conversation, text, first.user_id, first.user_name, files, first.sent)


@dataclass
class _Album:
    target: TelegramTarget
    items: list[Incoming] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class Albums:
    """Albums being collected.

    Args:
        submit: Takes an album's merged message once it is complete.
        quiet: See `QUIET`.
    """

    def __init__(self, submit: Callable[[Incoming, TelegramTarget], None], *, quiet: float = QUIET) -> None:
        self._submit = submit
        self._quiet = quiet
        self._open: dict[tuple[int, str], _Album] = {}

    def collecting(self, chat_id: int, group_id: str) -> bool:
        """Whether items of this album are being held (in a group, its later items need no mention)."""
        return (chat_id, group_id) in self._open

    def add(self, group_id: str, incoming: Incoming, target: TelegramTarget) -> None:
        """Hold one item; the album goes out `quiet` seconds after its last item."""
        key = (target.chat_id, group_id)
        album = self._open.get(key)
        if album is None:
            album = self._open[key] = _Album(target)
        album.items.append(incoming)
        if album.timer is not None:
            album.timer.cancel()
        album.timer = asyncio.get_running_loop().call_later(self._quiet, self._complete, key)

    def flush(self) -> None:
        """Hand over every album held now (at shutdown, before the conversations close)."""
        for key in list(self._open):
            self._complete(key)

    def _complete(self, key: tuple[int, str]) -> None:
        album = self._open.pop(key, None)
        if album is None:
            return
        if album.timer is not None:
            album.timer.cancel()
        self._submit(merge(album.items), album.target)
