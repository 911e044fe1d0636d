"""Patient facts the rules read: value-set hits over the record, plus glucocorticoid exposure.

Pure: no I/O, ``now`` passed in. Each hit keeps the relative reference of the resource that
produced it, so every card can say which resources triggered it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from cds_service.exposure import ExposureSummary
from cds_service.fhir.extract import age_on, all_codings, codings, reference_of, to_date
from cds_service.fhir.models import (
    FHIRResourceModel,
    Medication,
    MedicationRequest,
)
from cds_service.fhir.references import relative_reference
from cds_service.record import MEDICATION_USE_TYPES, PatientRecord
from cds_service.valuesets import Coding, Match, ValueSet

INACTIVE_CONDITION = frozenset({"inactive", "resolved", "remission"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
EXCLUDED_STATUS = frozenset(
    {"entered-in-error", "cancelled", "not-done", "not-taken", "revoked", "unknown-error"}
)
ACTIVE_MEDICATION_STATUS = frozenset({"active", "intended", "draft"})
DONE_OR_ORDERED_STATUS = frozenset({"active", "completed", "draft", "on-hold"})


@dataclass(frozen=True)
class Hit:
    """One resource that matched one value-set role."""

    ref: str
    role: str
    day: date | None
    active: bool
    properties: Mapping[str, Any] = field(default_factory=dict)
    value: float | None = None  # Observation value (e.g. a T-score)
    resource_type: str = ""


@dataclass
class ClinicalFacts:
    today: date
    age: int | None
    exposure: ExposureSummary
    hits: dict[str, list[Hit]] = field(default_factory=dict)
    # Derived values several rules share (e.g. the glucocorticoid status), computed once per call.
    derived: dict[str, Any] = field(default_factory=dict)

    def of(self, role: str, *, active_only: bool = False) -> list[Hit]:
        found = self.hits.get(role, [])
        return [h for h in found if h.active] if active_only else list(found)

    def refs(self, role: str, *, active_only: bool = False) -> tuple[str, ...]:
        return tuple(sorted({h.ref for h in self.of(role, active_only=active_only)}))

    def latest(self, role: str) -> Hit | None:
        dated = [h for h in self.of(role) if h.day is not None]
        return max(dated, key=lambda h: h.day or date.min) if dated else None

    def within(self, role: str, days: float) -> list[Hit]:
        since = self.today - timedelta(days=days)
        return [h for h in self.of(role) if h.day is not None and h.day >= since]


def _first_date(*values: Any) -> date | None:
    for value in values:
        day = to_date(value)
        if day is not None:
            return day
    return None


def _period_start(period: Any) -> Any:
    return getattr(period, "start", None) if period is not None else None


def _condition(resource: Any) -> tuple[bool, bool, date | None]:
    """(usable, active, day) for a Condition."""
    verification, _ = codings(resource.verificationStatus)
    if any(c.code in EXCLUDED_VERIFICATION for c in verification):
        return False, False, None
    clinical, _ = codings(resource.clinicalStatus)
    active = not any(c.code in INACTIVE_CONDITION for c in clinical)
    day = _first_date(
        resource.onsetDateTime, _period_start(resource.onsetPeriod), resource.recordedDate
    )
    return True, active, day


def _medication_concepts(resource: Any, medications: Mapping[str, Medication]) -> list[Any]:
    concepts: list[Any] = [resource.medicationCodeableConcept]
    ref = resource.medicationReference
    target = getattr(ref, "reference", None) if ref is not None else None
    medication: Any = None
    if isinstance(target, str) and target.startswith("#"):
        medication = next(
            (c for c in (resource.contained or ()) if getattr(c, "id", None) == target[1:]), None
        )
    elif isinstance(target, str):
        medication = medications.get(relative_reference(target))
    if medication is not None:
        concepts.append(getattr(medication, "code", None))
        for ingredient in getattr(medication, "ingredient", None) or ():
            concepts.append(getattr(ingredient, "itemCodeableConcept", None))
    return concepts


def _medication_use(
    resource: Any, today: date, recent_days: float
) -> tuple[bool, bool, date | None]:
    """(usable, active, day) for a medication-use resource."""
    status = getattr(resource, "status", None)
    if status in EXCLUDED_STATUS:
        return False, False, None
    rtype = resource.get_resource_type()
    if rtype == "MedicationRequest":
        day = _first_date(resource.authoredOn)
        return True, status in ACTIVE_MEDICATION_STATUS, day
    if rtype == "MedicationStatement":
        day = _first_date(
            resource.effectiveDateTime,
            _period_start(resource.effectivePeriod),
            resource.dateAsserted,
        )
        end = (
            to_date(getattr(resource.effectivePeriod, "end", None))
            if resource.effectivePeriod
            else None
        )
        active = status in ACTIVE_MEDICATION_STATUS and (end is None or end >= today)
        return True, active, day
    if rtype == "MedicationAdministration":
        day = _first_date(resource.effectiveDateTime, _period_start(resource.effectivePeriod))
    else:
        day = _first_date(resource.whenHandedOver, resource.whenPrepared)
    active = day is not None and (today - day).days <= recent_days
    return True, active, day


def _observation_values(resource: Any, vs: ValueSet) -> list[tuple[Match, float | None]]:
    found: list[tuple[Match, float | None]] = []
    cs, text = codings(resource.code)
    match = vs.match(cs, text)
    if match is not None:
        found.append((match, _quantity(resource.valueQuantity)))
    for component in resource.component or ():
        ccs, ctext = codings(component.code)
        cmatch = vs.match(ccs, ctext)
        if cmatch is not None:
            found.append((cmatch, _quantity(component.valueQuantity)))
    return found


def _quantity(quantity: Any) -> float | None:
    value = getattr(quantity, "value", None) if quantity is not None else None
    return float(value) if value is not None else None


def _resource_hits(
    resource: FHIRResourceModel,
    roles: Sequence[tuple[str, ValueSet]],
    medications: Mapping[str, Medication],
    today: date,
    recent_days: float,
) -> Iterable[Hit]:
    rtype = resource.get_resource_type()
    ref = reference_of(resource)
    r: Any = resource
    value_matches: list[tuple[str, Match, float | None]] = []
    if rtype == "Condition":
        usable, active, day = _condition(r)
        concepts = [r.code]
    elif rtype in MEDICATION_USE_TYPES:
        usable, active, day = _medication_use(r, today, recent_days)
        concepts = _medication_concepts(r, medications)
    elif rtype == "Observation":
        usable = r.status not in EXCLUDED_STATUS
        active = True
        day = _first_date(r.effectiveDateTime, _period_start(r.effectivePeriod), r.issued)
        if usable:
            for role, vs in roles:
                value_matches.extend((role, m, v) for m, v in _observation_values(r, vs))
        concepts = []
    elif rtype == "Procedure":
        usable = r.status not in EXCLUDED_STATUS and r.status != "not-done"
        active = True
        day = _first_date(r.performedDateTime, _period_start(r.performedPeriod))
        concepts = [r.code]
    elif rtype == "Immunization":
        usable = r.status == "completed"
        active = True
        day = _first_date(r.occurrenceDateTime, r.recorded)
        concepts = [r.vaccineCode]
    elif rtype == "ServiceRequest":
        usable = r.status in DONE_OR_ORDERED_STATUS
        active = True
        day = _first_date(r.authoredOn, r.occurrenceDateTime)
        concepts = [r.code]
    elif rtype == "DiagnosticReport":
        usable = r.status not in EXCLUDED_STATUS
        active = True
        day = _first_date(r.effectiveDateTime, _period_start(r.effectivePeriod), r.issued)
        concepts = [r.code]
    elif rtype == "AllergyIntolerance":
        verification, _ = codings(r.verificationStatus)
        clinical, _ = codings(r.clinicalStatus)
        usable = not any(c.code in EXCLUDED_VERIFICATION for c in verification)
        active = not any(c.code in INACTIVE_CONDITION for c in clinical)
        day = _first_date(r.recordedDate, r.onsetDateTime)
        concepts = [r.code, *(rx.substance for rx in (r.reaction or ()))]
    else:
        return
    if not usable:
        return
    for role, value_match, value in value_matches:
        props = value_match.concept.properties if value_match.concept else {}
        yield Hit(ref, role, day, active, props, value, rtype)
    if concepts:
        found, text = all_codings(c for c in concepts if c is not None)
        for role, match in _role_matches(roles, found, text):
            props = match.concept.properties if match.concept else {}
            yield Hit(ref, role, day, active, props, None, rtype)


ROLE_MEMO_SIZE = 50_000
_role_memo: dict[
    tuple[int, tuple[Coding, ...], str | None],
    tuple[Sequence[tuple[str, ValueSet]], tuple[tuple[str, Match], ...]],
] = {}


def _role_matches(
    roles: Sequence[tuple[str, ValueSet]], found: Sequence[Coding], text: str | None
) -> tuple[tuple[str, Match], ...]:
    """Every role whose value set matches the concept, memoised per (roles, codings, text).

    The same codes recur across resources and calls; one lookup here replaces one per role.
    Keyed by the identity of ``roles`` (a service's long-lived tuple), checked on every hit.
    """
    key = (id(roles), tuple(found), text)
    entry = _role_memo.get(key)
    if entry is not None and entry[0] is roles:
        return entry[1]
    result = tuple(
        (role, match) for role, vs in roles if (match := vs.match(key[1], text)) is not None
    )
    if len(_role_memo) >= ROLE_MEMO_SIZE:
        _role_memo.clear()
    _role_memo[key] = (roles, result)
    return result


def collect_facts(
    record: PatientRecord,
    roles_by_type: Mapping[str, Sequence[tuple[str, ValueSet]]],
    exposure: ExposureSummary,
    now: datetime,
    *,
    recent_medication_days: float,
    draft_orders: Sequence[MedicationRequest] = (),
) -> ClinicalFacts:
    """Match every resource against the roles its type is selected for."""
    today = now.date()
    birth = to_date(record.patient.birthDate) if record.patient is not None else None
    facts = ClinicalFacts(today=today, age=age_on(birth, today), exposure=exposure)
    resources: list[FHIRResourceModel] = [r for rs in record.by_type.values() for r in rs]
    resources.extend(draft_orders)
    for resource in resources:
        roles = roles_by_type.get(resource.get_resource_type(), ())
        for hit in _resource_hits(
            resource, roles, record.medications, today, recent_medication_days
        ):
            facts.hits.setdefault(hit.role, []).append(hit)
    return facts


__all__ = ["ClinicalFacts", "Coding", "Hit", "collect_facts"]
