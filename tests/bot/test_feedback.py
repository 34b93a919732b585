"""The feedback log: every rating is logged with its conversation, message and rating, and counted."""

from __future__ import annotations

import logging

import pytest

from bot.feedback import FeedbackLog, Rating


def test_ratings_are_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    feedback = FeedbackLog(keep=2)
    with caplog.at_level(logging.INFO, logger="bot.feedback"):
        for rating in ("positive", "negative", "positive"):
            feedback.record(Rating("slack:D0ALICE:1700000000.000100", "1700000000.000300", rating, "U0ALICE"))
    assert feedback.counts == {"positive": 2, "negative": 1}
    assert [r.rating for r in feedback.recent] == ["negative", "positive"]  # the latest `keep`
    assert caplog.messages[-1] == (
        "feedback: positive for message 1700000000.000300 in slack:D0ALICE:1700000000.000100 (2 positive, 1 negative)"
    )
