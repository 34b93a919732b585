"""The log: secrets of any length redacted, and what the console counts to say once where the log is."""

from __future__ import annotations

import logging
from pathlib import Path

from bot.logs import RedactingFilter, configure_logging


def test_a_short_key_is_redacted_like_a_long_one() -> None:
    redactor = RedactingFilter(["abcde", "sk-" + "x" * 40])
    assert redactor.redact("key=abcde sent; other sk-" + "x" * 40) == "key=*** sent; other ***"


def test_the_console_log_goes_to_a_file_and_counts_problems(tmp_path: Path) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        problems = configure_logging("INFO", ["hunter2"], file=tmp_path / "data" / "livebot.log")
        logging.getLogger("x").info("the password is hunter2")
        assert problems.count == 0
        logging.getLogger("x").warning("something odd")
        assert problems.count == 1
        text = (tmp_path / "data" / "livebot.log").read_text()
        assert "the password is ***" in text and "hunter2" not in text and "something odd" in text
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], level = saved
        root.setLevel(level)
        logging.captureWarnings(False)
