"""The patient record the rules read: relevant prefetch entries, each read on its own.

Selection happens on the raw JSON first (resource type, then codes against the value sets the
rules use), so a 5,000-entry record costs a dictionary walk, and only the resources the rules
read are parsed, into read views of the fields they read (:mod:`cds_service.fhir.views`, about
10 µs each; a full fhir.resources R4B model costs ten times that or more). Nothing is cached
between calls: a chart never seen before costs what a reopened one does.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple, TypeVar

from pydantic import ValidationError

from cds_service.fhir.extract import CODE_FIELDS
from cds_service.fhir.quirks import repair_resource
from cds_service.fhir.references import relative_reference
from cds_service.fhir.views import VIEW_BY_TYPE, Medication, Patient, Resource
from cds_service.memo import Memo
from cds_service.patient_binding import FOREIGN, OWN, PATIENT_LINK, UNBOUND, PatientBinding
from cds_service.valuesets import ValueSet, normalize_code

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=Resource)
TEXT_MEMO_SIZE = 50_000

INVALID_R4 = "invalid-r4"
NOT_R4_TYPE = "not-r4-type"
SKIP_REASONS = (INVALID_R4, NOT_R4_TYPE, FOREIGN, UNBOUND)  # the reason codes a response names
DRAFTS_KEY = "context.draftOrders"  # where unreadable draft orders are counted, beside the keys

MEDICATION_USE_TYPES = frozenset(
    {"MedicationRequest", "MedicationStatement", "MedicationAdministration", "MedicationDispense"}
)


@dataclass(frozen=True)
class _TypeIndex:
    """Union of a resource type's value sets: one lookup per coding, one regex per text.

    It may over-select (exclusions are not applied here); the facts step matches each value
    set exactly. It never under-selects.
    """

    # system -> normalised codes; every system with codes or prefixes has an entry, so a
    # coding of any other system (most codings of a large record) is passed over at once.
    codes: Mapping[str, frozenset[str]]
    prefixes: Mapping[str, tuple[str, ...]]
    text: re.Pattern[str] | None
    # Codings and texts repeat across resources and calls ("Body Height"): each verdict is
    # remembered, by content (system, code, display; text).
    coding_memo: Memo[tuple[Any, Any, Any], bool] = field(
        default_factory=lambda: Memo("selector-coding", TEXT_MEMO_SIZE), compare=False, repr=False
    )
    text_memo: Memo[str, bool] = field(
        default_factory=lambda: Memo("selector-text", TEXT_MEMO_SIZE), compare=False, repr=False
    )

    @staticmethod
    def of(valuesets: Sequence[ValueSet]) -> _TypeIndex:
        codes: dict[str, set[str]] = {}
        prefixes: dict[str, list[str]] = {}
        patterns: list[str] = []
        for vs in valuesets:
            for system, code in vs.concepts:
                codes.setdefault(system, set()).add(code)
            for system, values in vs.prefixes.items():
                prefixes.setdefault(system, []).extend(values)
                codes.setdefault(system, set())
            if vs.text_pattern is not None:
                patterns.append(f"(?:{vs.text_pattern.pattern})")
        text = re.compile("|".join(patterns), re.IGNORECASE) if patterns else None
        return _TypeIndex(
            {k: frozenset(v) for k, v in codes.items()},
            {k: tuple(v) for k, v in prefixes.items()},
            text,
        )

    def hit(self, concept: Any) -> bool:
        # Raw JSON (orjson dicts and lists): plain isinstance checks, no ABCs, on every coding
        # of every resource of a large record. A concept hits when one of its codings does
        # (by code, or by display text) or its text does: one memo lookup per coding.
        if not isinstance(concept, dict):
            return False
        coding_hit, memo = self._coding_hit, self.coding_memo
        for coding in concept.get("coding") or ():
            if isinstance(coding, dict) and memo.get_with(
                (coding.get("system"), coding.get("code"), coding.get("display")), coding_hit
            ):
                return True
        if self.text is None:
            return False
        text = concept.get("text")
        return isinstance(text, str) and self.text_memo.get_with(text, self._search)

    def _coding_hit(self, coding: tuple[Any, Any, Any]) -> bool:
        """Whether one raw coding's (system, code, display) is in the index."""
        system, code, display = coding
        if isinstance(system, str) and isinstance(code, str):
            known = self.codes.get(system)
            if known is not None:
                norm = normalize_code(system, code)
                if norm in known:
                    return True
                starts = self.prefixes.get(system)
                if starts and norm.startswith(starts):
                    return True
        return isinstance(display, str) and self._search(display)

    def _search(self, text: str) -> bool:
        return self.text is not None and self.text.search(text) is not None


class _Linked(NamedTuple):
    """A wanted resource type linked to its patient by one field (see Selector.linked)."""

    link: str  # the field that names the patient (patient_binding.PATIENT_LINK)
    fields: tuple[str, ...]  # its code fields (fhir.extract.CODE_FIELDS)
    codes: _TypeIndex | None  # None: every resource of the type is wanted
    medication_use: bool  # may name its drug by a Medication reference


@dataclass(frozen=True)
class Selector:
    """Which raw resources are worth validating: by type, and (optionally) by value set.

    ``by_type[t]`` empty means every resource of type ``t`` is kept; a type absent from the
    mapping is ignored. Medication-use resources that point to a Medication are kept when the
    Medication matches (or cannot be seen).
    """

    by_type: Mapping[str, Sequence[ValueSet]]

    @cached_property
    def _index(self) -> dict[str, _TypeIndex | None]:
        return {t: (_TypeIndex.of(vs) if vs else None) for t, vs in self.by_type.items()}

    @cached_property
    def linked(self) -> dict[str, _Linked]:
        """The wanted R4 types linked to their patient by one field (every type but Patient
        and Medication), each with what :meth:`matches` reads: the per-entry hot path of
        :func:`build_record`, without looking anything up twice."""
        return {
            t: _Linked(PATIENT_LINK[t], CODE_FIELDS.get(t, ()), index, t in MEDICATION_USE_TYPES)
            for t, index in self._index.items()
            if t in PATIENT_LINK and t in VIEW_BY_TYPE
        }

    def wants_type(self, resource_type: str) -> bool:
        return resource_type in self.by_type

    def matches(self, raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]) -> bool:
        rtype = raw.get("resourceType")
        if not isinstance(rtype, str):
            return False
        if rtype not in self._index:
            return False  # a type no rule reads
        index = self._index[rtype]
        if index is None:
            return True  # every resource of this type is wanted
        for name in CODE_FIELDS.get(rtype, ()):
            if index.hit(raw.get(name)):
                return True
        if rtype in MEDICATION_USE_TYPES and raw.get("medicationReference") is not None:
            # An unresolved reference (None) is kept: the engine decides later.
            return _medication_hit(index, raw, medications) is not False
        return False


@dataclass(frozen=True)
class RawMatcher:
    """Whether a raw resource names a concept of some value sets: by its code fields, by the
    Medication it references (contained or in the prefetch), or, for a Medication, by its code
    and ingredients. It reads entries that failed validation (topics/record_quality.py tells
    the clinician when one looked like a glucocorticoid), so it expects nothing of the JSON.
    """

    valuesets: tuple[ValueSet, ...]

    @cached_property
    def _index(self) -> _TypeIndex:
        return _TypeIndex.of(self.valuesets)

    def hit(self, raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]) -> bool:
        index, rtype = self._index, raw.get("resourceType")
        if rtype == "Medication":
            return _medication_concepts_hit(index, raw)
        fields = CODE_FIELDS.get(rtype) if isinstance(rtype, str) else None
        # Types that are not R4 (DSTU2 MedicationOrder): the usual concept fields.
        if any(index.hit(raw.get(name)) for name in fields or _ANY_CODE_FIELDS):
            return True
        return _medication_hit(index, raw, medications) is True


_ANY_CODE_FIELDS = ("medicationCodeableConcept", "code")


def _medication_hit(
    index: _TypeIndex, raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> bool | None:
    """Whether the Medication ``raw`` references matches ``index``; None when it is not seen."""
    target = _medication_for(raw, medications)
    return None if target is None else _medication_concepts_hit(index, target)


def _medication_concepts_hit(index: _TypeIndex, medication: Mapping[str, Any]) -> bool:
    if index.hit(medication.get("code")):
        return True
    return any(
        isinstance(ingredient, Mapping) and index.hit(ingredient.get("itemCodeableConcept"))
        for ingredient in medication.get("ingredient") or ()
    )


def _medication_for(
    raw: Mapping[str, Any], medications: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    ref = raw.get("medicationReference")
    target = ref.get("reference") if isinstance(ref, Mapping) else None
    if not isinstance(target, str):
        return None
    if target.startswith("#"):
        for contained in raw.get("contained") or ():
            if isinstance(contained, Mapping) and contained.get("id") == target[1:]:
                return contained
        return None
    return medications.get(relative_reference(target))


@dataclass
class PatientRecord:
    """Validated resources by type, plus the Medications they reference.

    What was left out is counted: ``skipped`` by resource type (invalid R4, or not an R4 type),
    ``skipped_by_key`` by prefetch key and reason (:data:`SKIP_REASONS`), ``unbound`` by
    (resource type, reason) for entries that are not provably the context patient's, and
    ``unreadable_steroid`` by prefetch key: skipped entries of the patient whose raw codes or
    text name a glucocorticoid. Counts only: no ids, no values.
    """

    patient: Patient | None = None
    by_type: dict[str, list[Resource]] = field(default_factory=dict)
    medications: dict[str, Medication] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_by_key: dict[str, Counter[str]] = field(default_factory=dict)
    unbound: Counter[tuple[str, str]] = field(default_factory=Counter)
    unreadable_steroid: Counter[str] = field(default_factory=Counter)

    def of_type(self, model: type[T]) -> list[T]:
        """Every resource of the given model's type (typed for the caller)."""
        return [r for r in self.by_type.get(model.get_resource_type(), []) if isinstance(r, model)]

    def count_skip(self, key: str, reason: str) -> None:
        self.skipped_by_key.setdefault(key, Counter())[reason] += 1


def _validate(raw: Mapping[str, Any]) -> Resource | None:
    """The view of ``raw`` (its type is one the rules read); None when a field the rules read
    is malformed. Views parse only the fields they declare, to a fixed depth, so a deeply
    nested field the rules never read is never walked."""
    try:
        return VIEW_BY_TYPE[str(raw.get("resourceType"))].model_validate(
            repair_resource(raw if isinstance(raw, dict) else dict(raw))
        )
    except (ValidationError, ValueError, TypeError):
        return None


@dataclass
class _Build:
    """One build_record run: what it reads and the record it fills."""

    selector: Selector
    binding: PatientBinding | None
    steroid: RawMatcher | None
    medications: Mapping[str, Mapping[str, Any]]  # "Medication/<id>" -> raw
    record: PatientRecord = field(default_factory=PatientRecord)
    linked: Mapping[str, _Linked] = field(init=False)

    def __post_init__(self) -> None:
        self.linked = self.selector.linked

    def wanted(self, raw: Mapping[str, Any], key: str) -> bool:
        """Whether a raw entry is worth validating: an R4 type the rules read, of the context
        patient, selected by its codes. Medications are read apart (by reference). Entries of
        another patient, or of none provably, are counted and dropped before validation; a
        type that is not R4 is counted as unreadable."""
        rtype = raw.get("resourceType")
        linked = self.linked.get(rtype) if isinstance(rtype, str) else None
        if linked is None:
            return self._wanted_other(raw, key)
        # The hot path, on every entry of a large record: Selector.matches and
        # PatientBinding.resource for a type linked to its patient, looked up once.
        binding = self.binding
        if binding is not None:
            link = raw.get(linked.link)
            if not (type(link) is dict and link.get("reference") == binding.own_reference):
                verdict = binding.resource(raw)
                if verdict != OWN:
                    self.foreign(str(rtype), key, verdict)
                    return False
        index = linked.codes
        if index is None:
            return True
        for name in linked.fields:
            if index.hit(raw.get(name)):
                return True
        if linked.medication_use and raw.get("medicationReference") is not None:
            # An unresolved reference (None) is kept: the engine decides later.
            return _medication_hit(index, raw, self.medications) is not False
        return False

    def _wanted_other(self, raw: Mapping[str, Any], key: str) -> bool:
        """:meth:`wanted` for the Patient, Medications, types that are not R4 and types no
        rule reads."""
        rtype = raw.get("resourceType")
        if not isinstance(rtype, str) or rtype == "Medication":
            return False
        is_r4 = rtype in VIEW_BY_TYPE
        if not (self.selector.wants_type(rtype) if is_r4 else rtype in _NON_R4_TYPES):
            return False  # a type no rule reads
        verdict = self.binding.resource(raw) if self.binding is not None else OWN
        if verdict != OWN:
            self.foreign(rtype, key, verdict)
            return False
        if not is_r4:
            self.unreadable(raw, key, NOT_R4_TYPE)
            return False
        return self.selector.matches(raw, self.medications)

    def foreign(self, rtype: str, key: str, verdict: str) -> None:
        """Count an entry that is not provably the context patient's (counts only)."""
        self.record.unbound[(rtype, verdict)] += 1
        self.record.count_skip(key, verdict)
        logger.warning(
            "prefetch entry dropped: not the context patient's",
            extra={"prefetch_key": key, "resource_type": rtype, "reason": verdict},
        )

    def unreadable(self, raw: Mapping[str, Any], key: str, reason: str) -> None:
        """Count an entry of the patient that cannot be read (never log the error text:
        pydantic echoes input values)."""
        rtype = str(raw.get("resourceType"))
        self.record.skipped[rtype] += 1
        self.record.count_skip(key, reason)
        if self.steroid is not None and self.steroid.hit(raw, self.medications):
            self.record.unreadable_steroid[key] += 1
        logger.warning(
            "prefetch entry skipped: unreadable",
            extra={"prefetch_key": key, "resource_type": rtype, "reason": reason},
        )

    def add(self, raw: Mapping[str, Any], key: str) -> None:
        model = _validate(raw)
        if model is None:
            self.unreadable(raw, key, INVALID_R4)
        elif isinstance(model, Patient):
            self.record.patient = self.record.patient or model
        else:
            self.record.by_type.setdefault(model.get_resource_type(), []).append(model)


def _medication_ref(raw: Mapping[str, Any]) -> str | None:
    ref = raw.get("medicationReference")
    target = ref.get("reference") if isinstance(ref, dict) else None
    return relative_reference(target) if isinstance(target, str) else None


def build_record(
    entries_by_key: Mapping[str, Iterable[Any]],
    selector: Selector,
    *,
    binding: PatientBinding | None,
    steroid: RawMatcher | None = None,
) -> PatientRecord:
    """Select and validate the entries the rules read; the rest is counted, never silent.

    ``entries_by_key`` maps each prefetch key to its raw resources (already unwrapped from
    Bundles). Resource types the selector does not want are dropped without validation. With a
    ``binding``, entries that are not the context patient's are dropped before validation
    (None: no check, for tests of selection alone). Invalid entries and types that do not exist
    in R4 (e.g. DSTU2 ``MedicationOrder``) are skipped and counted; ``steroid`` tells which of
    those named a glucocorticoid (:class:`PatientRecord` has the counts).
    """
    raw_by_key: dict[str, list[Mapping[str, Any]]] = {}
    medication_keys: dict[str, str] = {}  # "Medication/<id>" -> the key it came under
    raw_medications: dict[str, Mapping[str, Any]] = {}
    for key, entries in entries_by_key.items():
        kept = raw_by_key[key] = []
        for raw in entries:
            if type(raw) is dict or isinstance(raw, Mapping):
                kept.append(raw)
                if raw.get("resourceType") == "Medication" and isinstance(raw.get("id"), str):
                    raw_medications[f"Medication/{raw['id']}"] = raw
                    medication_keys[f"Medication/{raw['id']}"] = key
    build = _Build(selector, binding, steroid, raw_medications)
    seen: set[tuple[str, str]] = set()
    referenced: set[str] = set()  # Medications the patient's own entries point to
    for key, entries in raw_by_key.items():
        for raw in entries:
            if not build.wanted(raw, key):
                continue
            rtype, rid = str(raw["resourceType"]), raw.get("id")
            if isinstance(rid, str):
                if (rtype, rid) in seen:
                    continue  # the same resource under two keys (e.g. _include) counts once
                seen.add((rtype, rid))
            if (ref := _medication_ref(raw)) is not None:
                referenced.add(ref)
            build.add(raw, key)
    record = build.record
    for ref, raw in raw_medications.items():
        # A Medication has no patient: it is only looked up by the references of the patient's
        # own resources (and drafts), so another patient's Medication is never read.
        model = _validate(raw)
        if isinstance(model, Medication):
            record.medications[ref] = model
        elif ref in referenced:
            build.unreadable(raw, medication_keys[ref], INVALID_R4)
    return record


# DSTU2/STU3 types seen from real clients (the sandbox's default server is DSTU2).
_NON_R4_TYPES = frozenset(
    {
        "MedicationOrder",
        "MedicationPrescription",
        "ProcedureRequest",
        "ReferralRequest",
        "DiagnosticOrder",
    }
)
