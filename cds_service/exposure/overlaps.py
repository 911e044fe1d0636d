"""How records of the same drug overlap in time: renewals, re-prescriptions, supply lines.

Run on parsed records (dates laid out, open ends resolved for the renewals) before the sweep;
see "Dedup" in the docstring of :mod:`cds_service.exposure`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from datetime import date

from cds_service.exposure.dates import DAY
from cds_service.exposure.records import Kind, Record


def chain_supplies(records: Mapping[str, Record], anchors: Mapping[int, Kind]) -> None:
    """Dispenses of one supply line are laid end to end: a refill picked up before the last
    one ran out starts the day after it runs out, so overlapping supplies continue one course
    and never add up to a double daily dose.

    A supply line is the dispenses of one product for one prescription (cluster), or of one
    product with no prescription on the record. Dispenses of different products (a 5 mg and a
    1 mg tablet for 6 mg/day) or for different prescriptions are not chained. A dispense
    whose end is unknown (no days' supply, no amount per day) is left where it is.
    """
    for members in _supply_lines(records, anchors).values():
        members.sort()
        runs_out: date | None = None
        for first, src in members:
            segments = records[src].segments
            shift = runs_out + DAY - first if runs_out is not None and first <= runs_out else None
            for seg in segments:
                if shift is not None and seg.start is not None and seg.end is not None:
                    seg.start, seg.end = seg.start + shift, seg.end + shift
            last = max(s.end for s in segments if s.end is not None)
            runs_out = last if runs_out is None else max(runs_out, last)


def _supply_lines(
    records: Mapping[str, Record], anchors: Mapping[int, Kind]
) -> dict[tuple[object, int], list[tuple[date, str]]]:
    """(first day, source) of the dated dispenses of each supply line."""
    lines: dict[tuple[object, int], list[tuple[date, str]]] = {}
    for src in sorted(records):
        rec = records[src]
        if rec.kind != "dispense" or rec.product is None or rec.draft or not rec.segments:
            continue
        if any(s.start is None or s.end is None for s in rec.segments):
            continue
        cluster = rec.cluster if anchors[rec.cluster] == "request" else -1
        first = min(s.start for s in rec.segments if s.start is not None)
        lines.setdefault((rec.product, cluster), []).append((first, src))
    return lines


def apply_renewals(records: Mapping[str, Record], today: date) -> None:
    """A renewal ends the order it replaces the day before it starts (drafts: after today)."""
    for rec in records.values():
        for ref in rec.priors:
            old = records.get(ref)
            if old is not None and not old.draft:
                _replace(old, rec, today)


def apply_replacements(records: Mapping[str, Record], today: date) -> None:
    """Orders (and statements) of the same product, not linked by a renewal, overlay each
    other in time: on the days a later-starting one covers, an earlier one does not count (a
    later draft: from tomorrow); where the later one has ended and the earlier one still runs,
    the earlier one counts again.

    EHRs leave re-prescriptions of a chronic drug active side by side; summed, 7.5 mg/day
    written four times a year would read as 30 mg/day. A 5-day burst written with the same
    product (or the same ingredient code) replaces the chronic dose for those 5 days and the
    chronic order resumes after it. Records starting on the same day stay concurrent (a 5 mg
    and a 1 mg tablet order for 6 mg/day are different products anyway).

    Each group is walked from the latest start back, carving the union of the later records'
    days out of the earlier ones: about linear in the records of a product, however many.
    """
    groups: dict[tuple[str, object], list[tuple[date, str]]] = {}
    for src in sorted(records):
        rec = records[src]
        starts = [s.start for s in rec.segments if s.start is not None]
        if rec.product is None or not starts or rec.kind not in ("request", "statement"):
            continue
        groups.setdefault((rec.kind, rec.product), []).append((min(starts), src))
    for members in groups.values():
        members.sort()
        later: list[tuple[date, date]] = []  # disjoint, sorted: days of records starting later
        end = len(members)
        while end > 0:
            begin = end
            while begin > 0 and members[begin - 1][0] == members[end - 1][0]:
                begin -= 1
            batch = [records[src] for _, src in members[begin:end]]
            for rec in batch:
                if later and not rec.draft:
                    _carve(rec, later)
            for rec in batch:
                span = _span(rec, today)
                if span is not None:
                    _add_span(later, span)
            end = begin


def _span(rec: Record, today: date) -> tuple[date, date] | None:
    """The days ``rec`` covers (a draft: from tomorrow on), None when it covers none."""
    starts = [s.start for s in rec.segments if s.start is not None]
    ends = [s.end for s in rec.segments if s.end is not None]
    if not starts or not ends:
        return None
    first = max(min(starts), today + DAY) if rec.draft else min(starts)
    last = max(ends)
    return (first, last) if first <= last else None


def _add_span(spans: list[tuple[date, date]], span: tuple[date, date]) -> None:
    """Merge ``span`` into the disjoint, sorted ``spans`` (adjacent days join)."""
    first, last = span
    at = bisect_left(spans, (first, first))
    if at > 0 and spans[at - 1][1] >= first - DAY:
        at -= 1
        first = spans[at][0]
    stop = at
    while stop < len(spans) and spans[stop][0] <= last + DAY:
        last = max(last, spans[stop][1])
        stop += 1
    spans[at:stop] = [(first, last)]


def _carve(rec: Record, spans: list[tuple[date, date]]) -> None:
    """Take the days of ``spans`` out of ``rec``'s dated segments (a segment may split)."""
    kept = []
    for seg in rec.segments:
        if seg.start is None or seg.end is None:
            kept.append(seg)
            continue
        cursor = seg.start
        at = max(0, bisect_left(spans, (seg.start, seg.start)) - 1)
        while at < len(spans) and spans[at][0] <= seg.end:
            first, last = spans[at]
            if last >= cursor and first > cursor:
                kept.append(seg.on_days(cursor, min(first - DAY, seg.end)))
            cursor = max(cursor, last + DAY)
            at += 1
        if cursor <= seg.end:
            kept.append(seg.on_days(cursor, seg.end))
    rec.segments = kept


def _replace(old: Record, new: Record, today: date) -> None:
    """End ``old`` the day before ``new`` starts (a draft ``new``: not before today)."""
    starts = [s.start for s in new.segments if s.start is not None]
    if not starts:
        return
    cut = min(starts) - DAY
    if new.draft:
        cut = max(cut, today)
    kept = []
    for seg in old.segments:
        if seg.start is not None and seg.start > cut:
            continue
        if seg.end is not None:
            seg.end = min(seg.end, cut)
        kept.append(seg)
    old.segments = kept
