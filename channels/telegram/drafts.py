"""Which reply each of the bot's Telegram drafts belongs to, while that reply streams.

Telegram reports things about a draft by chat and draft id only (Bot API 10.3: `stopped_message_generation` when
the user stops a draft). Every draft id is new in its chat (`channels.surface.new_draft_id`), so a reply's surface
records here each id it drafts, status lines included, and forgets them when the reply ends: an update about a
draft then finds the reply still streaming it, or nothing, never another reply's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from channels.telegram.surface import TelegramTarget


class DraftOwners:
    """`(chat id, draft id) -> TelegramTarget` of the reply streaming that draft; one per bot."""

    def __init__(self) -> None:
        self._owners: dict[tuple[int, int], TelegramTarget] = {}

    def record(self, chat_id: int, draft_id: int, reply: TelegramTarget) -> None:
        """`reply` drafts `draft_id` in `chat_id`."""
        self._owners[(chat_id, draft_id)] = reply

    def owner(self, chat_id: int, draft_id: int) -> TelegramTarget | None:
        """The reply streaming draft `draft_id` in `chat_id`; None when it has ended (or never drafted it)."""
        return self._owners.get((chat_id, draft_id))

    def release(self, chat_id: int, draft_ids: Iterable[int]) -> None:
        """The reply that drafted `draft_ids` has ended."""
        for draft_id in draft_ids:
            self._owners.pop((chat_id, draft_id), None)

    def __len__(self) -> int:
        return len(self._owners)
