"""What the offline demo model makes of a turn with files, and of "plot 1, 4, 9, 16".

The demo cannot look at a photo or read a document, but it can show that the path works: bot.attachments names
every file in the turn's text ("[Photo 1: cat.jpg, 1280×960]", "[Document a.pdf: a 3-page PDF]", "[Voice note,
4 s: not transcribed: ...]"), and the demo says back what it received.
"""

from __future__ import annotations

import re
from typing import Any

_PHOTO = re.compile(r"^\[Photo \d+: (?P<name>.+), (?P<width>\d+)×(?P<height>\d+)\]$", re.MULTILINE)
_DOCUMENT = re.compile(
    r"^\[Document (?P<name>.+?): (?P<kind>[^;\]]+)(?:; (?P<note>[^\]]+))?\]\n(?P<text>.*?)\n\[End of (?P=name)\]$",
    re.MULTILINE | re.DOTALL,
)
_VOICE = re.compile(
    r"^\[Voice note(?:, (?P<seconds>\d+) s)?(?::(?P<reason> not transcribed: [^\]]+)|, transcribed:)\]"
    r"(?:\n(?P<words>.*?))?(?=\n\n|\Z)",
    re.MULTILINE | re.DOTALL,
)
_PLOT = re.compile(r"\b(?:plot|chart|graph|draw)\b\D{0,20}?((?:-?\d+(?:\.\d+)?\s*,\s*)+-?\d+(?:\.\d+)?)", re.I)
_BEGINNING = 80


def received(text: str) -> tuple[list[str], str]:
    """What files the turn `text` carries, in words, and the user's own words without the file blocks."""
    found: list[tuple[int, str]] = []
    for match in _PHOTO.finditer(text):
        found.append((match.start(), f"a {match['width']}×{match['height']} photo ({match['name']})"))
    for match in _DOCUMENT.finditer(text):
        beginning = " ".join(match["text"].split())[:_BEGINNING]
        note = f" ({match['note']} shown)" if match["note"] else ""
        found.append((match.start(), f"{match['kind']}{note} beginning: “{beginning}…”"))
    for match in _VOICE.finditer(text):
        length = f"{match['seconds']}-second " if match["seconds"] else ""
        if match["reason"]:
            reason = match["reason"].removeprefix(" not transcribed: ").split(" (", 1)[0]
            found.append((match.start(), f"a {length}voice note: {reason}"))
        else:
            found.append((match.start(), f"a {length}voice note saying “{' '.join((match['words'] or '').split())}”"))
    rest = _VOICE.sub("", _DOCUMENT.sub("", _PHOTO.sub("", text)))
    return [words for _, words in sorted(found)], rest.strip()


def plot_request(question: str) -> dict[str, Any] | None:
    """The `chart` arguments for "plot 1, 4, 9, 16" (a line chart of those numbers), or None."""
    match = _PLOT.search(question)
    if match is None:
        return None
    values = [float(number) for number in re.split(r"\s*,\s*", match.group(1).strip())]
    return {"kind": "line", "values": values, "title": "Your numbers"}
