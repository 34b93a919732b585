"""What a channel hands the bot runtime for each user message, whatever the platform."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Incoming:
    """One user message the bot should answer.

    Attributes:
        conversation: The memory key: `telegram:<chat>`, `slack:<channel>:<thread_ts>`, `console:<name>`.
            Replies in one conversation run one at a time; it is also the agent's `thread_id`.
        text: What the user wrote, commands included.
        user_id: The platform's id of the sender (for allowlists and per-user limits).
        user_name: A readable name where the platform gives one.
    """

    conversation: str
    text: str
    user_id: str
    user_name: str | None = None
