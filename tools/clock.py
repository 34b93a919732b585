"""The current time, because a model has no clock and guesses its training cut-off instead.

Zones are IANA names resolved with `zoneinfo` (the system database, or the `tzdata` package where the system
has none). A near miss in spelling or case ("europe/berlin", "America/New York") is forgiven, since the model
writes what a user typed; anything else is a `ValueError` that says which form to use.
"""

from __future__ import annotations

import difflib
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from langchain_core.tools import tool


@cache
def _zones_by_folded_name() -> dict[str, str]:
    # Scanning the zone database takes tens of milliseconds; do it once, and only when a lookup missed.
    return {_fold(name): name for name in available_timezones()}


def _fold(name: str) -> str:
    return name.strip().replace(" ", "_").casefold()


def resolve_zone(name: str) -> ZoneInfo:
    """Turn a zone name from the model into a `ZoneInfo`, forgiving case and spaces.

    Raises:
        ValueError: The name matches no IANA zone; the message names it, suggests close matches and the
            expected form, so the model can retry on its own.
    """
    key = name.strip()
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: not a normalised relative key ("", "../x", "/etc/x"); OSError: a directory ("Europe").
        pass
    zones = _zones_by_folded_name()
    canonical = zones.get(_fold(key))
    if canonical is not None:
        return ZoneInfo(canonical)
    message = f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
    close = difflib.get_close_matches(key, zones.values(), n=3)
    if close:
        message += f" (did you mean {', '.join(close)}?)"
    raise ValueError(message)


def describe_time(moment: datetime) -> str:
    """Render an aware datetime with everything the model needs to answer without further arithmetic.

    Example: "Monday 2024-07-01T12:00:00+02:00 in Europe/Berlin (CEST)".
    """
    zone = moment.tzinfo
    zone_name = zone.key if isinstance(zone, ZoneInfo) else str(zone)
    abbreviation = moment.tzname()
    suffix = f" ({abbreviation})" if abbreviation and abbreviation != zone_name else ""
    return f"{moment:%A} {moment.isoformat(timespec='seconds')} in {zone_name}{suffix}"


# The docstring below is the tool description the model reads, so it speaks to the model.
@tool(parse_docstring=True)
def current_time(timezone: str = "UTC") -> str:
    """Get the current date, time and weekday in a time zone.

    Args:
        timezone: IANA time zone name, for example "Europe/Berlin", "America/New_York" or "UTC".
    """
    return describe_time(datetime.now(resolve_zone(timezone)))
