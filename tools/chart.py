"""A chart as a picture in the conversation: the model passes numbers, matplotlib draws a PNG, the user sees it.

matplotlib runs headless (the Agg canvas of a bare `Figure`: no pyplot, no global state, safe in a worker thread)
and off the event loop. Input is bounded (points, label lengths) because a model can be talked into anything. The
PNG goes into the conversation's file store and the tool's artifact names it; the bot sends it between the text
before the tool and the answer after it (bot.runtime), and the model reads only a line saying it was sent.
"""

from __future__ import annotations

import asyncio
import io
import math
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from media.store import FileStore

MAX_POINTS = 1000
MAX_LABEL = 80
SIZE_INCHES = (8.0, 5.0)
DPI = 100


class ChartInput(BaseModel):
    """Arguments of the `chart` tool (the descriptions are what the model reads)."""

    kind: Literal["line", "bar", "scatter", "pie"] = Field(description="The kind of chart.")
    values: list[float] = Field(
        description="The numbers to plot (y values; for a pie, the size of each slice).", min_length=1
    )
    labels: list[str] | None = Field(
        None, description="Optional x values or category names, one per value (pie: slice names)."
    )
    title: str = Field("", description="Title shown above the chart.")
    x_label: str = Field("", description="Label of the x axis (not used for pie).")
    y_label: str = Field("", description="Label of the y axis (not used for pie).")


def render_chart(args: ChartInput) -> bytes:
    """The chart as PNG bytes (CPU-bound: call from a worker thread).

    Raises:
        ValueError: For input no chart can show (the message tells the model what to fix).
    """
    values = args.values
    if len(values) > MAX_POINTS:
        raise ValueError(f"too many values ({len(values)}); at most {MAX_POINTS}")
    if not all(math.isfinite(value) for value in values):
        raise ValueError("every value must be a finite number")
    labels = [label[:MAX_LABEL] for label in args.labels] if args.labels else None
    if labels is not None and len(labels) != len(values):
        raise ValueError(f"{len(labels)} labels for {len(values)} values; give one label per value, or none")
    if args.kind == "pie" and (any(value < 0 for value in values) or sum(values) <= 0):
        raise ValueError("a pie chart needs values that are not negative and not all zero")

    from matplotlib.figure import Figure  # ~0.3 s to import: only when a chart is asked for

    figure = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="tight")
    axes = figure.add_subplot()
    positions: list[Any] = labels if labels is not None else list(range(1, len(values) + 1))
    if args.kind == "line":
        axes.plot(positions, values, marker="o" if len(values) <= 50 else None)
    elif args.kind == "bar":
        axes.bar([str(p) for p in positions], values)
    elif args.kind == "scatter":
        axes.scatter(positions, values)
    else:
        axes.pie(values, labels=labels, autopct="%1.0f%%")
        axes.set_aspect("equal")
    if args.kind != "pie":
        axes.set_xlabel(args.x_label[:MAX_LABEL])
        axes.set_ylabel(args.y_label[:MAX_LABEL])
        axes.grid(alpha=0.3)
    axes.set_title(args.title[: MAX_LABEL * 2])
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def make_chart(files: FileStore) -> BaseTool:
    """The `chart` tool, keeping its pictures in `files` under the conversation that asked."""

    async def chart(config: RunnableConfig, **arguments: Any) -> tuple[str, dict[str, Any]]:
        args = ChartInput(**arguments)
        png = await asyncio.to_thread(render_chart, args)
        thread = str((config.get("configurable") or {}).get("thread_id", ""))
        ref = await asyncio.to_thread(files.put, thread, png, ".png")
        caption = args.title or f"{args.kind.capitalize()} chart"
        content = f"The {args.kind} chart of {len(args.values)} values was drawn and shown to the user."
        return content, {"pictures": [{"ref": ref, "caption": caption}]}

    return StructuredTool.from_function(
        coroutine=chart,
        name="chart",
        description=(
            "Draw a chart (line, bar, scatter or pie) from numbers and show it to the user as an image. "
            "Use it when a picture of the data helps more than a table."
        ),
        args_schema=ChartInput,
        response_format="content_and_artifact",
    )
