"""The exposure chart's data: prednisone-equivalent mg per day, courses, IV pulses and the
dose lines the rules use (their values read from hooks/thresholds.toml)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from cds_service.exposure import Course, ExposureSummary
from cds_service.steroid_status import dose_lines
from cds_service.thresholds import Thresholds


def day_runs(daily: Mapping[date, float]) -> list[dict[str, Any]]:
    """Consecutive days of equal mg as ``{"start", "end", "mg"}`` (inclusive ISO dates)."""
    runs: list[dict[str, Any]] = []
    previous: date | None = None
    for day, mg in sorted(daily.items()):
        last = runs[-1] if runs else None
        if (
            last is not None
            and previous is not None
            and day.toordinal() == previous.toordinal() + 1
            and last["mg"] == mg
        ):
            last["end"] = day.isoformat()
        else:
            runs.append({"start": day.isoformat(), "end": day.isoformat(), "mg": mg})
        previous = day
    return runs


def _course(course: Course) -> dict[str, Any]:
    return {
        "drug": course.ingredient_name,
        "source": course.source,
        "start": course.start.isoformat(),
        "end": course.end.isoformat(),
        "mg": course.daily_peq_mg,
        "route": course.route,
        "planned": course.planned,
    }


def exposure_chart(summary: ExposureSummary, thresholds: Thresholds) -> dict[str, Any]:
    """Everything the page draws: the lookback window, actual and planned daily mg as runs,
    the courses (labelled by drug and source record), IV pulse days and the dose lines."""
    return {
        "window_start": summary.window_start.isoformat(),
        "today": summary.today.isoformat(),
        "daily": day_runs(summary.daily),
        "planned": day_runs(summary.planned_daily),
        "courses": [_course(c) for c in sorted(summary.courses, key=lambda c: (c.start, c.source))],
        "pulses": [
            {"day": day.isoformat(), "mg": mg, "source": source}
            for day, mg, source in summary.pulses
        ],
        "lines": dose_lines(thresholds),
    }
