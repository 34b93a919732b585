"""What users thought of the answers: each press of a feedback button, logged and counted.

Every rating is logged at INFO with the conversation, the message and the rating (and the running totals), so an
operator reads them in the bot's log; the counts and the latest ratings are also kept in memory for the life of the
process (`FeedbackLog.counts`, `recent`), and the totals are logged once more when the bot stops.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rating:
    """One press: `user` rated the message `message` of `conversation` "positive" or "negative"."""

    conversation: str
    message: str
    rating: str
    user: str


class FeedbackLog:
    """Feedback of one running bot.

    Args:
        keep: How many of the latest ratings `recent` holds (the counts cover all of them).
    """

    def __init__(self, keep: int = 1000) -> None:
        self.counts: Counter[str] = Counter()
        self.recent: deque[Rating] = deque(maxlen=keep)

    def record(self, rating: Rating) -> None:
        """Count and log one rating."""
        self.counts[rating.rating] += 1
        self.recent.append(rating)
        log.info(
            "feedback: %s for message %s in %s (%s)", rating.rating, rating.message, rating.conversation, self.totals()
        )

    def totals(self) -> str:
        """The counts in one phrase, e.g. "3 positive, 1 negative"."""
        return f"{self.counts['positive']} positive, {self.counts['negative']} negative"
