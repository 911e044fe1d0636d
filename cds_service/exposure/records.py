"""One record per FHIR medication-use resource: status policy, drug, dose segments."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Literal

from cds_service.exposure.dates import Day, to_day
from cds_service.exposure.daymap import EPS, ROUND_DIGITS
from cds_service.exposure.summary import ExposureParams
from cds_service.fhir.models import (
    FHIRResourceModel,
    Medication,
    MedicationAdministration,
    MedicationDispense,
    MedicationRequest,
    MedicationStatement,
)
from cds_service.fhir.references import relative_reference
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
    route_of,
    schedule,
)

Kind = Literal["request", "administration", "dispense", "statement"]
# How a record's status shapes its days (see module docstring, "Status").
Policy = Literal["current", "ended", "paused", "supply", "event", "planned"]
KIND_ORDER: Mapping[str, int] = {"request": 0, "administration": 1, "dispense": 2, "statement": 3}


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


@dataclass
class Record:
    source: str
    kind: Kind
    policy: Policy
    segments: list[Segment]
    evidence: date | None  # latest dated evidence on the record
    links: list[str] = field(default_factory=list)
    priors: list[str] = field(default_factory=list)
    draft: bool = False
    cluster: int = 0


@dataclass(frozen=True)
class Context:
    knowledge: GlucocorticoidKnowledge
    params: ExposureParams
    medications: Mapping[str, Medication]
    tz: tzinfo | None
    today: date


def _refs(items: Iterable[Any] | None) -> list[str]:
    return [relative_reference(str(r.reference)) for r in (items or []) if r and r.reference]


def _earliest(days: Iterable[Day | None]) -> Day | None:
    return next((d for d in days if d is not None), None)


def _dosage_segments(
    dosages: Sequence[Any],
    drug: DrugInfo,
    ctx: Context,
    *,
    start: date | None,
    weak: bool,
    record_days: int | None,
    supply_mg: float | None,
    supply_fills: int,
) -> list[Segment]:
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

    segments: list[Segment] = []
    cursor = start
    ordered_keys = sorted(groups)
    for index, key in enumerate(ordered_keys):
        group_days: int | None = None
        group_segments: list[Segment] = []
        for d in groups[key]:
            sched = schedule(d.timing if d is not None else None)
            dose = dose_per_administration(d, drug) if d is not None else Dose(None, False)
            mg_day = dose.mg * sched.per_day if dose.mg is not None else None
            peq = round(mg_day * factor, ROUND_DIGITS) if mg_day is not None and factor else None
            route = route_of(d.route if d is not None else None, ctx.knowledge, drug)
            seg = Segment(
                drug.ingredient, drug.ingredient_name, None, None, peq, route,
                dose.dose_range, weak, sched.weekdays, sched.alternate, mg_day,
            )  # fmt: skip
            bounds = d.timing.repeat.boundsPeriod if d and d.timing and d.timing.repeat else None
            own_start = to_day(bounds.start, ctx.tz) if bounds is not None else None
            own_end = to_day(bounds.end, ctx.tz, end=True) if bounds is not None else None
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


def source_of(resource: FHIRResourceModel, index: int) -> str:
    rtype = resource.get_resource_type()
    return f"{rtype}/{resource.id}" if resource.id else f"{rtype}/#{index}"


def parse_record(
    resource: FHIRResourceModel, source: str, ctx: Context, *, draft: bool
) -> Record | DrugInfo | None:
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


def _identify(resource: Any, dosage_items: Sequence[Any], ctx: Context) -> DrugInfo | None:
    return identify_drug(
        resource.medicationCodeableConcept,
        resource.medicationReference,
        list(resource.contained or []),
        ctx.medications,
        ctx.knowledge,
        dosage_texts(dosage_items),
    )


def _parse_request(
    mr: MedicationRequest, source: str, ctx: Context, *, draft: bool
) -> Record | DrugInfo | None:
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
    bound_starts: list[Day] = []
    for d in dosages:
        if d.timing and d.timing.repeat and d.timing.repeat.boundsPeriod:
            day = to_day(d.timing.repeat.boundsPeriod.start, tz)
            if day is not None:
                bound_starts.append(day)
    bound_starts.sort(key=lambda b: b.value)
    disp = mr.dispenseRequest
    validity = to_day(disp.validityPeriod.start, tz) if disp and disp.validityPeriod else None
    last_updated = to_day(mr.meta.lastUpdated, tz) if mr.meta else None
    start = _earliest(
        [
            bound_starts[0] if bound_starts else None,
            to_day(mr.authoredOn, tz),
            validity,
            Day(last_updated.value, True) if last_updated else None,
        ]
    )
    if draft:
        # A draft has not been taken yet: it starts today (or at a later explicit start), even
        # when authoredOn or meta.lastUpdated is older (an order drafted earlier, the spec's
        # examples dated 2018).
        explicit = bound_starts[0].value if bound_starts else None
        start = Day(explicit if explicit is not None and explicit > ctx.today else ctx.today, False)
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
    evidence_days = [start, to_day(mr.authoredOn, tz), validity, *bound_starts]
    return Record(
        source, "request", policy, segments, _latest(evidence_days, ctx.today),
        links=_refs(mr.basedOn),
        priors=_refs([mr.priorPrescription] if mr.priorPrescription else []),
        draft=draft,
    )  # fmt: skip


def _latest(days: Iterable[Day | None], today: date) -> date | None:
    values = [d.value for d in days if d is not None and d.value <= today]
    return max(values, default=None)


def _parse_statement(
    ms: MedicationStatement, source: str, ctx: Context
) -> Record | DrugInfo | None:
    policy = _status_policy("statement", str(ms.status))
    if policy is None:
        return None
    dosages = list(ms.dosage or [])
    drug = _identify(ms, dosages, ctx)
    if drug is None or drug.excluded:
        return drug
    tz = ctx.tz
    period = ms.effectivePeriod
    eff_start = to_day(period.start if period else ms.effectiveDateTime, tz)
    eff_end = to_day(period.end, tz, end=True) if period else None
    asserted = to_day(ms.dateAsserted, tz)
    last_updated = to_day(ms.meta.lastUpdated, tz) if ms.meta else None
    start = _earliest(
        [
            eff_start,
            Day(asserted.value, True) if asserted else None,
            Day(last_updated.value, True) if last_updated else None,
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
    return Record(
        source, "statement", policy, segments, evidence,
        links=_refs([*(ms.basedOn or []), *(ms.derivedFrom or []), *(ms.partOf or [])]),
    )  # fmt: skip


def _parse_administration(
    ma: MedicationAdministration, source: str, ctx: Context
) -> Record | DrugInfo | None:
    policy = _status_policy("administration", str(ma.status))
    if policy is None:
        return None
    dosage = ma.dosage
    drug = _identify(ma, [dosage] if dosage else [], ctx)
    if drug is None or drug.excluded:
        return drug
    tz = ctx.tz
    period = ma.effectivePeriod
    start = to_day(period.start if period else ma.effectiveDateTime, tz)
    end = to_day(period.end, tz, end=True) if period else start
    if end is None and start is not None and str(ma.status) == "in-progress":
        end = Day(max(start.value, ctx.today), False)
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
    seg = Segment(
        drug.ingredient, drug.ingredient_name, start.value if start else None,
        end.value if end else None, peq, route, False, start.weak if start else True,
    )  # fmt: skip
    return Record(
        source, "administration", policy, [seg], _latest([start], ctx.today),
        links=_refs([*([ma.request] if ma.request else []), *(ma.partOf or [])]),
    )  # fmt: skip


def _as_datetime(raw: object) -> datetime:
    if isinstance(raw, datetime):
        return raw
    day = to_day(raw, None)
    return datetime.combine(day.value if day else date.min, datetime.min.time())


def _parse_dispense(md: MedicationDispense, source: str, ctx: Context) -> Record | DrugInfo | None:
    policy = _status_policy("dispense", str(md.status))
    if policy is None:
        return None
    dosages = list(md.dosageInstruction or [])
    drug = _identify(md, dosages, ctx)
    if drug is None or drug.excluded:
        return drug
    tz = ctx.tz
    handed = to_day(md.whenHandedOver, tz)
    prepared = to_day(md.whenPrepared, tz)
    last_updated = to_day(md.meta.lastUpdated, tz) if md.meta else None
    start = _earliest(
        [
            handed,
            Day(prepared.value, True) if prepared else None,
            Day(last_updated.value, True) if last_updated else None,
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
            Segment(drug.ingredient, drug.ingredient_name, first, last, peq, route, False,
                     start.weak if start else True)
        ]  # fmt: skip
    return Record(
        source, "dispense", policy, segments, _latest([handed, prepared], ctx.today),
        links=_refs(md.authorizingPrescription),
    )  # fmt: skip
