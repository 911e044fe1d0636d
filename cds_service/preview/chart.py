"""The exposure chart's data: prednisone-equivalent mg per day, courses, IV pulses and the
dose lines the rules use (their values read from hooks/thresholds.toml)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from cds_service.errors import ContentError
from cds_service.exposure import Course, ExposureSummary
from cds_service.thresholds import Thresholds

# The daily-dose lines drawn across the chart: threshold paths (their values and units come
# from hooks/thresholds.toml) with what each decides. Paths of equal value share one line.
DOSE_LINES: tuple[tuple[str, str], ...] = (
    ("exposure.long_term_min_daily_mg", "long-term use"),
    ("bone.under40_moderate_daily_mg", "fracture risk under 40"),
    ("bone.frax_gc_adjust_above_mg", "FRAX adjustment"),
    ("exposure.high_dose_min_daily_mg", "high dose"),
    ("infection.pjp_min_daily_mg", "PJP prophylaxis"),
    ("infection.live_vaccine_min_daily_mg", "live vaccines"),
    ("exposure.very_high_daily_mg", "very high fracture risk"),
)
DAILY_UNIT = "mg/d"


def dose_lines(thresholds: Thresholds) -> list[dict[str, Any]]:
    """One line per distinct value, lowest first: ``mg``, ``label`` (the uses joined) and the
    threshold ``paths``. Raises ContentError for a missing path or a unit other than mg/d."""
    by_value: dict[float, dict[str, Any]] = {}
    for path, use in DOSE_LINES:
        threshold = thresholds[path]
        if threshold.unit != DAILY_UNIT:
            raise ContentError(f"chart dose line {path}: unit must be {DAILY_UNIT}")
        line = by_value.setdefault(
            threshold.value, {"mg": threshold.value, "uses": [], "paths": []}
        )
        line["uses"].append(use)
        line["paths"].append(path)
    return [
        {"mg": line["mg"], "label": ", ".join(line["uses"]), "paths": line["paths"]}
        for _, line in sorted(by_value.items())
    ]


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
