"""Systemic glucocorticoid exposure: a per-day prednisone-equivalent (PEQ) timeline.

Pure and I/O-free: ``summarize_exposure(resources, medications, knowledge, params, now)``
turns MedicationRequest / MedicationStatement / MedicationAdministration / MedicationDispense
records (clinical-knowledge.md D1-D7) into :class:`Course` segments and day maps. Codes,
PEQ factors and thresholds come in through :class:`GlucocorticoidKnowledge` and
:class:`ExposureParams`; nothing clinical is written here.

Documented policies (design choices, not guideline statements):

* **Days and time zone.** ``today`` is ``now.date()`` in ``now``'s offset; datetimes with an
  offset are converted to that offset before taking the date. Partial dates ("2024-03") start
  on the first and end on the last day of the period and mark the course ``undated``.
* **Dose.** ``doseQuantity`` in a mass unit, or count/volume units times the product strength.
  ``doseRange`` uses the high value (``dose_range=True``). ``ordered`` beats ``calculated``.
  Weight/BSA-based doses (mg/kg, mg/m2), unitless doses and a missing PEQ factor give
  ``daily_peq_mg=None`` (GC present, dose unknown): listed by ``unknown_dose_sources()``,
  never counted as 0 mg silently in rules that ask for it.
* **Frequency.** ``repeat.frequency``/``period`` (frequencyMax when given; ``periodMax`` is
  ignored because the shorter interval is the higher exposure), ``when``/``timeOfDay`` counts,
  else the HL7 GTSAbbreviation ``timing.code``, else **once daily** (a dose with no timing).
  ``dayOfWeek`` puts the dose only on the listed weekdays. Schedules sparser than daily
  (every other day, weekly, monthly) are **averaged per day** over the schedule: 40 mg every
  other day = 20 mg/day on every day (``Course.alternate_day`` flags the every-other-day case,
  which ACIP treats differently for live vaccines).
* **Duration.** Per dosage: ``boundsPeriod`` (own dates), ``boundsDuration``/``boundsRange``
  (high), ``repeat.count``. Per record: ``dispenseRequest.expectedSupplyDuration`` or
  ``quantity`` / daily amount, each times ``numberOfRepeatsAllowed + 1``; MedicationStatement
  ``effective[x]``; MedicationDispense ``daysSupply``; MedicationAdministration ``effective[x]``
  (the whole dose on the start day unless the period is longer than a day, then spread evenly).
  Dosages with the same ``sequence`` are concurrent (summed); different sequences are laid end
  to end from the record's start (tapers). Dosages with no ``sequence`` are consecutive when
  every one has its own duration (a taper without sequence numbers), else concurrent. A step
  with no duration in the middle of a taper lasts one day (known gap).
* **Status.** Ignored: entered-in-error, cancelled, not-taken, not-done, declined, draft
  (outside ``draft_orders``), ``intent`` proposal/option, ``doNotPerform``. *active*: the past
  counts, the future part of the planned end is planned exposure; an open end runs to today
  but never past the last dated evidence of the record's cluster (see dedup) plus
  ``open_course_cap_days``. *completed/stopped/unknown*: R4 has no ``statusChanged``, so the
  course ends at its planned end (start + duration), or without one at the record's last dated
  evidence, and never after today. *on-hold*: days before today only. MedicationStatement
  *intended* and ``draft_orders``: planned only (today onward); a draft with no start starts
  today, a draft or intended record with no duration counts for its first day only.
  MedicationDispense: handed-over supply; its future days are planned exposure.
* **Missing dates.** Start = the dosage's own ``boundsPeriod.start``, else ``authoredOn``,
  else ``dispenseRequest.validityPeriod.start``, else ``effective[x]``/``whenHandedOver``, else
  ``dateAsserted`` or ``meta.lastUpdated`` (these two set ``undated=True``). With no date at
  all an active/current record counts for today only (``undated=True``); an ended, paused or
  administered record with no date cannot be placed in time, is left out of the timeline and
  reported by ``unknown_dose_sources()``.
* **Dedup (D1, D5).** Records linked by reference form a *cluster*: MedicationStatement
  ``basedOn``/``derivedFrom``/``partOf``, MedicationAdministration ``request``/``partOf``,
  MedicationDispense ``authorizingPrescription``, MedicationRequest ``basedOn`` and
  ``priorPrescription``. A renewal (``priorPrescription``) also ends the replaced order the day
  before the new one starts (a draft renewal replaces it from tomorrow). Per ingredient and
  day: within a cluster, administrations add up and the other records are duplicates (max of
  each kind, then max over kinds); clusters that contain a MedicationRequest add up (5 mg + 1 mg
  concurrent orders are summed); clusters without one add up within their kind, and the
  per-kind totals are combined by max with the order total (an unlinked statement, dispense or
  administration is assumed to document the same exposure as the orders). Ingredients add up.
* **Route.** Oral, IV, IM, SC and unknown systemic count; non-systemic routes and excluded
  products go to ``excluded_sources``. An IV day at or above ``iv_pulse_min_daily_peq_mg`` is a
  pulse; pulses count in full toward the cumulative dose (``cumulative == sum(daily)``).
* **Windows.** ``daily``: ``[today - lookback_days + 1, today]``. ``planned_daily``: today up to
  ``today + lookback_days`` from current records and draft orders. Day values are rounded to
  1e-6 mg so sums do not depend on record order.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from itertools import chain, pairwise, repeat
from typing import Any, Literal

from cds_service.fhir.models import (
    FHIRResourceModel,
    Medication,
    MedicationAdministration,
    MedicationDispense,
    MedicationRequest,
    MedicationStatement,
)
from cds_service.medications import (
    MAX_SPAN_DAYS,
    Dose,
    DrugInfo,
    GlucocorticoidKnowledge,
    Route,
    Schedule,
    dosage_texts,
    dose_per_administration,
    duration_days,
    identify_drug,
    quantity_mg,
    relative_reference,
    route_of,
    schedule,
)

__all__ = [
    "Course",
    "ExposureParams",
    "ExposureSummary",
    "GlucocorticoidKnowledge",
    "summarize_exposure",
]

ROUND_DIGITS = 6
_EPS = 1e-9
_DAY = timedelta(days=1)

Kind = Literal["request", "administration", "dispense", "statement"]
# How a record's status shapes its days (see module docstring, "Status").
Policy = Literal["current", "ended", "paused", "supply", "event", "planned"]
_KIND_ORDER: Mapping[str, int] = {"request": 0, "administration": 1, "dispense": 2, "statement": 3}


@dataclass(frozen=True)
class ExposureParams:
    """Engine parameters, all from hooks/thresholds.toml."""

    lookback_days: int
    open_course_cap_days: int  # open active order: ongoing to now, but not past evidence + cap
    iv_pulse_min_daily_peq_mg: float  # an IV day at or above this is an IV pulse


@dataclass(frozen=True)
class Course:
    """One dosing segment from one resource (a taper gives several).

    ``daily_peq_mg`` is PEQ mg on each dosing day (every day unless the order lists weekdays;
    sparser schedules are averaged), None when a systemic GC is present but its dose is not
    computable. ``start``/``end`` are inclusive local dates.
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
        if isinstance(self.daily, _DayMap):
            return self.daily.cumulative()
        return round(math.fsum(self.daily.values()), ROUND_DIGITS)

    def max_daily_peq_mg(self) -> float:
        if isinstance(self.daily, _DayMap):
            return self.daily.maximum()
        return max(self.daily.values(), default=0.0)

    def days_at_or_above(self, mg: float) -> int:
        """Days in the window with PEQ >= ``mg`` (summed, intermittent courses count).

        Raises ValueError if ``mg`` is not positive (days without exposure are not stored).
        """
        _check_positive(mg)
        if isinstance(self.daily, _DayMap):
            return self.daily.days_at_or_above(mg)
        return sum(1 for v in self.daily.values() if v >= mg - _EPS)

    def longest_run_at_or_above(self, mg: float) -> int:
        """Longest run of consecutive days in the window with PEQ >= ``mg``."""
        _check_positive(mg)
        if isinstance(self.daily, _DayMap):
            return self.daily.longest_run_at_or_above(mg)
        return _longest_run(sorted(d for d, v in self.daily.items() if v >= mg - _EPS))

    def current_run_at_or_above(self, mg: float, *, include_planned: bool) -> int:
        """Consecutive days at or above ``mg`` ending today.

        With ``include_planned`` today is the larger of actual and planned exposure and the
        run continues into planned days after today. 0 when today is below ``mg``.
        """
        _check_positive(mg)
        today_value = self.daily.get(self.today, 0.0)
        if include_planned:
            today_value = max(today_value, self.planned_daily.get(self.today, 0.0))
        if today_value < mg - _EPS:
            return 0
        run = 1 + _run_from(self.daily, self.today - _DAY, mg, -1)
        if include_planned:
            run += _run_from(self.planned_daily, self.today + _DAY, mg, 1)
        return run

    def planned_days_at_or_above(self, mg: float) -> int:
        """Days from today onward with planned PEQ >= ``mg`` (current and draft orders)."""
        _check_positive(mg)
        if isinstance(self.planned_daily, _DayMap):
            return self.planned_daily.days_at_or_above(mg, since=self.today)
        return sum(1 for d, v in self.planned_daily.items() if d >= self.today and v >= mg - _EPS)

    def iv_pulse_days(self) -> tuple[tuple[date, float, str], ...]:
        """(day, PEQ mg, source) for each IV day at or above the pulse threshold, by day."""
        return self.pulses

    def sources_for_days_at_or_above(self, mg: float) -> tuple[str, ...]:
        """References of the records giving exposure on the days at or above ``mg``."""
        _check_positive(mg)
        daily, day_sources = self.daily, self.day_sources
        if isinstance(day_sources, _DaySources) and day_sources.days is daily:
            return day_sources.days.sources_at_or_above(mg)
        found: set[str] = set()
        for day, value in daily.items():
            if value >= mg - _EPS:
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
        run = run + 1 if previous is not None and day - previous == _DAY else 1
        best, previous = max(best, run), day
    return best


def _run_from(days: Mapping[date, float], first: date, mg: float, step: int) -> int:
    """Consecutive days from ``first`` (backwards with ``step=-1``) with a value >= ``mg``."""
    if isinstance(days, _DayMap):
        return days.run_from(first, mg, step)
    run, day, delta = 0, first, _DAY * step
    while days.get(day, 0.0) >= mg - _EPS:
        run, day = run + 1, day + delta
    return run


# --------------------------------------------------------------------------- day maps


class _DayMap(Mapping[date, float]):
    """Day values stored as runs of days with one value: the summary's ``daily`` and
    ``planned_daily``. Behaves as the ``{day: mg}`` dict it stands for (sorted by day, built on
    first iteration); the summary's queries read the runs directly and memoise per threshold.

    ``starts``/``ends`` are inclusive day ordinals, sorted and disjoint; ``sources[i]`` are the
    records giving exposure on the days of run ``i`` (actual exposure only).
    """

    __slots__ = ("_dict", "_memo", "run_ends", "run_sources", "run_starts", "run_values")

    def __init__(
        self,
        starts: list[int],
        ends: list[int],
        values: list[float],
        sources: list[frozenset[str]] | None = None,
    ) -> None:
        self.run_starts, self.run_ends = starts, ends
        self.run_values, self.run_sources = values, sources
        self._dict: dict[date, float] | None = None
        self._memo: dict[tuple[str, float, int], Any] = {}

    def _index(self, ordinal: int) -> int:
        """Index of the run holding ``ordinal``, or -1."""
        i = bisect_right(self.run_starts, ordinal) - 1
        return i if i >= 0 and self.run_ends[i] >= ordinal else -1

    def index_of(self, key: object) -> int:
        """Index of the run holding day ``key``, or -1 (a datetime is never a day key)."""
        if isinstance(key, date) and not isinstance(key, datetime):
            return self._index(key.toordinal())
        return -1

    def as_dict(self) -> dict[date, float]:
        if self._dict is None:
            out: dict[date, float] = {}
            for first, last, value in zip(
                self.run_starts, self.run_ends, self.run_values, strict=True
            ):
                for ordinal in range(first, last + 1):
                    out[date.fromordinal(ordinal)] = value
            self._dict = out
        return self._dict

    def __getitem__(self, key: date) -> float:
        i = self.index_of(key)
        if i < 0:
            raise KeyError(key)
        return self.run_values[i]

    def get(self, key: date, default: Any = None) -> Any:
        i = self.index_of(key)
        return default if i < 0 else self.run_values[i]

    def __contains__(self, key: object) -> bool:
        return self.index_of(key) >= 0

    def __iter__(self) -> Iterator[date]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return sum(self.run_ends) - sum(self.run_starts) + len(self.run_starts)

    def keys(self) -> KeysView[date]:
        return self.as_dict().keys()

    def values(self) -> ValuesView[float]:
        return self.as_dict().values()

    def items(self) -> ItemsView[date, float]:
        return self.as_dict().items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _DayMap):
            return self.as_dict() == other.as_dict()
        if isinstance(other, Mapping):
            return self.as_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.as_dict())

    def cumulative(self) -> float:
        key = ("cumulative", 0.0, 0)
        if key not in self._memo:
            runs = zip(self.run_values, self.run_starts, self.run_ends, strict=True)
            total = math.fsum(chain.from_iterable(repeat(v, e - s + 1) for v, s, e in runs))
            self._memo[key] = round(total, ROUND_DIGITS)
        return float(self._memo[key])

    def maximum(self) -> float:
        return max(self.run_values, default=0.0)

    def days_at_or_above(self, mg: float, since: date | None = None) -> int:
        first = since.toordinal() if since is not None else 0
        key = ("days", mg, first)
        if key not in self._memo:
            floor = mg - _EPS
            self._memo[key] = sum(
                e - max(s, first) + 1
                for s, e, v in zip(self.run_starts, self.run_ends, self.run_values, strict=True)
                if v >= floor and e >= first
            )
        return int(self._memo[key])

    def longest_run_at_or_above(self, mg: float) -> int:
        key = ("longest", mg, 0)
        if key not in self._memo:
            floor, best, run_start, previous_end = mg - _EPS, 0, 0, None
            for s, e, v in zip(self.run_starts, self.run_ends, self.run_values, strict=True):
                if v < floor:
                    previous_end = None
                    continue
                if previous_end is None or s != previous_end + 1:
                    run_start = s
                previous_end = e
                best = max(best, e - run_start + 1)
            self._memo[key] = best
        return int(self._memo[key])

    def run_from(self, first: date, mg: float, step: int) -> int:
        """Consecutive days from ``first`` in direction ``step`` (+1/-1) with value >= ``mg``."""
        ordinal = first.toordinal()
        i = self._index(ordinal)
        floor, run = mg - _EPS, 0
        while 0 <= i < len(self.run_starts) and self.run_values[i] >= floor:
            if step > 0:
                run += self.run_ends[i] - ordinal + 1
                ordinal = self.run_ends[i] + 1
            else:
                run += ordinal - self.run_starts[i] + 1
                ordinal = self.run_starts[i] - 1
            i += step
            if (
                not 0 <= i < len(self.run_starts)
                or not self.run_starts[i] <= ordinal <= self.run_ends[i]
            ):
                break
        return run

    def sources_at_or_above(self, mg: float) -> tuple[str, ...]:
        key = ("sources", mg, 0)
        if key not in self._memo:
            found: set[str] = set()
            floor = mg - _EPS
            for v, srcs in zip(self.run_values, self.run_sources or (), strict=False):
                if v >= floor:
                    found.update(srcs)
            self._memo[key] = tuple(sorted(found))
        result: tuple[str, ...] = self._memo[key]
        return result


class _DaySources(Mapping[date, frozenset[str]]):
    """``day_sources``: day -> records giving exposure that day, for the days of ``days``."""

    __slots__ = ("_dict", "days")

    def __init__(self, days: _DayMap) -> None:
        self.days = days
        self._dict: dict[date, frozenset[str]] | None = None

    def as_dict(self) -> dict[date, frozenset[str]]:
        if self._dict is None:
            days, out = self.days, {}
            for first, last, srcs in zip(
                days.run_starts, days.run_ends, days.run_sources or (), strict=True
            ):
                for ordinal in range(first, last + 1):
                    out[date.fromordinal(ordinal)] = srcs
            self._dict = out
        return self._dict

    def __getitem__(self, key: date) -> frozenset[str]:
        i = self.days.index_of(key)
        if i < 0 or self.days.run_sources is None:
            raise KeyError(key)
        return self.days.run_sources[i]

    def __iter__(self) -> Iterator[date]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.days)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.as_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.as_dict())


# --------------------------------------------------------------------------- dates


@dataclass(frozen=True)
class _Day:
    value: date
    weak: bool  # partial date or weak evidence


_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")


def _to_day(raw: object, tz: tzinfo | None, *, end: bool = False) -> _Day | None:
    """Local date of a FHIR date/dateTime value (model objects or partial-date strings)."""
    if raw is None:
        return None
    if isinstance(raw, datetime):
        local = raw.astimezone(tz) if raw.tzinfo is not None else raw
        return _Day(local.date(), False)
    if isinstance(raw, date):
        return _Day(raw, False)
    text = str(raw)
    m = _PARTIAL_DATE.match(text)
    if m is None:
        return None
    try:
        return _partial_day(int(m.group(1)), m.group(2), m.group(3), end=end)
    except ValueError:  # impossible calendar date in the record: treat as no date
        return None


def _partial_day(year: int, month: str | None, day: str | None, *, end: bool) -> _Day:
    if day is not None and month is not None:
        return _Day(date(year, int(month), int(day)), False)
    if month is not None:
        first = date(year, int(month), 1)
        if not end:
            return _Day(first, True)
        nxt = date(year + (first.month == 12), first.month % 12 + 1, 1)
        return _Day(nxt - _DAY, True)
    return _Day(date(year, 12, 31) if end else date(year, 1, 1), True)


# --------------------------------------------------------------------------- records


@dataclass
class _Segment:
    ingredient: str
    name: str
    start: date | None  # None: the record's start
    end: date | None  # None: open, resolved by status policy
    peq: float | None  # PEQ mg per dosing day
    route: Route
    dose_range: bool
    undated: bool
    weekdays: frozenset[int] | None = None
    alternate: bool = False
    mg_per_day: float | None = None  # ingredient mg/day (supply-based duration)


@dataclass
class _Record:
    source: str
    kind: Kind
    policy: Policy
    segments: list[_Segment]
    evidence: date | None  # latest dated evidence on the record
    links: list[str] = field(default_factory=list)
    priors: list[str] = field(default_factory=list)
    draft: bool = False
    cluster: int = 0


@dataclass(frozen=True)
class _Context:
    knowledge: GlucocorticoidKnowledge
    params: ExposureParams
    medications: Mapping[str, Medication]
    tz: tzinfo | None
    today: date


def _refs(items: Iterable[Any] | None) -> list[str]:
    return [relative_reference(str(r.reference)) for r in (items or []) if r and r.reference]


def _earliest(days: Iterable[_Day | None]) -> _Day | None:
    return next((d for d in days if d is not None), None)


def _dosage_segments(
    dosages: Sequence[Any],
    drug: DrugInfo,
    ctx: _Context,
    *,
    start: date | None,
    weak: bool,
    record_days: int | None,
    supply_mg: float | None,
    supply_fills: int,
) -> list[_Segment]:
    """Lay out Dosage entries: same sequence concurrent, different sequences end to end."""
    factor = ctx.knowledge.peq_factor.get(drug.ingredient)
    items = list(dosages) or [None]
    groups: dict[int, list[Any]] = {}
    undated_seq = [d for d in items if d is None or d.sequence is None]
    consecutive_unsequenced = len(undated_seq) > 1 and all(
        d is not None and _own_duration(d, schedule(d.timing)) is not None for d in undated_seq
    )
    for position, d in enumerate(items):
        if d is not None and d.sequence is not None:
            key = int(d.sequence)
        else:
            key = position if consecutive_unsequenced else -1
        groups.setdefault(key, []).append(d)

    segments: list[_Segment] = []
    cursor = start
    ordered_keys = sorted(groups)
    for index, key in enumerate(ordered_keys):
        group_days: int | None = None
        group_segments: list[_Segment] = []
        for d in groups[key]:
            sched = schedule(d.timing if d is not None else None)
            dose = dose_per_administration(d, drug) if d is not None else Dose(None, False)
            mg_day = dose.mg * sched.per_day if dose.mg is not None else None
            peq = round(mg_day * factor, ROUND_DIGITS) if mg_day is not None and factor else None
            route = route_of(d.route if d is not None else None, ctx.knowledge, drug)
            seg = _Segment(
                drug.ingredient, drug.ingredient_name, None, None, peq, route,
                dose.dose_range, weak, sched.weekdays, sched.alternate, mg_day,
            )  # fmt: skip
            bounds = d.timing.repeat.boundsPeriod if d and d.timing and d.timing.repeat else None
            own_start = _to_day(bounds.start, ctx.tz) if bounds is not None else None
            own_end = _to_day(bounds.end, ctx.tz, end=True) if bounds is not None else None
            if own_start is not None or own_end is not None:
                seg.start = own_start.value if own_start else start
                seg.end = own_end.value if own_end else None
                seg.undated = weak if own_start is None else own_start.weak
                segments.append(seg)
                continue
            days = _own_duration(d, sched) if d is not None else None
            if days is not None:
                group_days = max(group_days or 0, days)
            group_segments.append(seg)
        if not group_segments:
            continue
        is_last = index == len(ordered_keys) - 1
        if group_days is None and is_last and len(ordered_keys) == 1:
            group_days = _record_days(record_days, supply_mg, supply_fills, group_segments)
        elif group_days is None and not is_last:
            group_days = 1  # unknown middle step of a taper (documented gap)
        for seg in group_segments:
            seg.start = cursor
            if cursor is not None and group_days is not None:
                seg.end = cursor + timedelta(days=group_days - 1)
        if group_days is None and record_days is not None and start is not None and is_last:
            total_end = start + timedelta(days=min(record_days * supply_fills, MAX_SPAN_DAYS) - 1)
            for seg in group_segments:
                seg.end = max(total_end, cursor) if cursor is not None else total_end
        segments.extend(group_segments)
        if cursor is not None and group_days is not None:
            cursor = cursor + timedelta(days=group_days)
    return segments


def _own_duration(dosage: Any, sched: Schedule) -> int | None:
    repeat = dosage.timing.repeat if dosage.timing is not None else None
    if repeat is None:
        return None
    days = duration_days(repeat.boundsDuration)
    if days is None and repeat.boundsRange is not None:
        days = duration_days(repeat.boundsRange.high)
    if days is None and sched.count is not None and sched.per_day > 0:
        per_week = sched.per_day * (len(sched.weekdays) if sched.weekdays else 7)
        days = min(max(1, math.ceil(sched.count / per_week * 7 - _EPS)), MAX_SPAN_DAYS)
    return days


def _record_days(
    record_days: int | None, supply_mg: float | None, fills: int, segments: list[_Segment]
) -> int | None:
    """Planned days of a single-step record: supply duration or quantity / daily amount."""
    if record_days is not None:
        return min(record_days * fills, MAX_SPAN_DAYS)
    per_day = [s.mg_per_day for s in segments]
    if supply_mg is None or any(v is None for v in per_day):
        return None
    total_per_day = sum(v for v in per_day if v is not None)
    weekly_fraction = 1.0
    weekdays = segments[0].weekdays
    if weekdays:
        weekly_fraction = len(weekdays) / 7
    if total_per_day * weekly_fraction <= 0:
        return None
    days = math.ceil(supply_mg * fills / (total_per_day * weekly_fraction) - _EPS)
    return min(max(1, days), MAX_SPAN_DAYS)


_REQUEST_POLICY: Mapping[str, Policy] = {
    "active": "current",
    "completed": "ended",
    "stopped": "ended",
    "unknown": "ended",
    "on-hold": "paused",
}
_STATEMENT_POLICY: Mapping[str, Policy] = {**_REQUEST_POLICY, "intended": "planned"}
_ADMINISTRATION_STATUSES = frozenset({"completed", "in-progress", "on-hold", "stopped", "unknown"})
_DISPENSE_STATUSES = frozenset({"completed", "in-progress", "unknown"})


def _status_policy(kind: Kind, status: str) -> Policy | None:
    if kind == "request":
        return _REQUEST_POLICY.get(status)
    if kind == "statement":
        return _STATEMENT_POLICY.get(status)
    if kind == "dispense":
        return "supply" if status in _DISPENSE_STATUSES else None
    return "event" if status in _ADMINISTRATION_STATUSES else None


def _source(resource: FHIRResourceModel, index: int) -> str:
    rtype = resource.get_resource_type()
    return f"{rtype}/{resource.id}" if resource.id else f"{rtype}/#{index}"


def _parse(
    resource: FHIRResourceModel, source: str, ctx: _Context, *, draft: bool
) -> _Record | DrugInfo | None:
    """A record, a DrugInfo for an excluded/undatable GC (reported), or None (ignored)."""
    if isinstance(resource, MedicationRequest):
        return _parse_request(resource, source, ctx, draft=draft)
    if isinstance(resource, MedicationStatement):
        return _parse_statement(resource, source, ctx)
    if isinstance(resource, MedicationAdministration):
        return _parse_administration(resource, source, ctx)
    if isinstance(resource, MedicationDispense):
        return _parse_dispense(resource, source, ctx)
    return None


def _identify(resource: Any, dosage_items: Sequence[Any], ctx: _Context) -> DrugInfo | None:
    return identify_drug(
        resource.medicationCodeableConcept,
        resource.medicationReference,
        list(resource.contained or []),
        ctx.medications,
        ctx.knowledge,
        dosage_texts(dosage_items),
    )


def _parse_request(
    mr: MedicationRequest, source: str, ctx: _Context, *, draft: bool
) -> _Record | DrugInfo | None:
    status = str(mr.status)
    if draft:
        if status not in ("draft", "active"):
            return None
        policy: Policy | None = "planned"
    else:
        if str(mr.intent) in ("proposal", "option"):
            return None
        policy = _status_policy("request", status)
    if policy is None or mr.doNotPerform:
        return None
    dosages = list(mr.dosageInstruction or [])
    drug = _identify(mr, dosages, ctx)
    if drug is None or drug.excluded:
        return drug
    tz = ctx.tz
    bound_starts: list[_Day] = []
    for d in dosages:
        if d.timing and d.timing.repeat and d.timing.repeat.boundsPeriod:
            day = _to_day(d.timing.repeat.boundsPeriod.start, tz)
            if day is not None:
                bound_starts.append(day)
    bound_starts.sort(key=lambda b: b.value)
    disp = mr.dispenseRequest
    validity = _to_day(disp.validityPeriod.start, tz) if disp and disp.validityPeriod else None
    last_updated = _to_day(mr.meta.lastUpdated, tz) if mr.meta else None
    start = _earliest(
        [
            bound_starts[0] if bound_starts else None,
            _to_day(mr.authoredOn, tz),
            validity,
            _Day(last_updated.value, True) if last_updated else None,
        ]
    )
    if draft:
        # A draft has not been taken yet: it starts today (or at a later explicit start), even
        # when authoredOn or meta.lastUpdated is older (an order drafted earlier, the spec's
        # examples dated 2018).
        explicit = bound_starts[0].value if bound_starts else None
        start = _Day(
            explicit if explicit is not None and explicit > ctx.today else ctx.today, False
        )
    record_days = duration_days(disp.expectedSupplyDuration) if disp else None
    fills = 1 + int(disp.numberOfRepeatsAllowed or 0) if disp else 1
    supply_mg = None
    if disp is not None and disp.quantity is not None and disp.quantity.value is not None:
        supply_mg = quantity_mg(float(disp.quantity.value), disp.quantity, drug)
    segments = _dosage_segments(
        dosages, drug, ctx,
        start=start.value if start else None, weak=start.weak if start else True,
        record_days=record_days, supply_mg=supply_mg, supply_fills=fills,
    )  # fmt: skip
    evidence_days = [start, _to_day(mr.authoredOn, tz), validity, *bound_starts]
    return _Record(
        source, "request", policy, segments, _latest(evidence_days, ctx.today),
        links=_refs(mr.basedOn),
        priors=_refs([mr.priorPrescription] if mr.priorPrescription else []),
        draft=draft,
    )  # fmt: skip


def _latest(days: Iterable[_Day | None], today: date) -> date | None:
    values = [d.value for d in days if d is not None and d.value <= today]
    return max(values, default=None)


def _parse_statement(
    ms: MedicationStatement, source: str, ctx: _Context
) -> _Record | DrugInfo | None:
    policy = _status_policy("statement", str(ms.status))
    if policy is None:
        return None
    dosages = list(ms.dosage or [])
    drug = _identify(ms, dosages, ctx)
    if drug is None or drug.excluded:
        return drug
    tz = ctx.tz
    period = ms.effectivePeriod
    eff_start = _to_day(period.start if period else ms.effectiveDateTime, tz)
    eff_end = _to_day(period.end, tz, end=True) if period else None
    asserted = _to_day(ms.dateAsserted, tz)
    last_updated = _to_day(ms.meta.lastUpdated, tz) if ms.meta else None
    start = _earliest(
        [
            eff_start,
            _Day(asserted.value, True) if asserted else None,
            _Day(last_updated.value, True) if last_updated else None,
        ]
    )
    segments = _dosage_segments(
        dosages, drug, ctx,
        start=start.value if start else None, weak=start.weak if start else True,
        record_days=None, supply_mg=None, supply_fills=1,
    )  # fmt: skip
    if eff_end is not None:
        for seg in segments:
            seg.end = eff_end.value if seg.end is None else min(seg.end, eff_end.value)
    evidence = _latest([eff_start, eff_end, asserted], ctx.today)
    return _Record(
        source, "statement", policy, segments, evidence,
        links=_refs([*(ms.basedOn or []), *(ms.derivedFrom or []), *(ms.partOf or [])]),
    )  # fmt: skip


def _parse_administration(
    ma: MedicationAdministration, source: str, ctx: _Context
) -> _Record | DrugInfo | None:
    policy = _status_policy("administration", str(ma.status))
    if policy is None:
        return None
    dosage = ma.dosage
    drug = _identify(ma, [dosage] if dosage else [], ctx)
    if drug is None or drug.excluded:
        return drug
    tz = ctx.tz
    period = ma.effectivePeriod
    start = _to_day(period.start if period else ma.effectiveDateTime, tz)
    end = _to_day(period.end, tz, end=True) if period else start
    if end is None and start is not None and str(ma.status) == "in-progress":
        end = _Day(max(start.value, ctx.today), False)
    mg = None
    if dosage is not None and dosage.dose is not None and dosage.dose.value is not None:
        mg = quantity_mg(float(dosage.dose.value), dosage.dose, drug)
    factor = ctx.knowledge.peq_factor.get(drug.ingredient)
    span = (end.value - start.value).days + 1 if start and end and end.value > start.value else 1
    # An infusion crossing midnight is one administration: the dose goes to its start day.
    if period is not None and span > 1 and period.end is not None and period.start is not None:
        hours = (_as_datetime(period.end) - _as_datetime(period.start)).total_seconds() / 3600
        if hours <= 24:
            span, end = 1, start
    peq = round(mg * factor / span, ROUND_DIGITS) if mg is not None and factor else None
    route = route_of(dosage.route if dosage else None, ctx.knowledge, drug)
    seg = _Segment(
        drug.ingredient, drug.ingredient_name, start.value if start else None,
        end.value if end else None, peq, route, False, start.weak if start else True,
    )  # fmt: skip
    return _Record(
        source, "administration", policy, [seg], _latest([start], ctx.today),
        links=_refs([*([ma.request] if ma.request else []), *(ma.partOf or [])]),
    )  # fmt: skip


def _as_datetime(raw: object) -> datetime:
    if isinstance(raw, datetime):
        return raw
    day = _to_day(raw, None)
    return datetime.combine(day.value if day else date.min, datetime.min.time())


def _parse_dispense(
    md: MedicationDispense, source: str, ctx: _Context
) -> _Record | DrugInfo | None:
    policy = _status_policy("dispense", str(md.status))
    if policy is None:
        return None
    dosages = list(md.dosageInstruction or [])
    drug = _identify(md, dosages, ctx)
    if drug is None or drug.excluded:
        return drug
    tz = ctx.tz
    handed = _to_day(md.whenHandedOver, tz)
    prepared = _to_day(md.whenPrepared, tz)
    last_updated = _to_day(md.meta.lastUpdated, tz) if md.meta else None
    start = _earliest(
        [
            handed,
            _Day(prepared.value, True) if prepared else None,
            _Day(last_updated.value, True) if last_updated else None,
        ]
    )
    days = duration_days(md.daysSupply)
    supply_mg = None
    if md.quantity is not None and md.quantity.value is not None:
        supply_mg = quantity_mg(float(md.quantity.value), md.quantity, drug)
    if dosages:
        segments = _dosage_segments(
            dosages, drug, ctx,
            start=start.value if start else None, weak=start.weak if start else True,
            record_days=days, supply_mg=supply_mg, supply_fills=1,
        )  # fmt: skip
    else:
        # No SIG: spread the dispensed amount evenly over the days supplied.
        factor = ctx.knowledge.peq_factor.get(drug.ingredient)
        peq = None
        if days and supply_mg is not None and factor:
            peq = round(supply_mg / days * factor, ROUND_DIGITS)
        first = start.value if start else None
        last = first + timedelta(days=days - 1) if first and days else None
        route: Route = "oral" if drug.oral_form else "unknown-systemic"
        segments = [
            _Segment(drug.ingredient, drug.ingredient_name, first, last, peq, route, False,
                     start.weak if start else True)
        ]  # fmt: skip
    return _Record(
        source, "dispense", policy, segments, _latest([handed, prepared], ctx.today),
        links=_refs(md.authorizingPrescription),
    )  # fmt: skip


# --------------------------------------------------------------------------- assembly


class _Clusters:
    """Union-find over record sources."""

    def __init__(self, sources: Iterable[str]) -> None:
        self.parent = {s: s for s in sources}

    def find(self, s: str) -> str:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


def _resolve_dates(record: _Record, cluster_evidence: date | None, ctx: _Context) -> None:
    """Apply the status policy to open ends and missing starts (module docstring)."""
    today, cap = ctx.today, ctx.params.open_course_cap_days
    evidence = cluster_evidence or record.evidence
    for seg in record.segments:
        if seg.start is None:
            if record.policy in ("current", "planned"):
                seg.start, seg.end, seg.undated = today, today, record.policy == "current"
            continue
        if seg.end is None:
            if record.policy == "current":
                seg.end = min(today, (evidence or seg.start) + timedelta(days=cap))
            elif record.policy == "paused":
                seg.end = min(today - _DAY, (evidence or seg.start) + timedelta(days=cap))
            elif record.policy == "ended":
                seg.end = max(seg.start, min(record.evidence or seg.start, today))
            else:
                seg.end = seg.start
        if record.policy == "ended":
            seg.end = min(seg.end, today)
        elif record.policy == "paused":
            seg.end = min(seg.end, today - _DAY)


def _days(seg: _Segment, lo: date, hi: date) -> Iterator[date]:
    if seg.start is None or seg.end is None:  # unresolved segments were dropped already
        return
    day, last = max(seg.start, lo), min(seg.end, hi)
    while day <= last:
        if seg.weekdays is None or day.weekday() in seg.weekdays:
            yield day
        day += _DAY


def summarize_exposure(
    resources: Sequence[FHIRResourceModel],
    medications: Mapping[str, Medication],
    knowledge: GlucocorticoidKnowledge,
    params: ExposureParams,
    now: datetime,
    draft_orders: Sequence[MedicationRequest] = (),
) -> ExposureSummary:
    """Systemic glucocorticoid exposure as of ``now`` (see the module docstring for policies).

    ``resources``: MedicationRequest/Statement/Administration/Dispense (others are ignored).
    ``medications``: "Medication/<id>" -> Medication; contained ones are read from the record.
    ``now`` must be timezone-aware (ValueError otherwise); ``today`` is its local date.
    ``draft_orders``: CDS Hooks draftOrders, planned exposure only. All mg are PEQ mg.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    ctx = _Context(knowledge, params, medications, now.tzinfo, now.date())
    prepared = _prepare(resources, draft_orders, ctx)
    return _summarize(prepared, ctx)


@dataclass
class _Prepared:
    """Records with resolved dates, their clusters' anchor kinds, and what was set aside."""

    records: dict[str, _Record]
    anchors: Mapping[int, str]
    excluded: set[str]
    unknown: set[str]


def _prepare(
    resources: Sequence[FHIRResourceModel],
    draft_orders: Sequence[MedicationRequest],
    ctx: _Context,
) -> _Prepared:
    """Parse, cluster (dedup), resolve open dates and apply renewals."""
    today = ctx.today
    records: dict[str, _Record] = {}
    excluded: set[str] = set()
    unknown: set[str] = set()
    inputs = [(r, False) for r in resources] + [(r, True) for r in draft_orders]
    for index, (resource, is_draft) in enumerate(inputs):
        source = _source(resource, index)
        parsed = _parse(resource, source, ctx, draft=is_draft)
        if isinstance(parsed, DrugInfo):
            excluded.add(source)
        elif parsed is not None and source not in records:
            records[source] = parsed

    clusters = _Clusters(records)
    for rec in records.values():
        for ref in (*rec.links, *rec.priors):
            if ref in records:
                clusters.union(rec.source, ref)
    roots = sorted({clusters.find(s) for s in records})
    cluster_ids = {root: i for i, root in enumerate(roots)}
    evidence: dict[int, date] = {}
    members: dict[int, list[_Record]] = {}
    for src in sorted(records):
        rec = records[src]
        rec.cluster = cluster_ids[clusters.find(src)]
        members.setdefault(rec.cluster, []).append(rec)
        if rec.evidence is not None and not rec.draft:
            evidence[rec.cluster] = max(evidence.get(rec.cluster, rec.evidence), rec.evidence)
    anchors = {
        cid: min((r.kind for r in recs), key=_KIND_ORDER.__getitem__)
        for cid, recs in members.items()
    }

    for rec in records.values():
        _resolve_dates(rec, evidence.get(rec.cluster), ctx)
        if any(s.start is None for s in rec.segments) or not rec.segments:
            unknown.add(rec.source)
            rec.segments = [s for s in rec.segments if s.start is not None]
    _apply_renewals(records, today)
    return _Prepared(records, anchors, excluded, unknown)


def _summarize(prepared: _Prepared, ctx: _Context) -> ExposureSummary:
    """Courses, day maps and pulses from prepared records."""
    records, anchors, unknown = prepared.records, prepared.anchors, set(prepared.unknown)
    today, params = ctx.today, ctx.params
    window_start = today - timedelta(days=params.lookback_days - 1)
    horizon = today + timedelta(days=params.lookback_days)
    courses: list[Course] = []
    actual: list[_Piece] = []
    planned: list[_Piece] = []
    iv: dict[tuple[str, str, date], float] = {}
    lo, now_ord, hi = window_start.toordinal(), today.toordinal(), horizon.toordinal()
    order = 0
    for src in sorted(records):
        rec = records[src]
        for seg in rec.segments:
            courses.extend(_courses(rec, seg, window_start, today))
            if seg.peq is None:
                unknown.add(src)
                continue
            if seg.peq <= 0 or seg.start is None or seg.end is None:
                continue
            order += 1
            first, last = seg.start.toordinal(), seg.end.toordinal()
            if rec.policy != "planned":
                _add_pieces(actual, rec, seg, order, max(first, lo), min(last, now_ord))
                if seg.route == "iv":
                    for day in _days(seg, window_start, today):
                        key = (src, seg.ingredient, day)
                        iv[key] = iv.get(key, 0.0) + seg.peq
            if rec.policy in ("current", "planned", "supply"):
                _add_pieces(planned, rec, seg, order, max(first, now_ord), min(last, hi))

    daily = _timeline(actual, anchors, with_sources=True)
    return ExposureSummary(
        courses=tuple(sorted(courses, key=lambda c: (c.start, c.source, c.end, c.ingredient))),
        excluded_sources=tuple(sorted(prepared.excluded - set(records))),
        daily=daily,
        planned_daily=_timeline(planned, anchors, with_sources=False),
        today=today,
        window_start=window_start,
        pulses=_pulses(iv, records, params.iv_pulse_min_daily_peq_mg),
        unknown=tuple(sorted(unknown)),
        day_sources=_DaySources(daily),
    )


# A segment's days in one window, as an interval of day ordinals: (first, last, order, source,
# ingredient, PEQ mg, cluster, kind). ``order`` follows (source, segment) as the per-day loop did.
_Piece = tuple[int, int, int, str, str, float, int, str]


def _add_pieces(
    out: list[_Piece], rec: _Record, seg: _Segment, order: int, first: int, last: int
) -> None:
    """Append ``seg``'s days in [first, last]: one interval, or one per listed weekday."""
    if first > last or seg.peq is None:
        return
    if seg.weekdays is None:
        out.append((first, last, order, rec.source, seg.ingredient, seg.peq, rec.cluster, rec.kind))
        return
    for ordinal in range(first, last + 1):
        if (ordinal - 1) % 7 in seg.weekdays:  # date.fromordinal(1) is a Monday (weekday 0)
            out.append(
                (ordinal, ordinal, order, rec.source, seg.ingredient, seg.peq, rec.cluster, rec.kind)
            )  # fmt: skip


def _timeline(pieces: list[_Piece], anchors: Mapping[int, str], *, with_sources: bool) -> _DayMap:
    """Sweep over interval boundaries: per-day totals (dedup policy) as runs of equal days.

    Between two consecutive boundaries the same pieces cover every day, so each stretch is
    combined once, exactly as the per-day computation would combine each of its days.
    """
    starts: list[int] = []
    ends: list[int] = []
    values: list[float] = []
    sources: list[frozenset[str]] = []
    if not pieces:
        return _DayMap(starts, ends, values, sources if with_sources else None)
    pieces.sort()
    bounds = sorted({p[0] for p in pieces} | {p[1] + 1 for p in pieces})
    active: list[_Piece] = []
    j, n = 0, len(pieces)
    for b, nb in pairwise(bounds):
        added = False
        while j < n and pieces[j][0] <= b:
            active.append(pieces[j])
            j, added = j + 1, True
        active = [p for p in active if p[1] >= b]
        if not active:
            continue
        if added and len(active) > 1:
            active.sort(key=_piece_order)
        total = active[0][5] if len(active) == 1 else _combine_day(active, anchors)
        if total > 0:
            starts.append(b)
            ends.append(nb - 1)
            values.append(round(total, ROUND_DIGITS))
            if with_sources:
                sources.append(frozenset(p[3] for p in active))
    return _DayMap(starts, ends, values, sources if with_sources else None)


def _piece_order(piece: _Piece) -> int:
    return piece[2]


def _combine_day(active: list[_Piece], anchors: Mapping[int, str]) -> float:
    """One day's total from the pieces covering it, following the dedup policy.

    Same steps and summation order as per day: records (segments summed), then per kind in a
    cluster (administrations summed, other kinds max), max over kinds, clusters summed per
    anchor kind, max over anchors, ingredients summed.
    """
    per_record: dict[tuple[str, str], tuple[float, int, str]] = {}
    for _f, _l, _o, src, ing, peq, cluster, kind in active:
        key = (src, ing)
        found = per_record.get(key)
        per_record[key] = (found[0] + peq if found else peq, cluster, kind)
    by_kind: dict[tuple[str, int, str], float] = {}
    for (_src, ing), (value, cluster, kind) in per_record.items():
        key4 = (ing, cluster, kind)
        if kind == "administration":
            by_kind[key4] = by_kind.get(key4, 0.0) + value
        else:
            by_kind[key4] = max(by_kind.get(key4, 0.0), value)
    by_cluster: dict[tuple[str, int], float] = {}
    for (ing, cluster, _kind), value in by_kind.items():
        key3 = (ing, cluster)
        by_cluster[key3] = max(by_cluster.get(key3, 0.0), value)
    by_anchor: dict[tuple[str, str], float] = {}
    for (ing, cluster), value in by_cluster.items():
        key_a = (ing, anchors[cluster])
        by_anchor[key_a] = by_anchor.get(key_a, 0.0) + value
    by_ingredient: dict[str, float] = {}
    for (ing, _anchor), value in by_anchor.items():
        by_ingredient[ing] = max(by_ingredient.get(ing, 0.0), value)
    total = 0.0
    for value in by_ingredient.values():
        total += value
    return total


def _apply_renewals(records: Mapping[str, _Record], today: date) -> None:
    """A renewal ends the order it replaces the day before it starts (drafts: after today)."""
    for rec in records.values():
        starts = [s.start for s in rec.segments if s.start is not None]
        if not rec.priors or not starts:
            continue
        cut = min(starts) - _DAY
        if rec.draft:
            cut = max(cut, today)
        for ref in rec.priors:
            old = records.get(ref)
            if old is None or old.draft:
                continue
            kept = []
            for seg in old.segments:
                if seg.start is not None and seg.start > cut:
                    continue
                if seg.end is not None:
                    seg.end = min(seg.end, cut)
                kept.append(seg)
            old.segments = kept


def _courses(rec: _Record, seg: _Segment, window_start: date, today: date) -> list[Course]:
    """Public Course objects for a segment, split into actual (to today) and planned parts."""
    if seg.start is None or seg.end is None:  # unresolved segments were dropped already
        return []
    out: list[Course] = []
    if rec.policy != "planned" and seg.start <= today and seg.end >= window_start:
        out.append(
            Course(
                rec.source, seg.ingredient, seg.name, seg.start, min(seg.end, today), seg.peq,
                seg.route, False, seg.dose_range, seg.undated, seg.alternate,
            )
        )  # fmt: skip
    future_start = max(seg.start, today if rec.policy == "planned" else today + _DAY)
    if rec.policy in ("current", "planned", "supply") and seg.end >= future_start:
        out.append(
            Course(
                rec.source, seg.ingredient, seg.name, future_start, seg.end, seg.peq,
                seg.route, True, seg.dose_range, seg.undated, seg.alternate,
            )
        )  # fmt: skip
    return out


def _pulses(
    iv: Mapping[tuple[str, str, date], float], records: Mapping[str, _Record], threshold: float
) -> tuple[tuple[date, float, str], ...]:
    """IV pulse days, one per day and cluster (linked duplicates are not listed twice)."""
    best: dict[tuple[date, int], tuple[float, str]] = {}
    admin_sum: dict[tuple[date, int], tuple[float, str]] = {}
    for (src, _ing, day), value in sorted(iv.items()):
        rec = records[src]
        key = (day, rec.cluster)
        if rec.kind == "administration":
            total, first = admin_sum.get(key, (0.0, src))
            admin_sum[key] = (total + value, min(first, src))
            value, src = admin_sum[key]
        current = best.get(key)
        if current is None or value > current[0] + _EPS:
            best[key] = (value, src)
    return tuple(
        sorted(
            (day, round(value, ROUND_DIGITS), src)
            for (day, _cluster), (value, src) in best.items()
            if value >= threshold - _EPS
        )
    )
