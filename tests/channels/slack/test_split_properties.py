"""Properties of cutting any Markdown answer into Slack messages of 12,000 characters (the handler's cut loop
with the Slack surface's own measure): every message fits as Slack counts it, no message leaves a code fence open
for the next to inherit, a table continued in a new message is still a table there, and the messages together
show exactly the text of the whole answer (the splitter adds only fence lines and repeated table headers, which
show no text of their own or repeat what was shown).

Answers are built from blocks repeated many times, so that a few hundred drawn characters make 12,000-character
answers without slowing hypothesis down."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.web.async_client import AsyncWebClient

from channels.capabilities import Profile, resolve
from channels.slack.surface import SlackSurface, SlackTarget, new_limiter
from channels.splitting import open_fence
from tests.channels.messages import cut_all, squeezed

NUMBER = "§"
FENCE_LINE = re.compile(r" {0,3}(`{3,}|~{3,})(.*?)\s*")
TABLE_DELIMITER = re.compile(r"\|?[ :-]*-[ :|-]*")
WORDS = st.sampled_from(
    [
        "alpha",
        "beta",
        "数据",
        "😀",
        "👩‍💻",
        "🇺🇦",
        "مرحبا",
        "x\u200by",
        "a&b",
        "<b>",
        "2*3",
        "**bold**",
        "`code`",
        "end.",
    ]
)


@pytest.fixture(scope="module")
def slack() -> tuple[SlackSurface, int]:
    """A Slack reply surface (no request is made) and its profile's limit."""
    profile: Profile = resolve("slack", "thread")
    assert profile.max_chars is not None
    target = SlackTarget("C0GENERAL", "thread", "1700000000.000100", "U0ALICE", "T0LIVEBOT")
    return SlackSurface(AsyncWebClient(token="xoxb-unused"), new_limiter(), target, profile), profile.max_chars


@st.composite
def blocks(draw: st.DrawFn) -> str:
    """A Markdown block; a table's header holds NUMBER, which `answers` makes unique."""
    kind = draw(st.sampled_from(["paragraph", "code", "list", "quote", "table", "heading"]))
    words = " ".join(draw(st.lists(WORDS, min_size=1, max_size=12)))
    times = draw(st.integers(1, 400))  # long enough that a cut falls inside a block
    if kind == "paragraph":
        return " ".join([words] * times)
    if kind == "code":
        lines = [f"line_{i} = '{words}'" for i in range(times)]
        return "```python\n" + "\n".join(lines) + "\n```"
    if kind == "list":
        return "\n".join(f"{i + 1}. {words}" for i in range(times))
    if kind == "quote":
        return "\n".join(f"> {words}" for _ in range(times))
    if kind == "table":
        rows = "".join(f"| {i} | {words} |\n" for i in range(times))
        return f"| n{NUMBER} | text{NUMBER} |\n|---:|---|\n{rows}".rstrip()
    return f"## {words}"


@st.composite
def answers(draw: st.DrawFn) -> str:
    parts = draw(st.lists(blocks(), min_size=1, max_size=25))
    if draw(st.integers(0, 3)):  # mostly past one message
        parts *= 1 + 20_000 // len("\n\n".join(parts))
    if draw(st.booleans()):
        parts.append("```\nthe model stopped here, inside code " + "x " * draw(st.integers(0, 3000)))
    text = "\n\n".join(parts)
    pieces = text.split(NUMBER)
    return "".join(f"{piece}{number // 2}" for number, piece in enumerate(pieces[:-1])) + pieces[-1]


def shown(markdowns: list[str]) -> list[tuple[bool, str]]:
    """What a reader sees of these texts one after the other, give or take markup and spacing: runs of text that is
    code and text that is not. Fence lines show nothing themselves; they make the lines between them code."""
    runs: list[tuple[bool, str]] = []
    for markdown in markdowns:
        fence = ""  # the open fence's run of backticks or tildes
        for line in markdown.split("\n"):
            match = FENCE_LINE.fullmatch(line)
            if match and not fence:
                fence = match.group(1)
            elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) and not match.group(2):
                fence = ""
            elif text := squeezed(line):
                code = bool(fence)
                if runs and runs[-1][0] == code:
                    text = runs.pop()[1] + text
                runs.append((code, text))
    return runs


def without_repeated_header(previous: str, message: str) -> str:
    """`message` without the table header it opens with when that repeats the header of the previous message's
    last table (every table drawn has a header of its own, so this is never a new table's)."""
    header = "\n".join(message.split("\n", 2)[:2])
    if "\n" in header and TABLE_DELIMITER.fullmatch(header.split("\n")[1]) and header in previous:
        return message[len(header) :]
    return message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(answers())
def test_every_message_fits_and_together_they_show_the_whole_answer(slack: tuple[SlackSurface, int], text: str) -> None:
    surface, limit = slack
    messages = cut_all(text, surface.measure, limit)
    assert all(0 < surface.measure(message) <= limit for message in messages)
    assert all(open_fence(message) is None for message in messages[:-1])  # the next one reopens it
    for message in messages[1:]:
        first, _, rest = message.partition("\n")
        if first.startswith("|"):  # a table row (no drawn code line starts so)
            assert TABLE_DELIMITER.fullmatch(rest.split("\n", 1)[0]), message[:80]
    parts = [messages[0], *(without_repeated_header(a, b) for a, b in pairwise(messages))]
    assert shown(parts) == shown([text])
