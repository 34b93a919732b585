"""The demo model says what files it received and draws a chart when asked (the path works offline)."""

from __future__ import annotations

from langchain_core.messages import HumanMessage

from agent.demo import plan_reply

TOOLS = {"calculator", "current_time", "chart"}


def reply(text: str) -> tuple[str, tuple[str, dict] | None]:
    plan = plan_reply([HumanMessage(text)], TOOLS)
    return plan.text, plan.tool


def test_it_reports_a_photo_a_pdf_and_a_voice_note() -> None:
    text, tool = reply(
        "[Photo 1: cat.jpg, 1280×960]\n\n"
        "[Document q3.pdf: a 3-page PDF]\nRevenue 2024-01-05 grew by 12% in the quarter\n[End of q3.pdf]\n\n"
        "[Voice note, 4 s: not transcribed: transcription is not configured (set TRANSCRIBE_BASE_URL to …)]\n\n"
        "what are these?"
    )
    assert tool is None  # the date in the document is no arithmetic
    assert text.startswith(
        "I received a 1280×960 photo (cat.jpg), a 3-page PDF beginning: “Revenue 2024-01-05 grew by 12% in the "
        "quarter…” and a 4-second voice note: transcription is not configured."
    )


def test_it_draws_a_chart_of_the_numbers_asked_for() -> None:
    assert reply("plot 1, 4, 9, 16") == (
        "Let me draw that.",
        ("chart", {"kind": "line", "values": [1.0, 4.0, 9.0, 16.0], "title": "Your numbers"}),
    )
    assert reply("what is 1, 4")[1] is None
