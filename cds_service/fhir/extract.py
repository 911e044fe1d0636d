"""Pure helpers that read FHIR data defensively: codings, dates, references."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any

from cds_service.valuesets import Coding

# Where each resource type keeps the code the rules classify it by (raw JSON field names).
CODE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "Condition": ("code",),
    "Observation": ("code",),
    "Procedure": ("code",),
    "ServiceRequest": ("code",),
    "DiagnosticReport": ("code",),
    "AllergyIntolerance": ("code",),
    "Immunization": ("vaccineCode",),
    "Medication": ("code",),
    "MedicationRequest": ("medicationCodeableConcept",),
    "MedicationStatement": ("medicationCodeableConcept",),
    "MedicationAdministration": ("medicationCodeableConcept",),
    "MedicationDispense": ("medicationCodeableConcept",),
}


def raw_codings(concept: Any) -> tuple[list[Coding], str | None]:
    """Codings and text of a raw CodeableConcept dict; anything malformed yields nothing."""
    if not isinstance(concept, Mapping):
        return [], None
    codings = []
    for coding in concept.get("coding") or ():
        if isinstance(coding, Mapping):
            system, code, display = coding.get("system"), coding.get("code"), coding.get("display")
            codings.append(
                Coding(
                    system if isinstance(system, str) else None,
                    code if isinstance(code, str) else None,
                    display if isinstance(display, str) else None,
                )
            )
    text = concept.get("text")
    return codings, text if isinstance(text, str) else None


def codings(concept: Any) -> tuple[list[Coding], str | None]:
    """Codings and text of an R4B CodeableConcept model (or None)."""
    if concept is None:
        return [], None
    out = [Coding(c.system, c.code, c.display) for c in (concept.coding or ())]
    return out, concept.text


def all_codings(concepts: Iterable[Any]) -> tuple[list[Coding], str | None]:
    """Codings and joined text of several CodeableConcept models."""
    found: list[Coding] = []
    texts: list[str] = []
    for concept in concepts:
        cs, text = codings(concept)
        found.extend(cs)
        if text:
            texts.append(text)
    return found, " ".join(texts) or None


def to_date(value: Any) -> date | None:
    """A date from a FHIR date/dateTime/instant (model value or string); None if absent/invalid."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            if len(value) == 4:
                return date(int(value), 1, 1)
            if len(value) == 7:
                return date(int(value[:4]), int(value[5:7]), 1)
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def to_datetime(value: Any) -> datetime | None:
    """An aware datetime from a FHIR temporal value; dates become midnight UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    day = to_date(value)
    return datetime.combine(day, time(0), tzinfo=UTC) if day else None


def reference_of(resource: Any) -> str:
    """The relative reference ``Type/id`` of a model or raw resource (``Type/?`` without id)."""
    if isinstance(resource, Mapping):
        rtype, rid = resource.get("resourceType"), resource.get("id")
    else:
        rtype, rid = resource.get_resource_type(), getattr(resource, "id", None)
    return f"{rtype}/{rid if rid else '?'}"


def age_on(birth_date: date | None, day: date) -> int | None:
    """Whole years of age on ``day``; None without a birth date."""
    if birth_date is None:
        return None
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests deeper than ``limit`` levels (iterative: no recursion on
    hostile input; a scalar is depth 0, ``{}`` depth 1)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth + 1 > limit:
                return True
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            if depth + 1 > limit:
                return True
            stack.extend((v, depth + 1) for v in node)
    return False
