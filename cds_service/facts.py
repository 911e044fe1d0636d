"""Patient facts the rules read: value-set hits over the record and the draft orders, plus
glucocorticoid exposure.

Pure: no I/O, ``now`` passed in. Each hit keeps the relative reference of the resource that
produced it, so every card can say which resources triggered it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, NamedTuple

from cds_service.drafts import DraftEntry, DraftOrders
from cds_service.exposure import ExposureSummary
from cds_service.fhir.extract import age_on, all_codings, codings, reference_of, to_date
from cds_service.fhir.references import relative_reference
from cds_service.fhir.views import (
    AllergyIntolerance,
    Condition,
    DiagnosticReport,
    Immunization,
    Medication,
    MedicationAdministration,
    MedicationDispense,
    MedicationRequest,
    MedicationStatement,
    Observation,
    Procedure,
    Resource,
    ServiceRequest,
)
from cds_service.lab_results import Result, ResultRules, quantity_of, read_result
from cds_service.medications.units import duration_days
from cds_service.memo import Memo
from cds_service.record import DRAFTS_KEY, PatientRecord
from cds_service.valuesets import Coding, Match, ValueSet

INACTIVE_CONDITION = frozenset({"inactive", "resolved", "remission"})
EXCLUDED_VERIFICATION = frozenset({"refuted", "entered-in-error"})
EXCLUDED_STATUS = frozenset(
    {"entered-in-error", "cancelled", "not-done", "not-taken", "revoked", "unknown-error"}
)
ACTIVE_MEDICATION_STATUS = frozenset({"active", "intended", "draft"})
DONE_OR_ORDERED_STATUS = frozenset({"active", "completed", "draft", "on-hold"})
ORDERED_STATUS = frozenset({"active", "draft", "on-hold"})  # ordered, no result yet
GIVEN_STATUS = frozenset({"completed", "in-progress"})  # administrations, dispenses


NO_PROPERTIES: Mapping[str, Any] = MappingProxyType({})


class Hit(NamedTuple):
    """One resource that matched one value-set role. Immutable, like every fact; a NamedTuple
    rather than a frozen dataclass because some 30 are made per hook call and a tuple is
    built several times faster (nothing hashes Hits or needs dataclass fields of them)."""

    ref: str
    role: str
    day: date | None
    active: bool
    properties: Mapping[str, Any] = NO_PROPERTIES
    value: float | None = None  # Observation value (e.g. a T-score)
    resource_type: str = ""
    # Medication records: the record documents the drug as given or handed over (an
    # administration or dispense done, a completed order or statement) on ``day``, and the
    # days' supply a dispense states. How long that counts as current therapy depends on the
    # drug (hooks/thresholds.toml [drug_effect]); ``active`` keeps the generic reading.
    given: bool = False
    supply_days: float | None = None
    unit: str | None = None  # UCUM code (else unit text) of ``value``
    # A test's result (lab_results): positive, negative, indeterminate, unclear, or pending
    # (ordered or registered, no result yet); None when there is nothing to read.
    result: Result | None = None


@dataclass
class ClinicalFacts:
    today: date
    age: int | None
    exposure: ExposureSummary
    hits: dict[str, list[Hit]] = field(default_factory=dict)
    # Order hooks: the draft orders the hook advises on, and what each draft says it is.
    focus: frozenset[str] = frozenset()
    draft_names: Mapping[str, str] = field(default_factory=dict)
    # Entries of the patient skipped as unreadable although their raw codes or text name a
    # glucocorticoid: by the plain label of the prefetch key they came under (the service's
    # data_labels), and how many of the draft orders. Counts only, no values.
    unreadable_steroid_entries: Mapping[str, int] = field(default_factory=dict)
    unreadable_steroid_drafts: int = 0

    def of(self, role: str, *, active_only: bool = False) -> list[Hit]:
        found = self.hits.get(role, [])
        return [h for h in found if h.active] if active_only else list(found)

    def refs(self, role: str, *, active_only: bool = False) -> tuple[str, ...]:
        found = self.hits.get(role, ())
        return tuple(sorted({h.ref for h in found if h.active or not active_only}))

    def latest(self, role: str) -> Hit | None:
        dated = [h for h in self.of(role) if h.day is not None]
        return max(dated, key=lambda h: h.day or date.min) if dated else None

    def within(self, role: str, days: float) -> list[Hit]:
        since = self.today - timedelta(days=days)
        return [h for h in self.of(role) if h.day is not None and h.day >= since]


RoleSets = tuple[tuple[str, ValueSet], ...]
ROLE_MEMO_SIZE = 50_000


class RoleMap:
    """Resource type -> the (role, value set) pairs its resources are matched against, with a
    memo of which roles a concept matches (owned by the loaded service: the same codes recur
    across resources and calls, and one lookup here replaces one per role)."""

    def __init__(self, by_type: Mapping[str, RoleSets]) -> None:
        self.by_type = dict(by_type)
        self._memo: Memo[tuple[str, tuple[Coding, ...], str | None], tuple[tuple[str, Match], ...]]
        self._memo = Memo("role-matches", ROLE_MEMO_SIZE)

    def roles(self, resource_type: str) -> RoleSets:
        return self.by_type.get(resource_type, ())

    def matches(
        self, resource_type: str, found: Sequence[Coding], text: str | None
    ) -> tuple[tuple[str, Match], ...]:
        """Every role of ``resource_type`` whose value set matches the concept."""
        key = (resource_type, tuple(found), text)
        roles = self.roles(resource_type)
        return self._memo.get(
            key,
            lambda: tuple(
                (role, match) for role, vs in roles if (match := vs.match(key[1], text)) is not None
            ),
        )


def _first_date(*values: object) -> date | None:
    for value in values:
        day = to_date(value)
        if day is not None:
            return day
    return None


def _period_start(period: object) -> object:  # an R4B Period (or None)
    return getattr(period, "start", None) if period is not None else None


class Reading(NamedTuple):
    """What the facts step needs of one resource, whatever its type."""

    usable: bool  # not refuted, entered in error, cancelled, not done...
    active: bool
    day: date | None
    concepts: list[object]  # R4B CodeableConcepts matched against the type's roles
    given: bool = False  # medication records: a dose given or handed over on ``day``
    supply_days: float | None = None  # dispenses: the days' supply stated
    # Medication use: the last day the record shows the drug given or taken, and whether
    # ``active`` is only that day's recency (administrations, dispenses) rather than a status.
    last_day: date | None = None
    by_date: bool = False
    result: Result | None = None


NOT_USABLE = Reading(False, False, None, [])


@dataclass(frozen=True)
class ReadContext:
    today: date
    recent_medication_days: float
    medications: Mapping[str, Medication]
    # Role -> days a drug of that role counts as current after its last dose (thresholds
    # [current_use]: B-cell depletion, cyclophosphamide), instead of recent_medication_days.
    role_days: Mapping[str, float] = field(default_factory=dict)
    results: ResultRules = field(default_factory=ResultRules)


def _condition(r: Condition, _: ReadContext) -> Reading:
    verification, _text = codings(r.verificationStatus)
    if any(c.code in EXCLUDED_VERIFICATION for c in verification):
        return NOT_USABLE
    clinical, _text = codings(r.clinicalStatus)
    active = not any(c.code in INACTIVE_CONDITION for c in clinical)
    day = _first_date(r.onsetDateTime, _period_start(r.onsetPeriod), r.recordedDate)
    # bodySite with the code: where a pain or a prosthesis is, and its side (laterality roles).
    return Reading(True, active, day, [r.code, *(r.bodySite or ())])


def _allergy(r: AllergyIntolerance, _: ReadContext) -> Reading:
    verification, _text = codings(r.verificationStatus)
    clinical, _text = codings(r.clinicalStatus)
    usable = not any(c.code in EXCLUDED_VERIFICATION for c in verification)
    active = not any(c.code in INACTIVE_CONDITION for c in clinical)
    day = _first_date(r.recordedDate, r.onsetDateTime)
    return Reading(usable, active, day, [r.code, *(rx.substance for rx in (r.reaction or ()))])


MedicationUse = (
    MedicationRequest | MedicationStatement | MedicationAdministration | MedicationDispense
)


def _medication_concepts(r: MedicationUse, medications: Mapping[str, Medication]) -> list[object]:
    concepts: list[object] = [r.medicationCodeableConcept]
    ref = r.medicationReference
    target = getattr(ref, "reference", None) if ref is not None else None
    medication: object = None  # a Medication, contained or from the record
    if isinstance(target, str) and target.startswith("#"):
        medication = next(
            (c for c in (r.contained or ()) if getattr(c, "id", None) == target[1:]), None
        )
    elif isinstance(target, str):
        medication = medications.get(relative_reference(target))
    if medication is not None:
        concepts.append(getattr(medication, "code", None))
        for ingredient in getattr(medication, "ingredient", None) or ():
            concepts.append(getattr(ingredient, "itemCodeableConcept", None))
    return concepts


def _medication_request(r: MedicationRequest, ctx: ReadContext) -> Reading:
    if r.status in EXCLUDED_STATUS:
        return NOT_USABLE
    active = r.status in ACTIVE_MEDICATION_STATUS
    day = _first_date(r.authoredOn)
    concepts = _medication_concepts(r, ctx.medications)
    given = r.status == "completed"
    return Reading(True, active, day, concepts, given=given, last_day=day)


def _medication_statement(r: MedicationStatement, ctx: ReadContext) -> Reading:
    if r.status in EXCLUDED_STATUS:
        return NOT_USABLE
    day = _first_date(r.effectiveDateTime, _period_start(r.effectivePeriod), r.dateAsserted)
    end = to_date(getattr(r.effectivePeriod, "end", None)) if r.effectivePeriod else None
    active = r.status in ACTIVE_MEDICATION_STATUS and (end is None or end >= ctx.today)
    concepts = _medication_concepts(r, ctx.medications)
    given = r.status == "completed"
    return Reading(True, active, day, concepts, given=given, last_day=end or day)


def _given_recently(day: date | None, ctx: ReadContext) -> bool:
    return day is not None and (ctx.today - day).days <= ctx.recent_medication_days


def _medication_administration(r: MedicationAdministration, ctx: ReadContext) -> Reading:
    if r.status in EXCLUDED_STATUS:
        return NOT_USABLE
    day = _first_date(r.effectiveDateTime, _period_start(r.effectivePeriod))
    concepts = _medication_concepts(r, ctx.medications)
    given = r.status in GIVEN_STATUS
    recent = _given_recently(day, ctx)
    return Reading(True, recent, day, concepts, given=given, last_day=day, by_date=True)


def _medication_dispense(r: MedicationDispense, ctx: ReadContext) -> Reading:
    if r.status in EXCLUDED_STATUS:
        return NOT_USABLE
    day = _first_date(r.whenHandedOver, r.whenPrepared)
    concepts = _medication_concepts(r, ctx.medications)
    given = r.status in GIVEN_STATUS
    supply = duration_days(r.daysSupply)  # None: absent, or not a unit of time
    recent = _given_recently(day, ctx)
    return Reading(True, recent, day, concepts, given, supply, last_day=day, by_date=True)


def _procedure(r: Procedure, _: ReadContext) -> Reading:
    usable = r.status not in EXCLUDED_STATUS and r.status != "not-done"
    day = _first_date(r.performedDateTime, _period_start(r.performedPeriod))
    return Reading(usable, True, day, [r.code, *(r.bodySite or ())])


def _immunization(r: Immunization, _: ReadContext) -> Reading:
    return Reading(
        r.status == "completed",
        True,
        _first_date(r.occurrenceDateTime, r.recorded),
        [r.vaccineCode],
    )


def _service_request(r: ServiceRequest, _: ReadContext) -> Reading:
    day = _first_date(r.authoredOn, r.occurrenceDateTime)
    pending: Result | None = "pending" if r.status in ORDERED_STATUS else None
    return Reading(r.status in DONE_OR_ORDERED_STATUS, True, day, [r.code], result=pending)


def _diagnostic_report(r: DiagnosticReport, _: ReadContext) -> Reading:
    day = _first_date(r.effectiveDateTime, _period_start(r.effectivePeriod), r.issued)
    return Reading(r.status not in EXCLUDED_STATUS, True, day, [r.code])


def _observation(r: Observation, _: ReadContext) -> Reading:
    # The codes are matched with their values (observation_hits); no concepts here.
    day = _first_date(r.effectiveDateTime, _period_start(r.effectivePeriod), r.issued)
    return Reading(r.status not in EXCLUDED_STATUS, True, day, [])


def read(resource: Resource, ctx: ReadContext) -> Reading:
    """Status, activity, date and concepts of a resource, by its type (typed per model)."""
    match resource:
        case Condition():
            return _condition(resource, ctx)
        case MedicationRequest():
            return _medication_request(resource, ctx)
        case Observation():
            return _observation(resource, ctx)
        case Procedure():
            return _procedure(resource, ctx)
        case MedicationStatement():
            return _medication_statement(resource, ctx)
        case MedicationAdministration():
            return _medication_administration(resource, ctx)
        case MedicationDispense():
            return _medication_dispense(resource, ctx)
        case Immunization():
            return _immunization(resource, ctx)
        case ServiceRequest():
            return _service_request(resource, ctx)
        case DiagnosticReport():
            return _diagnostic_report(resource, ctx)
        case AllergyIntolerance():
            return _allergy(resource, ctx)
    return NOT_USABLE  # a type the rules do not read


def _observation_hits(
    r: Observation, role_map: RoleMap, ref: str, day: date | None, ctx: ReadContext
) -> Iterable[Hit]:
    """An Observation matches on its code and on each component's code, with the value and
    what the value says (lab_results: coded answer, interpretation, text, number)."""
    registered = r.status == "registered"
    for part in (r, *(r.component or ())):
        found, text = codings(part.code)
        for role, match in role_map.matches("Observation", found, text):
            props = match.concept.properties if match.concept else {}
            value, unit, _comparator = quantity_of(part)
            result = read_result(part, props, ctx.results, registered=registered)
            yield Hit(ref, role, day, True, props, value, "Observation", unit=unit, result=result)


def _active_for(role: str, reading: Reading, ctx: ReadContext) -> bool:
    """A drug of a role with its own window (``ctx.role_days``) is current while its last
    dose is that recent, whatever the status: rituximab months after the infusion."""
    days = ctx.role_days.get(role)
    if days is None or reading.last_day is None:
        return reading.active
    recent = (ctx.today - reading.last_day).days <= days
    return recent if reading.by_date else reading.active or recent


def _resource_hits(resource: Resource, role_map: RoleMap, ctx: ReadContext) -> Iterable[Hit]:
    reading = read(resource, ctx)
    if not reading.usable:
        return
    ref = reference_of(resource)
    if isinstance(resource, Observation):
        yield from _observation_hits(resource, role_map, ref, reading.day, ctx)
        return
    rtype = resource.get_resource_type()
    found, text = all_codings(c for c in reading.concepts if c is not None)
    for role, match in role_map.matches(rtype, found, text):
        props = match.concept.properties if match.concept else {}
        yield Hit(
            ref,
            role,
            reading.day,
            _active_for(role, reading, ctx),
            props,
            None,
            rtype,
            reading.given,
            reading.supply_days,
            result=reading.result,
        )


def _draft_entry_hits(entry: DraftEntry, role_map: RoleMap, today: date) -> Iterable[Hit]:
    """A coded draft (ServiceRequest, Immunization) is active and dated today: being ordered,
    so a test or vaccine drafted is pending, not done."""
    for role, vs in role_map.roles(entry.resource_type):
        match = vs.match(entry.codings, entry.text)
        if match is not None:
            props = match.concept.properties if match.concept else {}
            rtype = entry.resource_type
            yield Hit(entry.reference, role, today, True, props, None, rtype, result="pending")


def collect_facts(
    record: PatientRecord,
    role_map: RoleMap,
    exposure: ExposureSummary,
    now: datetime,
    *,
    recent_medication_days: float,
    drafts: DraftOrders | None = None,
    data_labels: Mapping[str, str] | None = None,
    role_days: Mapping[str, float] | None = None,
    results: ResultRules | None = None,
) -> ClinicalFacts:
    """Match every resource of the record and every draft order against the roles its type is
    selected for. ``data_labels`` names the prefetch keys in words (hooks/: data_labels);
    ``role_days`` gives drugs of some roles their own current-use window (days after the last
    dose); ``results`` reads test results (answer codes, cut-offs)."""
    drafts = drafts or DraftOrders()
    labels = data_labels or {}
    today = now.date()
    birth = to_date(record.patient.birthDate) if record.patient is not None else None
    facts = ClinicalFacts(
        today=today,
        age=age_on(birth, today),
        exposure=exposure,
        focus=drafts.focus,
        draft_names=drafts.names() if drafts.focus else {},
        unreadable_steroid_entries={
            labels.get(key, key): n
            for key, n in record.unreadable_steroid.items()
            if key != DRAFTS_KEY
        },
        unreadable_steroid_drafts=record.unreadable_steroid.get(DRAFTS_KEY, 0),
    )
    ctx = ReadContext(
        today, recent_medication_days, record.medications, role_days or {}, results or ResultRules()
    )
    resources: list[Resource] = [r for rs in record.by_type.values() for r in rs]
    resources.extend(drafts.medication_requests)
    for resource in resources:
        for hit in _resource_hits(resource, role_map, ctx):
            facts.hits.setdefault(hit.role, []).append(hit)
    for entry in drafts.entries:
        for hit in _draft_entry_hits(entry, role_map, today):
            facts.hits.setdefault(hit.role, []).append(hit)
    return facts


__all__ = ["ClinicalFacts", "Coding", "Hit", "RoleMap", "collect_facts"]
