"""How records of the same drug overlap in time: renewals, re-prescriptions, supply lines.

Run on parsed records (dates laid out, open ends resolved for the renewals) before the sweep;
see "Dedup" in the docstring of :mod:`cds_service.exposure`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
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
    """Orders (and statements) of the same product, not linked to each other, overlay each
    other in time: on the days a later one covers, the earlier one does not count (a later
    draft: from tomorrow); where the later one has ended and the earlier one still runs, the
    earlier one counts again.

    EHRs leave re-prescriptions of a chronic drug active side by side; summed, 7.5 mg/day
    written four times a year would read as 30 mg/day. A 5-day burst written with the same
    product (or the same ingredient code) replaces the chronic dose for those 5 days and the
    chronic order resumes after it. Records starting on the same day stay concurrent (a 5 mg
    and a 1 mg tablet order for 6 mg/day are different products anyway).
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
        for later, (new_start, new_src) in enumerate(members):
            new = records[new_src]
            span = _span(new, today)
            for old_start, old_src in members[:later]:
                old = records[old_src]
                if span and new_start > old_start and old.cluster != new.cluster and not old.draft:
                    _carve(old, *span)


def _span(new: Record, today: date) -> tuple[date, date] | None:
    """The days ``new`` covers (a draft: from tomorrow on), None when it covers none."""
    starts = [s.start for s in new.segments if s.start is not None]
    ends = [s.end for s in new.segments if s.end is not None]
    if not starts or not ends:
        return None
    first = max(min(starts), today + DAY) if new.draft else min(starts)
    last = max(ends)
    return (first, last) if first <= last else None


def _carve(old: Record, first: date, last: date) -> None:
    """Take the days ``first``..``last`` out of ``old``'s segments (a segment may split)."""
    kept = []
    for seg in old.segments:
        if seg.start is None or seg.end is None or seg.end < first or seg.start > last:
            kept.append(seg)
            continue
        if seg.start < first:
            kept.append(replace(seg, end=first - DAY))
        if seg.end > last:
            kept.append(replace(seg, start=last + DAY))
    old.segments = kept


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
