"""How numbers and dates read in card text (shared by the steroid status and every topic)."""

from __future__ import annotations

from datetime import date


def fmt_number(value: float) -> str:
    """A number for card text, without trailing zeros: 7.5, 20, 0.3."""
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"


def fmt_date(day: date | None) -> str:
    return day.isoformat() if day else "unknown date"


def fmt_months(days: float) -> str:
    """A number of days as whole months (30.4 days each)."""
    return fmt_number(round(days / 30.4))
