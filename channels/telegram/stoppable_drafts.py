"""Bot API 10.3's stoppable drafts, reached through python-telegram-bot's escape hatches.

A draft sent with `can_stop` shows the user a stop button; pressing it sends the bot a `stopped_message_generation`
update (a MessageGenerationStopped: `chat`, optional `message_thread_id`, `draft_id`), and `keep_on_stop` keeps the
draft on screen until the bot's next message, so the text so far does not vanish before the final message lands.

python-telegram-bot 22.x predates Bot API 10.3, so this module is the only place that knows the new names: the
flags go as `api_kwargs` on `send_message_draft`, the update is read from `Update.api_kwargs` (where PTB keeps the
fields it does not know), and `allowed_updates` asks for it by name. When python-telegram-bot catches up, delete
this module: pass `can_stop=True, keep_on_stop=True` directly and read `update.stopped_message_generation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from telegram import Update

STOPPED_GENERATION = "stopped_message_generation"
"""The update type; `allowed_updates` must name it or Telegram does not send it."""
STOPPABLE = {"can_stop": True, "keep_on_stop": True}
"""`api_kwargs` for every private-chat draft: a stop button, and the draft stays visible after the press."""


@dataclass(frozen=True, slots=True)
class DraftStopped:
    """The user pressed stop on draft `draft_id` in `chat_id` (and forum topic `thread_id`, if any)."""

    chat_id: int
    draft_id: int
    thread_id: int | None = None


def draft_stopped(update: Update) -> DraftStopped | None:
    """The stop press `update` carries, or None for any other update (or a malformed one: input is hostile)."""
    raw = update.api_kwargs.get(STOPPED_GENERATION)
    if not isinstance(raw, Mapping):
        return None
    chat = raw.get("chat")
    chat_id = chat.get("id") if isinstance(chat, Mapping) else None
    draft_id, thread_id = raw.get("draft_id"), raw.get("message_thread_id")
    if not _is_int(chat_id) or not _is_int(draft_id) or not (thread_id is None or _is_int(thread_id)):
        return None
    return DraftStopped(chat_id, draft_id, thread_id)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
