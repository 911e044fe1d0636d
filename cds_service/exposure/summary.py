"""What the exposure engine returns: courses, day maps and the queries rules ask."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from cds_service.exposure.dates import DAY
from cds_service.exposure.daymap import EPS, ROUND_DIGITS, DayMap, DaySources
from cds_service.exposure.measurements import BodyWindows
from cds_service.thresholds import Thresholds


@dataclass(frozen=True)
class ExposureParams:
    """Engine parameters, all from hooks/thresholds.toml."""

    lookback_days: int
    iv_pulse_min_daily_peq_mg: float  # an IV day at or above this is an IV pulse
    # A current course whose latest evidence of use is older than this is unconfirmed.
    unconfirmed_after_days: int
    # Weight-based doses: how long before a course a weight / height may have been measured,
    # and the divisor of the Mosteller body-surface-area formula.
    body_weight_max_age_days: int
    body_height_max_age_days: int
    bsa_divisor: float

    @staticmethod
    def from_thresholds(t: Thresholds, lookback_days: int | None = None) -> ExposureParams:
        """The parameters from ``[exposure]``; ``lookback_days`` overrides the file's."""
        return ExposureParams(
            lookback_days=int(lookback_days or t.value("exposure.lookback_days")),
            iv_pulse_min_daily_peq_mg=t.value("exposure.iv_pulse_min_daily_peq_mg"),
            unconfirmed_after_days=int(t.value("exposure.unconfirmed_current_after_days")),
            body_weight_max_age_days=int(t.value("exposure.body_weight_max_age_days")),
            body_height_max_age_days=int(t.value("exposure.body_height_max_age_days")),
            bsa_divisor=t.value("exposure.bsa_mosteller_divisor"),
        )

    @cached_property
    def body_windows(self) -> BodyWindows:
        """How old a body measurement may be, and the BSA divisor (built once per params)."""
        return BodyWindows(
            self.body_weight_max_age_days, self.body_height_max_age_days, self.bsa_divisor
        )


@dataclass(frozen=True)
class Course:
    """One dosing segment from one resource (a taper gives several).

    ``daily_peq_mg`` is PEQ mg on each dosing day (every day unless the order lists weekdays;
    sparser schedules are averaged), None when a systemic GC is present but its dose is not
    computable. ``start``/``end`` are inclusive local dates.

    What the card needs to say how current a course is: ``ordered_on`` is the order's
    ``authoredOn`` (None for other records or when it is missing or partial);
    ``last_evidence_on`` the latest dated evidence of use of the ingredient on the record
    (order written, dispensed, administered, statement made or asserted; drafts aside), today
    at the latest; ``unconfirmed_current`` is True on a course that reaches today from an
    active order or statement when that evidence is older than
    ``ExposureParams.unconfirmed_after_days``: current use should be confirmed.

    How the dose was derived: ``dose_source`` is "structured" (a mass unit), "product-strength"
    (tablets, mL or packs times the product strength), "weight-based" (mg/kg with the latest
    body weight, mg/m² with the body surface area), "instruction-text" (read from the free-text
    instruction), "dispensed-supply" (a dispense without instructions: the amount over the
    days supplied) or "unknown". With "unknown", ``daily_peq_mg`` is None and
    ``dose_unknown_reason`` is one of: "no-dose" (no dose on the record), "unit-unknown",
    "strength-missing" (tablets or mL of a product whose strength is unknown),
    "weight-missing" / "height-missing" (mg/kg or mg/m² without a recent measurement),
    "unreadable-instruction" (free text not understood), "taper-unstated" (a "then taper"
    step with no schedule), "no-peq-factor" (an ingredient without an equivalence factor),
    "supply-unknown" (a dispense with neither instructions nor days supplied), "not-positive"
    (a structured dose of zero or less: an entry error, never "no glucocorticoid").

    ``start_unknown`` is True on a course from an active record with no date at all (no
    authoredOn, dosage bounds, validity period, effective date or lastUpdated): it is counted
    on today only, but how long it has been taken is unknown, so no rule may read its one day
    as a short course.
    """

    source: str
    ingredient: str
    ingredient_name: str
    start: date
    end: date
    daily_peq_mg: float | None
    route: str
    planned: bool
    dose_range: bool
    undated: bool
    alternate_day: bool = False
    ordered_on: date | None = None
    last_evidence_on: date | None = None
    unconfirmed_current: bool = False
    dose_source: str = "structured"
    dose_unknown_reason: str | None = None
    start_unknown: bool = False


@dataclass(frozen=True)
class ExposureSummary:
    """The PEQ timeline. All mg are prednisone-equivalent mg; all counts are days."""

    courses: tuple[Course, ...]
    excluded_sources: tuple[str, ...]
    daily: Mapping[date, float]  # only days with exposure > 0, within the lookback window
    planned_daily: Mapping[date, float]  # today onward, from current and draft orders
    today: date
    window_start: date = field(default=date.min)
    pulses: tuple[tuple[date, float, str], ...] = field(default=(), repr=False)
    unknown: tuple[str, ...] = field(default=(), repr=False)
    day_sources: Mapping[date, frozenset[str]] = field(default_factory=dict, repr=False)

    def current_daily_peq_mg(self) -> float:
        """PEQ mg today from actual exposure (drafts excluded)."""
        return self.daily.get(self.today, 0.0)

    def cumulative_peq_mg(self) -> float:
        """Total PEQ mg over the lookback window; IV pulses count in full."""
        if isinstance(self.daily, DayMap):
            return self.daily.cumulative()
        return round(math.fsum(self.daily.values()), ROUND_DIGITS)

    def max_daily_peq_mg(self) -> float:
        if isinstance(self.daily, DayMap):
            return self.daily.maximum()
        return max(self.daily.values(), default=0.0)

    def days_at_or_above(self, mg: float) -> int:
        """Days in the window with PEQ >= ``mg`` (summed, intermittent courses count).

        Raises ValueError if ``mg`` is not positive (days without exposure are not stored).
        """
        _check_positive(mg)
        if isinstance(self.daily, DayMap):
            return self.daily.days_at_or_above(mg)
        return sum(1 for v in self.daily.values() if v >= mg - EPS)

    def longest_run_at_or_above(self, mg: float) -> int:
        """Longest run of consecutive days in the window with PEQ >= ``mg``."""
        _check_positive(mg)
        if isinstance(self.daily, DayMap):
            return self.daily.longest_run_at_or_above(mg)
        return _longest_run(sorted(d for d, v in self.daily.items() if v >= mg - EPS))

    def current_run_at_or_above(self, mg: float, *, include_planned: bool) -> int:
        """Consecutive days at or above ``mg`` ending today.

        With ``include_planned`` today is the larger of actual and planned exposure and the
        run continues into planned days after today. 0 when today is below ``mg``.
        """
        _check_positive(mg)
        today_value = self.daily.get(self.today, 0.0)
        if include_planned:
            today_value = max(today_value, self.planned_daily.get(self.today, 0.0))
        if today_value < mg - EPS:
            return 0
        run = 1 + _run_from(self.daily, self.today - DAY, mg, -1)
        if include_planned:
            run += _run_from(self.planned_daily, self.today + DAY, mg, 1)
        return run

    def planned_days_at_or_above(self, mg: float) -> int:
        """Days from today onward with planned PEQ >= ``mg`` (current and draft orders)."""
        _check_positive(mg)
        if isinstance(self.planned_daily, DayMap):
            return self.planned_daily.days_at_or_above(mg, since=self.today)
        return sum(1 for d, v in self.planned_daily.items() if d >= self.today and v >= mg - EPS)

    def iv_pulse_days(self) -> tuple[tuple[date, float, str], ...]:
        """(day, PEQ mg, source) for each IV day at or above the pulse threshold, by day."""
        return self.pulses

    def sources_for_days_at_or_above(self, mg: float) -> tuple[str, ...]:
        """References of the records giving exposure on the days at or above ``mg``."""
        _check_positive(mg)
        daily, day_sources = self.daily, self.day_sources
        if isinstance(day_sources, DaySources) and day_sources.days is daily:
            return day_sources.days.sources_at_or_above(mg)
        found: set[str] = set()
        for day, value in daily.items():
            if value >= mg - EPS:
                found.update(day_sources.get(day, ()))
        return tuple(sorted(found))

    def unknown_dose_sources(self) -> tuple[str, ...]:
        """Systemic GC records whose dose or dates could not be computed."""
        return self.unknown


def _check_positive(mg: float) -> None:
    if not mg > 0:
        raise ValueError("threshold must be a positive number of mg")


def _longest_run(days: list[date]) -> int:
    best = run = 0
    previous: date | None = None
    for day in days:
        run = run + 1 if previous is not None and day - previous == DAY else 1
        best, previous = max(best, run), day
    return best


def _run_from(days: Mapping[date, float], first: date, mg: float, step: int) -> int:
    """Consecutive days from ``first`` (backwards with ``step=-1``) with a value >= ``mg``."""
    if isinstance(days, DayMap):
        return days.run_from(first, mg, step)
    run, day, delta = 0, first, DAY * step
    while days.get(day, 0.0) >= mg - EPS:
        run, day = run + 1, day + delta
    return run
