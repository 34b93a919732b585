"""Failures a channel reports to the StreamingHandler, in platform-neutral terms.

Each channel translates its library's exceptions into these, so the handler can apply one set of rules
(docs/architecture.md, "The StreamingHandler contract") without knowing which platform it talks to::

    ChannelError                  a platform call failed; the handler decides what to do
    ├── RateLimited(retry_after)  429: no call to that chat before `retry_after` seconds have passed
    ├── NotModified               the platform already shows this text: counts as success
    ├── FormattingRejected        the platform refused the rendering: resend as plain text
    ├── MessageGone               the message to edit no longer exists: continue in a new one
    ├── MessageTooLong            the platform counted more than the profile allows: split again
    ├── StreamingRefused          a draft or native stream is not allowed here: fall back to edits
    ├── TransientError            network failure or 5xx: retry with backoff
    └── PermanentError            refused for good (bot blocked, chat gone): do not retry

Misuse (calling a method a surface does not declare in its profile) is a programming error and raises
`RuntimeError`, never a `ChannelError`.
"""

from __future__ import annotations


class ChannelError(Exception):
    """A platform call failed in a way the StreamingHandler knows how to handle."""


class RateLimited(ChannelError):
    """The platform asked us to wait.

    Args:
        retry_after: Seconds before the next call to the same chat may be made.
    """

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"rate limited: retry after {retry_after:g} s")
        self.retry_after = max(0.0, float(retry_after))


class NotModified(ChannelError):
    """The edit would not change the message; the text on screen is already right."""


class FormattingRejected(ChannelError):
    """The platform could not parse the formatting (entities, markup)."""


class MessageGone(ChannelError):
    """The message to edit was deleted or cannot be edited any more."""


class MessageTooLong(ChannelError):
    """The platform counted the text as longer than its limit."""


class StreamingRefused(ChannelError):
    """A draft or native stream was refused, or a native stream expired, for this chat."""


class TransientError(ChannelError):
    """A network error or server-side failure that may succeed if tried again."""


class PermanentError(ChannelError):
    """The platform refused the call in a way retrying cannot fix (the bot was blocked, the chat is gone)."""
