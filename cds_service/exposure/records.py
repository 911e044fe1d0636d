"""One record per FHIR medication-use resource: status policy, drug, dose segments."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from cds_service.exposure.context import Context
from cds_service.exposure.dates import Day, to_day
from cds_service.exposure.daymap import ROUND_DIGITS
from cds_service.exposure.measurements import scale_dose
from cds_service.exposure.segments import Segment, dosage_segments
from cds_service.fhir.references import relative_reference
from cds_service.fhir.views import (
    Dosage,
    MedicationAdministration,
    MedicationAdministrationDosage,
    MedicationDispense,
    MedicationRequest,
    MedicationStatement,
    Meta,
    Period,
    Reference,
    Resource,
)
from cds_service.medications import (
    DoseReason,
    DrugInfo,
    Route,
    Strength,
    amount_dose,
    amount_mg,
    dosage_route_texts,
    duration_days,
    identify_drug,
    route_of,
)

Kind = Literal["request", "administration", "dispense", "statement"]
# How a record's status shapes its days (see module docstring, "Status").
Policy = Literal["current", "ended", "paused", "supply", "event", "planned"]
KIND_ORDER: Mapping[str, int] = {"request": 0, "administration": 1, "dispense": 2, "statement": 3}
# Ingredient, strength and pack size of the product a record names (None for both when only
# the ingredient is coded): orders (statements) of the same product replace each other in time,
# dispenses of the same product are one supply line.
ProductKey = tuple[str, Strength | None, int | None]
MedicationUse = (
    MedicationRequest | MedicationStatement | MedicationAdministration | MedicationDispense
)


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
    ordered_on: date | None = None  # MedicationRequest.authoredOn
    updated: date | None = None  # meta.lastUpdated: the likely day an order was put on hold
    product: ProductKey | None = None  # same product: a later record replaces an earlier one


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


def source_of(resource: Resource, index: int) -> str:
    rtype = resource.get_resource_type()
    return f"{rtype}/{resource.id}" if resource.id else f"{rtype}/#{index}"


def parse_record(
    resource: Resource, source: str, ctx: Context, *, draft: bool
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


# ---------------------------------------------------------------------------- shared steps


def _identify(
    resource: MedicationUse,
    dosage_items: Sequence[Dosage | MedicationAdministrationDosage],
    ctx: Context,
) -> DrugInfo | None:
    return identify_drug(
        resource.medicationCodeableConcept,
        resource.medicationReference,
        list(resource.contained or []),
        ctx.medications,
        ctx.knowledge,
        dosage_route_texts(dosage_items),
    )


def _refs(items: Iterable[Reference | None] | None) -> list[str]:
    return [relative_reference(str(r.reference)) for r in (items or []) if r and r.reference]


def _earliest(days: Iterable[Day | None]) -> Day | None:
    return next((d for d in days if d is not None), None)


def _latest(days: Iterable[Day | None], today: date) -> date | None:
    values = [d.value for d in days if d is not None and d.value <= today]
    return max(values, default=None)


def _weak(day: Day | None) -> Day | None:
    """The same day as weak evidence (dateAsserted, whenPrepared, meta.lastUpdated)."""
    return Day(day.value, True) if day else None


def _last_updated(meta: Meta | None, ctx: Context) -> Day | None:
    return to_day(meta.lastUpdated, ctx.tz) if meta else None


def _product(drug: DrugInfo) -> ProductKey:
    return (drug.ingredient, drug.strength, drug.pack_units)


# ----------------------------------------------------------------------- MedicationRequest


def _parse_request(
    mr: MedicationRequest, source: str, ctx: Context, *, draft: bool
) -> Record | DrugInfo | None:
    policy = _request_policy(mr, draft=draft)
    if policy is None:
        return None
    dosages = list(mr.dosageInstruction or [])
    drug = _identify(mr, dosages, ctx)
    if drug is None or drug.excluded:
        return drug
    bound_starts = _bound_starts(dosages, ctx)
    disp = mr.dispenseRequest
    validity = to_day(disp.validityPeriod.start, ctx.tz) if disp and disp.validityPeriod else None
    validity_end = (
        to_day(disp.validityPeriod.end, ctx.tz, end=True) if disp and disp.validityPeriod else None
    )
    authored = to_day(mr.authoredOn, ctx.tz)
    updated = _last_updated(mr.meta, ctx)
    start: Day | None
    if draft:
        start = _draft_start(bound_starts, ctx.today)
    else:
        first_bound = bound_starts[0] if bound_starts else None
        start = _earliest([first_bound, authored, validity, _weak(updated)])
    record_days, fills, supply_mg = None, 1, None
    if disp is not None:
        record_days = duration_days(disp.expectedSupplyDuration)
        fills = 1 + int(disp.numberOfRepeatsAllowed or 0)
        supply_mg = amount_mg(disp.quantity, drug)
    segments = dosage_segments(
        dosages, drug, ctx, start, record_days=record_days, supply_mg=supply_mg,
        supply_fills=fills, record_end=validity_end.value if validity_end else None,
    )  # fmt: skip
    evidence = _latest([start, authored, validity, *bound_starts], ctx.today)
    return Record(
        source, "request", policy, segments, evidence,
        links=_refs(mr.basedOn), priors=_refs([mr.priorPrescription]), draft=draft,
        ordered_on=authored.value if authored and not authored.weak else None,
        updated=updated.value if updated else None, product=_product(drug),
    )  # fmt: skip


def _request_policy(mr: MedicationRequest, *, draft: bool) -> Policy | None:
    """Drafts are planned exposure; proposals, options and doNotPerform orders count never."""
    status = str(mr.status)
    if draft:
        policy: Policy | None = "planned" if status in ("draft", "active") else None
    elif str(mr.intent) in ("proposal", "option"):
        policy = None
    else:
        policy = _REQUEST_POLICY.get(status)
    return None if mr.doNotPerform else policy


def _bound_starts(dosages: Sequence[Dosage], ctx: Context) -> list[Day]:
    """The dosages' own boundsPeriod starts, earliest first."""
    starts: list[Day] = []
    for d in dosages:
        if d.timing and d.timing.repeat and d.timing.repeat.boundsPeriod:
            day = to_day(d.timing.repeat.boundsPeriod.start, ctx.tz)
            if day is not None:
                starts.append(day)
    starts.sort(key=lambda b: b.value)
    return starts


def _draft_start(bound_starts: list[Day], today: date) -> Day:
    """A draft has not been taken yet: it starts today (or at a later explicit start), even
    when authoredOn or meta.lastUpdated is older (an order drafted earlier, the spec's
    examples dated 2018)."""
    explicit = bound_starts[0].value if bound_starts else None
    return Day(explicit if explicit is not None and explicit > today else today, False)


# --------------------------------------------------------------------- MedicationStatement


def _parse_statement(
    ms: MedicationStatement, source: str, ctx: Context
) -> Record | DrugInfo | None:
    policy = _STATEMENT_POLICY.get(str(ms.status))
    if policy is None:
        return None
    dosages = list(ms.dosage or [])
    drug = _identify(ms, dosages, ctx)
    if drug is None or drug.excluded:
        return drug
    period = ms.effectivePeriod
    eff_start = to_day(period.start if period else ms.effectiveDateTime, ctx.tz)
    eff_end = to_day(period.end, ctx.tz, end=True) if period else None
    asserted = to_day(ms.dateAsserted, ctx.tz)
    updated = _last_updated(ms.meta, ctx)
    start = _earliest([eff_start, _weak(asserted), _weak(updated)])
    segments = dosage_segments(
        dosages, drug, ctx, start, record_days=None, supply_mg=None, supply_fills=1
    )
    if eff_end is not None:
        for seg in segments:
            seg.end = eff_end.value if seg.end is None else min(seg.end, eff_end.value)
    evidence = _latest([eff_start, eff_end, asserted], ctx.today)
    return Record(
        source, "statement", policy, segments, evidence,
        links=_refs([*(ms.basedOn or []), *(ms.derivedFrom or []), *(ms.partOf or [])]),
        updated=updated.value if updated else None, product=_product(drug),
    )  # fmt: skip


# ---------------------------------------------------------------- MedicationAdministration


def _parse_administration(
    ma: MedicationAdministration, source: str, ctx: Context
) -> Record | DrugInfo | None:
    if str(ma.status) not in _ADMINISTRATION_STATUSES:
        return None
    dosage = ma.dosage
    drug = _identify(ma, [dosage] if dosage else [], ctx)
    if drug is None or drug.excluded:
        return drug
    start, end, span = _administration_days(ma, ctx)
    on = start.value if start else ctx.today
    dose = scale_dose(amount_dose(dosage.dose if dosage else None, drug), ctx.body, ctx.windows, on, ctx.today)  # fmt: skip
    total = ctx.knowledge.peq_mg(drug.ingredient, dose.mg)
    peq = round(total / span, ROUND_DIGITS) if total is not None else None
    route = route_of(dosage.route if dosage else None, ctx.knowledge, drug)
    reason = dose.reason if dose.mg is None else None if peq is not None else "no-peq-factor"
    seg = Segment(
        drug.ingredient, drug.ingredient_name, start.value if start else None,
        end.value if end else None, peq, route, False, start.weak if start else True,
        source=dose.source, reason=reason,
    )  # fmt: skip
    return Record(
        source, "administration", "event", [seg], _latest([start], ctx.today),
        links=_refs([ma.request, *(ma.partOf or [])]),
    )  # fmt: skip


def _administration_days(
    ma: MedicationAdministration, ctx: Context
) -> tuple[Day | None, Day | None, int]:
    """First and last day of an administration, and over how many days its dose is spread."""
    period = ma.effectivePeriod
    start = to_day(period.start if period else ma.effectiveDateTime, ctx.tz)
    end = to_day(period.end, ctx.tz, end=True) if period else start
    if end is None and start is not None and str(ma.status) == "in-progress":
        end = Day(max(start.value, ctx.today), False)
    span = (end.value - start.value).days + 1 if start and end and end.value > start.value else 1
    # An infusion crossing midnight is one administration: the dose goes to its start day.
    if period is not None and span > 1 and _within_a_day(period):
        span, end = 1, start
    return start, end, span


def _within_a_day(period: Period) -> bool:
    if period.end is None or period.start is None:
        return False
    hours = (_as_datetime(period.end) - _as_datetime(period.start)).total_seconds() / 3600
    return hours <= 24


def _as_datetime(raw: object) -> datetime:
    if isinstance(raw, datetime):
        return raw
    day = to_day(raw, None)
    return datetime.combine(day.value if day else date.min, datetime.min.time())


# ---------------------------------------------------------------------- MedicationDispense


def _parse_dispense(md: MedicationDispense, source: str, ctx: Context) -> Record | DrugInfo | None:
    if str(md.status) not in _DISPENSE_STATUSES:
        return None
    dosages = list(md.dosageInstruction or [])
    drug = _identify(md, dosages, ctx)
    if drug is None or drug.excluded:
        return drug
    handed = to_day(md.whenHandedOver, ctx.tz)
    prepared = to_day(md.whenPrepared, ctx.tz)
    start = _earliest([handed, _weak(prepared), _weak(_last_updated(md.meta, ctx))])
    days = duration_days(md.daysSupply)
    supply_mg = amount_mg(md.quantity, drug)
    if dosages:
        segments = dosage_segments(
            dosages, drug, ctx, start, record_days=days, supply_mg=supply_mg, supply_fills=1
        )
    else:
        segments = [_supply_segment(drug, ctx, start, days, supply_mg)]
    return Record(
        source, "dispense", "supply", segments, _latest([handed, prepared], ctx.today),
        links=_refs(md.authorizingPrescription), product=_product(drug),
    )  # fmt: skip


def _supply_segment(
    drug: DrugInfo, ctx: Context, start: Day | None, days: int | None, supply_mg: float | None
) -> Segment:
    """No SIG: the dispensed amount spread evenly over the days supplied."""
    total = ctx.knowledge.peq_mg(drug.ingredient, supply_mg)
    peq = round(total / days, ROUND_DIGITS) if days and total is not None else None
    first = start.value if start else None
    last = first + timedelta(days=days - 1) if first and days else None
    route: Route = "oral" if drug.oral_form else "unknown-systemic"
    weak = start.weak if start else True
    reason: DoseReason | None = None
    if peq is None:
        reason = "no-peq-factor" if supply_mg is not None and days else "supply-unknown"
    return Segment(
        drug.ingredient, drug.ingredient_name, first, last, peq, route, False, weak,
        source="dispensed-supply", reason=reason,
    )  # fmt: skip
