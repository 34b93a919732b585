"""The chart tool: a PNG of the model's numbers in the conversation's file store, bad input refused in words."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from pydantic import ValidationError

from media.store import FileStore
from tools.chart import ChartInput, make_chart, render_chart


@pytest.mark.parametrize("kind", ["line", "bar", "scatter", "pie"])
def test_each_kind_renders_a_png(kind: str) -> None:
    png = render_chart(ChartInput(kind=kind, values=[3, 1, 2], labels=["a", "b", "c"], title="T"))
    with Image.open(io.BytesIO(png)) as image:
        assert (image.format, image.size) == ("PNG", (800, 500))


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"kind": "line", "values": [1, 2], "labels": ["only one"]}, "1 labels for 2 values"),
        ({"kind": "pie", "values": [-1, 2]}, "not negative"),
        ({"kind": "bar", "values": [float("nan")]}, "finite"),
        ({"kind": "line", "values": list(range(1001))}, "too many values"),
    ],
)
def test_input_no_chart_can_show_is_refused_in_words(arguments: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        render_chart(ChartInput(**arguments))


def test_an_unknown_kind_or_no_values_fails_validation() -> None:
    with pytest.raises(ValidationError):
        ChartInput(kind="radar", values=[1])  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ChartInput(kind="line", values=[])


async def test_the_tool_stores_the_picture_under_the_conversation_and_names_it(tmp_path: Path) -> None:
    files = FileStore(tmp_path)
    chart = make_chart(files)
    call = {"name": "chart", "args": {"kind": "bar", "values": [1, 2]}, "id": "call_1", "type": "tool_call"}
    message = await chart.ainvoke(call, config={"configurable": {"thread_id": "telegram:1"}})
    assert "shown to the user" in message.content
    (picture,) = message.artifact["pictures"]
    assert picture["caption"] == "Bar chart"
    assert files.read("telegram:1", picture["ref"]).startswith(b"\x89PNG")
