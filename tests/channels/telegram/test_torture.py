"""Markdown a model really writes, at its most awkward, cut into Telegram messages: each message must be accepted
(fits 4,096 UTF-16 units, entities inside the text on character edges, nested without crossing) and together
they must show the whole answer, every character once, whatever markup the cuts fall into."""

from __future__ import annotations

import pytest

from channels.telegram.render import ceiling, measure, render
from tests.channels.messages import cut_all, squeezed
from tests.channels.telegram.checks import LIMIT, assert_valid_message

BLOCKS = {
    "unclosed fence": "Start:\n\n```python\ndef f(x):\n    return x * 2  # never closed",
    "tilde fence with backticks inside": "~~~\n```not a fence```\n~~~",
    "nested emphasis": "***all*** and **bold _italic **inner** still_ end** and *a **b** c*",
    "stray markers": "2*3 = 6, snake_case_name, a ` lone backtick, ** and __ left open, ~one tilde",
    "escaped markers": r"\*not italic\*, \_nor this\_, \`nor code\`",
    "table": "| Tool | Cost | Note |\n|:---|---:|:---:|\n| calc | 0 | **fast** |\n| web | 2 | `slow` |",
    "headings": "# Title\n\n## Sub *title*\n\n###### Tiny\n\nSetext\n======",
    "lists": "1. one\n2. two\n   - nested **bold**\n   - nested `code`\n3. three\n\n- [x] done\n- [ ] todo",
    "links": "[docs](https://example.com/a_b?q=1&r=2) <https://example.com/x> [empty]() [ref][1]\n\n[1]: https://e.com",
    "literal html": "Use <b>bold</b> & `a<b`, AT&T, &lt;tag&gt; <br> <div>x</div>",
    "html block": "<details>\n<summary>More</summary>\n\nHidden **text**\n\n</details>",
    "quote": "> quoted **bold**\n> > nested quote\n\n> another",
    "spoiler and strike": "||secret|| and ~~gone~~ and ~~~fence-ish~~~",
    "math-ish": "Costs $10 and $20, and $x^2$ here",
    "rule": "above\n\n---\n\nbelow\n\n***",
}


def answer(names: list[str], size: int) -> str:
    """The blocks in turn until the answer shows `size` units, each repeat numbered so none is alike."""
    parts, shown = [], 0
    while shown < size:
        name = names[len(parts) % len(names)]
        parts.append(f"Part {len(parts)}: {name}.\n\n{BLOCKS[name]}")
        shown += measure(parts[-1]) + 2
    return "\n\n".join(parts)


def shown(messages: list[str]) -> str:
    return "".join(squeezed(render(message).text) for message in messages)


@pytest.mark.parametrize("name", sorted(set(BLOCKS) - {"unclosed fence"}))
@pytest.mark.parametrize("limit", [LIMIT, 700])
def test_each_construct_repeated_past_the_limit(name: str, limit: int) -> None:
    text = answer([name], 3 * limit)
    messages = cut_all(text, measure, limit, ceiling=ceiling)
    assert len(messages) >= 3
    for message in messages:
        assert_valid_message(render(message), limit)
    assert shown(messages) == squeezed(render(text).text)


@pytest.mark.parametrize("limit", [LIMIT, 700])
def test_all_constructs_together_past_the_limit(limit: int) -> None:
    names = sorted(set(BLOCKS) - {"unclosed fence"})
    text = answer(names, 4 * limit)
    messages = cut_all(text, measure, limit, ceiling=ceiling)
    for message in messages:
        assert_valid_message(render(message), limit)
    assert shown(messages) == squeezed(render(text).text)
    literal = squeezed("Use <b>bold</b> & a<b, AT&T, &lt;tag&gt; <br> <div>x</div>")
    assert shown(messages).count(literal) == text.count("literal html.") > 0


@pytest.mark.parametrize("limit", [LIMIT, 700])
def test_an_answer_that_ends_inside_an_unclosed_fence_is_code_in_every_message(limit: int) -> None:
    code = "\n".join(f"value_{i} = {i} * 2  # <b> & **not bold**" for i in range(limit // 10))
    text = f"Here is the code:\n\n```python\n{code}"  # the model stopped before closing it
    messages = cut_all(text, measure, limit, ceiling=ceiling)
    assert len(messages) >= 3
    for message in messages[1:]:
        rendered = render(message)
        assert_valid_message(rendered, limit)
        assert [(e.type, e.language) for e in rendered.entities] == [("pre", "python")]  # all of it is code
    lines = [line for message in messages for line in render(message).text.splitlines() if line.startswith("value_")]
    assert lines == code.splitlines()


def test_a_long_table_is_a_table_in_every_message() -> None:
    rows = "".join(f"| row {i} | {i * 7} | note {i} |\n" for i in range(400))
    text = f"| Name | Value | Note |\n|---|---:|---|\n{rows}"
    messages = cut_all(text, measure, LIMIT, ceiling=ceiling)
    assert len(messages) >= 3
    body = []
    for message in messages:
        rendered = render(message)
        assert_valid_message(rendered)
        assert [e.type for e in rendered.entities] == ["pre"]  # a table, not raw pipes
        header, rule, *lines = rendered.text.splitlines()
        assert header.split() == ["Name", "|", "Value", "|", "Note"] and set(rule) <= {"-", "+"}
        body += [" ".join(line.split()) for line in lines]
    assert body == [f"row {i} | {i * 7} | note {i}" for i in range(400)]
