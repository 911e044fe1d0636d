"""Records to courses and day maps: clustering, open ends, renewals, the sweep."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise

from cds_service.exposure.context import Context
from cds_service.exposure.dates import DAY
from cds_service.exposure.daymap import EPS, ROUND_DIGITS, DayMap, DaySources
from cds_service.exposure.measurements import read_measurements
from cds_service.exposure.overlaps import apply_renewals, apply_replacements, chain_supplies
from cds_service.exposure.records import KIND_ORDER, Kind, Record, parse_record, source_of
from cds_service.exposure.segments import Segment
from cds_service.exposure.summary import Course, ExposureParams, ExposureSummary
from cds_service.fhir.views import (
    Medication,
    MedicationRequest,
    Resource,
)
from cds_service.medications import (
    DrugInfo,
    GlucocorticoidKnowledge,
)


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


def _resolve_dates(record: Record, ctx: Context) -> None:
    """Apply the status policy to open ends and missing starts (module docstring)."""
    today = ctx.today
    for seg in record.segments:
        if seg.start is None:
            if record.policy in ("current", "planned"):
                seg.start, seg.end, seg.undated = today, today, record.policy == "current"
                # Today is where it is counted, not when it began: how long it has been
                # taken is unknown (a draft starts today, so its start is known).
                seg.start_unknown = record.policy == "current"
            continue
        if seg.end is None:
            if record.policy == "current":
                # The record says nothing about an end: taken through today, however old.
                seg.end = max(today, seg.start)
            elif record.policy == "paused":
                seg.end = _hold_day(record, seg.start, today)
            elif record.policy == "ended":
                seg.end = max(seg.start, min(record.evidence or seg.start, today))
            else:
                seg.end = seg.start
        if record.policy == "ended":
            seg.end = min(seg.end, today)
        elif record.policy == "paused":
            seg.end = min(seg.end, today - DAY)


def _hold_day(record: Record, start: date, today: date) -> date:
    """The last day an on-hold record was taken: R4 has no status date, so the day it was last
    updated (the hold was the likely update), else yesterday."""
    updated = record.updated
    if updated is not None and start <= updated < today:
        return updated
    return today - DAY


def _days(seg: Segment, lo: date, hi: date) -> Iterator[date]:
    if seg.start is None or seg.end is None:  # unresolved segments were dropped already
        return
    day, last = max(seg.start, lo), min(seg.end, hi)
    while day <= last:
        if seg.weekdays is None or day.weekday() in seg.weekdays:
            yield day
        day += DAY


def summarize_exposure(
    resources: Sequence[Resource],
    medications: Mapping[str, Medication],
    knowledge: GlucocorticoidKnowledge,
    params: ExposureParams,
    now: datetime,
    draft_orders: Sequence[MedicationRequest] = (),
    observations: Sequence[Resource] = (),
) -> ExposureSummary:
    """Systemic glucocorticoid exposure as of ``now`` (see the module docstring for policies).

    ``resources``: MedicationRequest/Statement/Administration/Dispense (others are ignored).
    ``medications``: "Medication/<id>" -> Medication; contained ones are read from the record.
    ``now`` must be timezone-aware (ValueError otherwise); ``today`` is its local date.
    ``draft_orders``: CDS Hooks draftOrders, planned exposure only. ``observations``: the
    record's Observations; body weights and heights among them scale weight-based doses
    (others are ignored). All mg are PEQ mg.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    body = read_measurements(observations, knowledge.body_weight, knowledge.body_height, now.tzinfo)
    ctx = Context(knowledge, params, medications, now.tzinfo, now.date(), body)
    prepared = _prepare(resources, draft_orders, ctx)
    return _summarize(prepared, ctx)


@dataclass
class _Prepared:
    """Records with resolved dates, their clusters' anchor kinds, and what was set aside."""

    records: dict[str, Record]
    anchors: Mapping[int, str]
    excluded: set[str]
    unknown: set[str]


def _prepare(
    resources: Sequence[Resource],
    draft_orders: Sequence[MedicationRequest],
    ctx: Context,
) -> _Prepared:
    """Parse, cluster (dedup), resolve open dates and apply renewals."""
    records, excluded = _parse_all(resources, draft_orders, ctx)
    anchors = _cluster(records)
    chain_supplies(records, anchors)
    unknown = _resolve_all(records, ctx)
    apply_renewals(records, ctx.today)
    apply_replacements(records, ctx.today)
    return _Prepared(records, anchors, excluded, unknown)


def _parse_all(
    resources: Sequence[Resource],
    draft_orders: Sequence[MedicationRequest],
    ctx: Context,
) -> tuple[dict[str, Record], set[str]]:
    """Records by source (the first of a repeated source wins), and the excluded sources."""
    records: dict[str, Record] = {}
    excluded: set[str] = set()
    inputs = [(r, False) for r in resources] + [(r, True) for r in draft_orders]
    for index, (resource, is_draft) in enumerate(inputs):
        source = source_of(resource, index)
        parsed = parse_record(resource, source, ctx, draft=is_draft)
        if isinstance(parsed, DrugInfo):
            excluded.add(source)
        elif parsed is not None and source not in records:
            records[source] = parsed
    return records, excluded


def _cluster(records: Mapping[str, Record]) -> dict[int, Kind]:
    """Number the clusters of linked records (``Record.cluster``); return each cluster's anchor
    kind (the first in ``KIND_ORDER``)."""
    clusters = _Clusters(records)
    for rec in records.values():
        for ref in (*rec.links, *rec.priors):
            if ref in records:
                clusters.union(rec.source, ref)
    first_of: dict[tuple[object, ...], str] = {}
    for src in sorted(records):
        key = _duplicate_key(records[src])
        if key is not None:
            clusters.union(first_of.setdefault(key, src), src)
    roots = sorted({clusters.find(s) for s in records})
    cluster_ids = {root: i for i, root in enumerate(roots)}
    members: dict[int, list[Record]] = {}
    for src in sorted(records):
        rec = records[src]
        rec.cluster = cluster_ids[clusters.find(src)]
        members.setdefault(rec.cluster, []).append(rec)
    return {
        cid: min((r.kind for r in recs), key=KIND_ORDER.__getitem__)
        for cid, recs in members.items()
    }


def _duplicate_key(rec: Record) -> tuple[object, ...] | None:
    """What makes two orders (or two statements) exact duplicates: same status policy and the
    same segments (ingredient, daily dose, dates, route, schedule). Two such records are one
    entry made twice, not a doubled dose: in one cluster they count once (a different dose or
    different dates stay summed). Dispenses and administrations are never duplicates here: two
    of them are two supplies or two doses."""
    if rec.kind not in ("request", "statement") or rec.draft or not rec.segments:
        return None
    segments = [
        (s.ingredient, s.start, s.end, s.peq, s.route, s.weekdays, s.alternate, s.dose_range)
        for s in rec.segments
    ]
    paused_on = rec.updated if rec.policy == "paused" else None
    return (rec.kind, rec.policy, rec.evidence, paused_on, *segments)


def _resolve_all(records: Mapping[str, Record], ctx: Context) -> set[str]:
    """Resolve every record's dates; drop the segments that stay undated and return the
    sources that lost one (or had none)."""
    unknown: set[str] = set()
    for rec in records.values():
        _resolve_dates(rec, ctx)
        if any(s.start is None for s in rec.segments) or not rec.segments:
            unknown.add(rec.source)
            rec.segments = [s for s in rec.segments if s.start is not None]
    return unknown


def _summarize(prepared: _Prepared, ctx: Context) -> ExposureSummary:
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
    evidence = _evidence_by_ingredient(records, today)
    order = 0
    for src in sorted(records):
        rec = records[src]
        for seg in rec.segments:
            courses.extend(_courses(rec, seg, window_start, today, evidence, params))
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
        day_sources=DaySources(daily),
    )


# A segment's days in one window, as an interval of day ordinals: (first, last, order, source,
# ingredient, PEQ mg, cluster, kind). ``order`` follows (source, segment) as the per-day loop did.
_Piece = tuple[int, int, int, str, str, float, int, str]


def _add_pieces(
    out: list[_Piece], rec: Record, seg: Segment, order: int, first: int, last: int
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


def _timeline(pieces: list[_Piece], anchors: Mapping[int, str], *, with_sources: bool) -> DayMap:
    """Sweep over interval boundaries: per-day totals (dedup policy) as runs of equal days.

    Between two consecutive boundaries the same pieces cover every day, so each stretch is
    combined once, exactly as the per-day computation would combine each of its days.
    """
    starts: list[int] = []
    ends: list[int] = []
    values: list[float] = []
    sources: list[frozenset[str]] = []
    if not pieces:
        return DayMap(starts, ends, values, sources if with_sources else None)
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
    return DayMap(starts, ends, values, sources if with_sources else None)


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


def _evidence_by_ingredient(records: Mapping[str, Record], today: date) -> dict[str, date]:
    """Latest dated evidence of use per ingredient (drafts aside), today at the latest."""
    latest: dict[str, date] = {}
    for rec in records.values():
        if rec.draft or rec.evidence is None:
            continue
        day = min(rec.evidence, today)
        for ingredient in {s.ingredient for s in rec.segments}:
            latest[ingredient] = max(latest.get(ingredient, day), day)
    return latest


def _courses(
    rec: Record,
    seg: Segment,
    window_start: date,
    today: date,
    evidence: Mapping[str, date],
    params: ExposureParams,
) -> list[Course]:
    """Public Course objects for a segment, split into actual (to today) and planned parts."""
    if seg.start is None or seg.end is None:  # unresolved segments were dropped already
        return []
    last = evidence.get(seg.ingredient)
    unconfirmed = (
        rec.policy == "current"
        and not rec.draft
        and seg.start <= today <= seg.end
        and (last is None or (today - last).days > params.unconfirmed_after_days)
    )
    source = seg.source if seg.peq is not None else "unknown"
    reason = None if seg.peq is not None else seg.reason or "no-dose"
    out: list[Course] = []
    if rec.policy != "planned" and seg.start <= today and seg.end >= window_start:
        out.append(
            Course(
                rec.source, seg.ingredient, seg.name, seg.start, min(seg.end, today), seg.peq,
                seg.route, False, seg.dose_range, seg.undated, seg.alternate, rec.ordered_on,
                last, unconfirmed, source, reason, seg.start_unknown,
            )
        )  # fmt: skip
    future_start = max(seg.start, today if rec.policy == "planned" else today + DAY)
    if rec.policy in ("current", "planned", "supply") and seg.end >= future_start:
        out.append(
            Course(
                rec.source, seg.ingredient, seg.name, future_start, seg.end, seg.peq,
                seg.route, True, seg.dose_range, seg.undated, seg.alternate, rec.ordered_on,
                last, unconfirmed, source, reason, seg.start_unknown,
            )
        )  # fmt: skip
    return out


def _pulses(
    iv: Mapping[tuple[str, str, date], float], records: Mapping[str, Record], threshold: float
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
        if current is None or value > current[0] + EPS:
            best[key] = (value, src)
    return tuple(
        sorted(
            (day, round(value, ROUND_DIGITS), src)
            for (day, _cluster), (value, src) in best.items()
            if value >= threshold - EPS
        )
    )
