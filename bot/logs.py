"""Logging set-up that keeps secrets out of every log line.

Two layers, because either alone leaks: the configured secret values are replaced wherever they appear, and
token shapes are masked even when their value is not configured here (a Telegram token inside a Bot API URL that
python-telegram-bot or httpx logs, a Slack or OpenAI key quoted in an error). httpx logs every request URL at
INFO (the openai client through `httpx2`), and Telegram's URLs contain the bot token, so those loggers are held
at WARNING.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

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
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

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


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at `level`, with secrets redacted from every handler's output."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
