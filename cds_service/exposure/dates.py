"""FHIR dates and dateTimes as local days (partial dates start or end the period)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Day:
    value: date
    weak: bool  # partial date or weak evidence


_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")


def to_day(raw: object, tz: tzinfo | None, *, end: bool = False) -> Day | None:
    """Local date of a FHIR date/dateTime value (model objects or partial-date strings)."""
    if raw is None:
        return None
    if isinstance(raw, datetime):
        local = raw.astimezone(tz) if raw.tzinfo is not None else raw
        return Day(local.date(), False)
    if isinstance(raw, date):
        return Day(raw, False)
    text = str(raw)
    m = _PARTIAL_DATE.match(text)
    if m is None:
        return None
    try:
        return _partial_day(int(m.group(1)), m.group(2), m.group(3), end=end)
    except ValueError:  # impossible calendar date in the record: treat as no date
        return None


def _partial_day(year: int, month: str | None, day: str | None, *, end: bool) -> Day:
    if day is not None and month is not None:
        return Day(date(year, int(month), int(day)), False)
    if month is not None:
        first = date(year, int(month), 1)
        if not end:
            return Day(first, True)
        nxt = date(year + (first.month == 12), first.month % 12 + 1, 1)
        return Day(nxt - DAY, True)
    return Day(date(year, 12, 31) if end else date(year, 1, 1), True)
