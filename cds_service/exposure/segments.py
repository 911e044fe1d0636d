"""A record's Dosage entries laid out in time as dose segments.

Same ``sequence`` concurrent, different sequences end to end (tapers); see "Duration" in the
docstring of :mod:`cds_service.exposure`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.exposure.context import Context
from cds_service.exposure.dates import Day, to_day
from cds_service.exposure.daymap import EPS, ROUND_DIGITS
from cds_service.exposure.doses import DosePart, dosage_parts
from cds_service.fhir.views import Dosage
from cds_service.medications import (
    MAX_SPAN_DAYS,
    DoseReason,
    DoseSource,
    DrugInfo,
    Route,
    Schedule,
    duration_days,
    route_of,
    schedule,
    weakest_source,
)


@dataclass
class Segment:
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
    source: DoseSource = "structured"
    reason: DoseReason | None = None  # why ``peq`` is None
    start_unknown: bool = False  # a current record with no date at all: placed on today only

    def on_days(self, start: date, end: date) -> Segment:
        """A copy from ``start`` to ``end``: ``dataclasses.replace`` without its per-field
        lookups (every field is an init field)."""
        return Segment(**{**vars(self), "start": start, "end": end})


def dosage_segments(
    dosages: Sequence[Dosage],
    drug: DrugInfo,
    ctx: Context,
    start: Day | None,
    *,
    record_days: int | None,
    supply_mg: float | None,
    supply_fills: int,
    record_end: date | None = None,
) -> list[Segment]:
    """Lay out Dosage entries from the record's ``start`` (None: no date yet, weak).

    ``record_days`` (a supply duration) or ``supply_mg`` (an amount to divide by the daily
    dose), times ``supply_fills``, give the length of a single-step record whose dosages have
    none of their own; no dosage at all is one dose-less segment. ``record_end`` (the last day
    the prescription may be filled, ``dispenseRequest.validityPeriod.end``) ends whatever is
    still open after that.
    """
    first = start.value if start else None
    weak = start.weak if start else True
    groups = _sequence_groups(list(dosages) or [None])
    segments: list[Segment] = []
    steps: list[tuple[list[Segment], int | None]] = []
    for key in sorted(groups):
        steps.extend(_group_steps(groups[key], drug, ctx, first, weak, segments))
    cursor = first
    last_index = len(steps) - 1
    for index, (step, own_days) in enumerate(steps):
        step_days = own_days
        if not step:
            continue
        if step_days is None and last_index == 0:
            step_days = _record_days(record_days, supply_mg, supply_fills, step)
        elif step_days is None and index < last_index:
            step_days = 1  # unknown middle step of a taper (documented gap)
        _place_step(step, cursor, step_days)
        if step_days is None and record_days is not None and first is not None:
            # The open last step of a taper ends with the record's supply.
            _end_with_supply(step, cursor, first, min(record_days * supply_fills, MAX_SPAN_DAYS))
        segments.extend(step)
        if cursor is not None and step_days is not None:
            cursor = cursor + timedelta(days=step_days)
    if record_end is not None:
        for seg in segments:
            if seg.start is not None and seg.end is None:
                seg.end = max(seg.start, record_end)
    return merge_concurrent(segments)


def merge_concurrent(segments: list[Segment]) -> list[Segment]:
    """Segments of one record on the same days with the same schedule and route, summed:
    divided doses (hydrocortisone 10 + 5 + 5 mg) are one course of 20 mg a day. Segments of
    unknown dose stay apart."""
    merged: dict[tuple[object, ...], Segment] = {}
    out: list[Segment] = []
    for seg in segments:
        if seg.peq is None:
            out.append(seg)
            continue
        key = (seg.start, seg.end, seg.route, seg.weekdays, seg.alternate, seg.undated)
        found = merged.get(key)
        if found is None:
            merged[key] = seg
            out.append(seg)
            continue
        found.peq = round(found.peq + seg.peq, ROUND_DIGITS) if found.peq is not None else None
        if found.mg_per_day is not None and seg.mg_per_day is not None:
            found.mg_per_day += seg.mg_per_day
        found.dose_range = found.dose_range or seg.dose_range
        found.source = weakest_source([found.source, seg.source])
    return out


def _sequence_groups(items: list[Dosage | None]) -> dict[int, list[Dosage | None]]:
    """Dosages by step: their ``sequence``; without one, each its own step when every such
    dosage has its own duration (a taper without sequence numbers), else one shared step.

    Dosages that each name different times of day (10 mg in the morning, 5 mg at noon, 5 mg
    in the evening, each for 90 days) are divided doses of one day, never a taper.
    """
    unsequenced = [d for d in items if d is None or d.sequence is None]
    consecutive = (
        len(unsequenced) > 1
        and all(
            d is not None and own_duration(d, schedule(d.timing)) is not None for d in unsequenced
        )
        and not _divided_by_time(unsequenced)
    )
    groups: dict[int, list[Dosage | None]] = {}
    for position, d in enumerate(items):
        if d is not None and d.sequence is not None:
            key = int(d.sequence)
        else:
            key = position if consecutive else -1
        groups.setdefault(key, []).append(d)
    return groups


def _divided_by_time(dosages: list[Dosage | None]) -> bool:
    """Every dosage names its times of day (``when``, ``timeOfDay``, a timing code such as AM
    or PM) and no two name the same ones."""
    seen: set[frozenset[str]] = set()
    for d in dosages:
        timing = d.timing if d is not None else None
        if timing is None:
            return False
        repeat = timing.repeat
        times = {str(w) for w in (repeat.when or [])} if repeat else set()
        times |= {str(t) for t in (repeat.timeOfDay or [])} if repeat else set()
        times |= (
            {str(c.code) for c in (timing.code.coding or []) if c.code} if timing.code else set()
        )
        if not times or frozenset(times) in seen:
            return False
        seen.add(frozenset(times))
    return True


def _group_steps(
    group: list[Dosage | None],
    drug: DrugInfo,
    ctx: Context,
    start: date | None,
    weak: bool,
    placed: list[Segment],
) -> list[tuple[list[Segment], int | None]]:
    """The steps of one sequence group: its dosages side by side (each step's length is its
    longest own duration, or None), then the later steps of an instruction-text taper.

    A dosage with its own ``boundsPeriod`` is not part of the step: its segment goes straight
    to ``placed``, on its own dates.
    """
    step_days: int | None = None
    step: list[Segment] = []
    later: list[tuple[list[Segment], int | None]] = []
    for d in group:
        sched = schedule(d.timing if d is not None else None)
        parts = dosage_parts(d, sched, drug, ctx, start or ctx.today)
        segs = [_segment(d, sched, part, drug, ctx, weak) for part in parts]
        if d is not None and len(segs) == 1 and _place_on_own_bounds(segs[0], d, start, weak, ctx):
            placed.append(segs[0])
            continue
        own = own_duration(d, sched) if d is not None else None
        days = parts[0].days if parts[0].days is not None else own
        if days is not None:
            step_days = max(step_days or 0, days)
        step.append(segs[0])
        later.extend(([seg], part.days) for seg, part in zip(segs[1:], parts[1:], strict=True))
    return [(step, step_days), *later]


def _segment(
    dosage: Dosage | None,
    sched: Schedule,
    part: DosePart,
    drug: DrugInfo,
    ctx: Context,
    weak: bool,
) -> Segment:
    """The dose segment of one step of a Dosage, not yet placed in time."""
    total = ctx.knowledge.peq_mg(drug.ingredient, part.mg_per_day)
    peq = round(total, ROUND_DIGITS) if total is not None else None
    source, reason = part.source, part.reason
    if peq is None and part.mg_per_day is not None:
        source, reason = "unknown", "no-peq-factor"
    route = route_of(dosage.route if dosage is not None else None, ctx.knowledge, drug)
    # A schedule read from the text replaces the structured one (its weekdays too).
    weekdays = None if part.source == "instruction-text" else sched.weekdays
    return Segment(
        drug.ingredient, drug.ingredient_name, None, None, peq, route, part.dose_range, weak,
        weekdays, part.alternate, part.mg_per_day, source, reason,
    )  # fmt: skip


def _place_on_own_bounds(
    seg: Segment, dosage: Dosage, start: date | None, weak: bool, ctx: Context
) -> bool:
    """Put ``seg`` on the dosage's own boundsPeriod; False when it is laid out as part of its
    step instead.

    A boundsPeriod with an end places the dosage on its own dates. One with only a start says
    when it starts, not how long it lasts: when that is the record's start (a single-step
    order, or a draft, which starts today) the dosage stays in its step, so its count or the
    record's supply (``expectedSupplyDuration``...) gives the length; a later start places it
    there, for its own duration or open.
    """
    repeat = dosage.timing.repeat if dosage.timing is not None else None
    bounds = repeat.boundsPeriod if repeat is not None else None
    if bounds is None:
        return False
    own_start = to_day(bounds.start, ctx.tz)
    own_end = to_day(bounds.end, ctx.tz, end=True)
    if own_start is None and own_end is None:
        return False
    if own_end is None and (start is None or own_start is None or own_start.value <= start):
        return False
    seg.start = own_start.value if own_start else start
    if own_end is not None:
        seg.end = own_end.value
    elif seg.start is not None:
        days = own_duration(dosage, schedule(dosage.timing))
        seg.end = seg.start + timedelta(days=days - 1) if days is not None else None
    seg.undated = weak if own_start is None else own_start.weak
    return True


def _place_step(step: list[Segment], cursor: date | None, days: int | None) -> None:
    for seg in step:
        seg.start = cursor
        if cursor is not None and days is not None:
            seg.end = cursor + timedelta(days=days - 1)


def _end_with_supply(step: list[Segment], cursor: date | None, first: date, days: int) -> None:
    """The last step of a taper with a record-level supply duration ends with the supply."""
    total_end = first + timedelta(days=days - 1)
    for seg in step:
        seg.end = max(total_end, cursor) if cursor is not None else total_end


def own_duration(dosage: Dosage, sched: Schedule) -> int | None:
    """Days of a Dosage from its own Timing: boundsDuration, boundsRange high, repeat.count."""
    repeat = dosage.timing.repeat if dosage.timing is not None else None
    if repeat is None:
        return None
    days = duration_days(repeat.boundsDuration)
    if days is None and repeat.boundsRange is not None:
        days = duration_days(repeat.boundsRange.high)
    if days is None and sched.count is not None and sched.per_day > 0:
        per_week = sched.per_day * (len(sched.weekdays) if sched.weekdays else 7)
        days = min(max(1, math.ceil(sched.count / per_week * 7 - EPS)), MAX_SPAN_DAYS)
    return days


def _record_days(
    record_days: int | None, supply_mg: float | None, fills: int, segments: list[Segment]
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
    days = math.ceil(supply_mg * fills / (total_per_day * weekly_fraction) - EPS)
    return min(max(1, days), MAX_SPAN_DAYS)
