"""Properties of cutting any Markdown answer into Telegram messages (the handler's cut loop with Telegram's
measure, then each message rendered): every message fits, its entities are valid, and the messages together
show exactly the words of the whole answer, in order.

The word-for-word property holds while no single paragraph outgrows a message (true of real answers against
4,096 units: limits here go down to 250 for paragraphs of up to ~200 characters). A paragraph longer than a
message must be cut inside; there the splitter avoids splitting inline spans where it can, and the first property
(fits, valid entities) still holds for any size, which the second test checks with limits down to 40."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.telegram.render import ceiling, measure, render
from tests.channels.messages import cut_all
from tests.channels.telegram.checks import assert_valid_message

WORDS = st.sampled_from(
    ["alpha", "beta", "gamma", "δέλτα", "数据", "😀", "👩‍💻", "مرحبا", "x\u200by", "a&b", "<b>", "2*3", "end."]
)


@st.composite
def paragraphs(draw: st.DrawFn) -> str:
    words = draw(st.lists(WORDS, min_size=1, max_size=30))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(words) - 1))
        words[at] = f"**{words[at]}**"
    return " ".join(words)


@st.composite
def answers(draw: st.DrawFn) -> str:
    blocks = []
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.integers(0, 4)) == 0:
            lines = draw(st.lists(st.sampled_from(["x = 1", "print('数据')", "for i in range(3):", "    pass"]),
                                  min_size=1, max_size=12))  # fmt: skip
            blocks.append("```python\n" + "\n".join(lines) + "\n```")
        else:
            blocks.append(draw(paragraphs()))
    return "\n\n".join(blocks)


def visible_words(markdown: str) -> list[str]:
    return render(markdown).text.replace("\u200b", " ").split()


def assert_fits_with_valid_entities(messages: list[str], limit: int) -> None:
    for message in messages:
        assert_valid_message(render(message), limit)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers(), st.integers(min_value=250, max_value=1000))
def test_every_message_fits_has_valid_entities_and_nothing_is_lost_or_repeated(text: str, limit: int) -> None:
    messages = cut_all(text, measure, limit, ceiling=ceiling)
    assert_fits_with_valid_entities(messages, limit)
    shown = [word for message in messages for word in visible_words(message)]
    assert shown == visible_words(text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers(), st.integers(min_value=40, max_value=250))
def test_any_paragraph_size_still_gives_messages_that_fit_with_valid_entities(text: str, limit: int) -> None:
    assert_fits_with_valid_entities(cut_all(text, measure, limit, ceiling=ceiling), limit)
