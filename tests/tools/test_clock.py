"""The clock tool: IANA zones, forgiving spelling, a clear error otherwise."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tools.clock import current_time, describe_time, resolve_zone

_OUTPUT = re.compile(r"^(?P<weekday>[A-Z][a-z]+day) (?P<iso>\S+) in (?P<zone>\S+)(?: \((?P<abbr>[^)]+)\))?$")


async def test_known_zone() -> None:
    text = await current_time.ainvoke({"timezone": "Europe/Berlin"})
    match = _OUTPUT.match(text)
    assert match, text
    moment = datetime.fromisoformat(match["iso"])
    assert match["zone"] == "Europe/Berlin"
    assert match["weekday"] == f"{moment:%A}"
    # The offset printed is Berlin's at that instant (CET or CEST), whatever the season.
    assert moment.utcoffset() == moment.astimezone(ZoneInfo("Europe/Berlin")).utcoffset()
    assert moment.utcoffset() in (timedelta(hours=1), timedelta(hours=2))


async def test_default_is_utc() -> None:
    text = await current_time.ainvoke({})
    match = _OUTPUT.match(text)
    assert match, text
    assert match["zone"] == "UTC"
    assert match["iso"].endswith("+00:00")


def test_describe_time_fixed_moment() -> None:
    summer = datetime(2024, 7, 1, 12, 0, 30, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
    assert describe_time(summer) == "Monday 2024-07-01T12:00:30+02:00 in Europe/Berlin (CEST)"
    winter = datetime(2024, 12, 24, 8, 0, tzinfo=ZoneInfo("America/New_York"))
    assert describe_time(winter) == "Tuesday 2024-12-24T08:00:00-05:00 in America/New_York (EST)"


@pytest.mark.parametrize(
    ("spelling", "key"), [("europe/berlin", "Europe/Berlin"), (" America/New York ", "America/New_York")]
)
def test_forgiving_spelling(spelling: str, key: str) -> None:
    assert resolve_zone(spelling).key == key


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "Europe", "../etc/passwd", "/etc/localtime", "CEST+2"])
async def test_unknown_zone(name: str) -> None:
    with pytest.raises(ValueError, match="Europe/Berlin") as info:
        await current_time.ainvoke({"timezone": name})
    assert repr(name) in str(info.value)


def test_unknown_zone_suggests_close_names() -> None:
    with pytest.raises(ValueError, match="did you mean Europe/Berlin"):
        resolve_zone("Europe/Berlinn")
