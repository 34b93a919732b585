"""Logging set-up that keeps secrets out of every log line.

Two layers, because either alone leaks: the configured secret values are replaced wherever they appear, and
token shapes are masked even when their value is not configured here (a Telegram token inside a Bot API URL that
python-telegram-bot or httpx logs, a Slack or OpenAI key quoted in an error). httpx logs every request URL at
INFO (the openai client through `httpx2`), and Telegram's URLs contain the bot token, so those loggers are held
at WARNING.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from collections.abc import Iterable
from pathlib import Path

_TOKEN_SHAPES = re.compile(
    r"(?<=bot)\d{5,}:[A-Za-z0-9_-]{20,}"  # Telegram bot token in a Bot API URL
    r"|\b\d{5,}:AA[A-Za-z0-9_-]{20,}"  # Telegram bot token elsewhere
    r"|\bxox[abpors]-[A-Za-z0-9-]{8,}"  # Slack tokens
    r"|\bxapp-[A-Za-z0-9-]{8,}"
    r"|\bsk-[A-Za-z0-9_-]{16,}"  # OpenAI-style keys
)
_CHATTY = ("httpx", "httpx2", "httpcore", "openai", "telegram.ext.Updater", "slack_bolt.App", "aiosqlite")


class RedactingFilter(logging.Filter):
    """Replaces secrets in a record's final message (arguments included) with '***'."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Every secret, however short: a 5-character key leaks as surely as a long one (a very short one makes
        # the log harder to read, never unsafe).
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _TOKEN_SHAPES.sub("***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted = self.redact(message)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        record.msg, record.args = redacted, None
        return True


class ProblemCounter(logging.Handler):
    """Counts records at WARNING or above, so the console can say once that the log has something to read."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def configure_logging(level: str, secrets: Iterable[str] = (), *, file: Path | None = None) -> ProblemCounter:
    """Log at `level` to stderr, or to `file` (the console: its screen is the chat), secrets redacted everywhere.

    Python's warnings go to the log too, so a library's DeprecationWarning never lands in the chat.

    Returns:
        The counter of problems (WARNING and above) logged from now on.
    """
    if file is None:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
    else:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(file, maxBytes=2_000_000, backupCount=1, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    problems = ProblemCounter()
    root = logging.getLogger()
    root.handlers[:] = [handler, problems]
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.captureWarnings(True)
    return problems
