"""What the StreamingHandler does with an answer too long for one message, for tests of a platform's cutting."""

from __future__ import annotations

from collections.abc import Callable

from channels.splitting import split_to_fit

SPLIT_WINDOW = 4
"""bot.streaming's window: how many times the limit the splitter looks at."""


def cut_all(
    text: str,
    measure: Callable[[str], int],
    limit: int,
    *,
    ceiling: Callable[[str], int] | None = None,
    most: int = 10_000,
) -> list[str]:
    """The messages (as sent, trailing blanks dropped) that carry `text` within `limit` as `measure` counts.

    Raises:
        AssertionError: More than `most` messages: the cutting does not end.
    """
    messages = []
    text = text.lstrip()  # as the StreamingHandler starts a message: the blank lines before it are not sent
    while text.strip():
        assert len(messages) < most, f"still cutting after {most} messages"
        if len(text) <= limit * SPLIT_WINDOW and measure(text) <= limit:
            messages.append(text.rstrip())
            break
        head, text = split_to_fit(text, measure, limit, window=limit * SPLIT_WINDOW, ceiling=ceiling)
        messages.append(head.rstrip())
        text = text.lstrip()
    return messages


def squeezed(text: str) -> str:
    """`text` without its whitespace: what must survive a cut, which only drops the whitespace it is made at."""
    return "".join(text.split())
