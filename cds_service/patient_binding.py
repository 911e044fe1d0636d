"""Whose data a raw FHIR resource is: the context patient's, another patient's, or unprovable.

The rules may read only the context patient's own resources. A client that mixes another
patient's entries into prefetch (a stale cache, a search that ignored ``patient=``, a whole
prefetch for the wrong chart) must not produce cards from them, nor draft orders that name the
wrong patient. Each resource type the rules read is linked to its patient by one field (R4):

| resource type                                            | field     | R4 cardinality |
|----------------------------------------------------------|-----------|----------------|
| Condition, Procedure, MedicationRequest, MedicationStatement, MedicationAdministration, ServiceRequest | ``subject`` | 1..1 |
| Observation, MedicationDispense, DiagnosticReport        | ``subject`` | 0..1         |
| Immunization, AllergyIntolerance                         | ``patient`` | 1..1         |
| Patient                                                  | ``id``    |                |

Other types (DSTU2 ``MedicationOrder``, NutritionOrder in draftOrders) are read by ``subject``,
else ``patient``. Medication has no patient link: it is read only when the patient's own
resources reference it.

A reference names the patient when it is ``Patient/<id>`` (relative, absolute with any base, or
versioned) or a ``urn:uuid:``/``urn:oid:`` that is the ``fullUrl`` of a Patient entry with
that id in the request's Bundles. The base of an absolute reference is not compared with
``fhirServer``: EHRs write their own base names (internal host aliases), and the id is what
tells patients apart within one chart's data.

Verdicts: ``own``; ``foreign-patient`` (names another Patient); ``unbound`` (no link, or one
that names no Patient provably: missing, contained, conditional, a Group, a ``urn:uuid:``
that is no Patient entry of the request). Only ``own`` resources reach the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from cds_service.fhir.quirks import unwrap_prefetch_value
from cds_service.fhir.references import parse_reference

__all__ = [
    "FOREIGN",
    "OWN",
    "PATIENT_LINK",
    "UNBOUND",
    "PatientBinding",
    "Verdict",
    "patient_entries",
]

Verdict = Literal["own", "foreign-patient", "unbound"]
OWN: Final = "own"
FOREIGN: Final = "foreign-patient"
UNBOUND: Final = "unbound"

PATIENT_LINK: Final[Mapping[str, str]] = {
    "Condition": "subject",
    "Observation": "subject",
    "Procedure": "subject",
    "MedicationRequest": "subject",
    "MedicationStatement": "subject",
    "MedicationAdministration": "subject",
    "MedicationDispense": "subject",
    "ServiceRequest": "subject",
    "DiagnosticReport": "subject",
    "Immunization": "patient",
    "AllergyIntolerance": "patient",
}
_OTHER_LINKS: Final = ("subject", "patient")


def _link_field(raw: Mapping[str, Any]) -> str | None:
    """The field that links ``raw`` to its patient (None: the resource carries none)."""
    known = PATIENT_LINK.get(str(raw.get("resourceType")))
    if known is not None:
        return known if raw.get(known) is not None else None
    return next((name for name in _OTHER_LINKS if raw.get(name) is not None), None)


@dataclass(frozen=True)
class PatientBinding:
    """The context patient and the Patient entries of the request's Bundles, by ``fullUrl``."""

    patient_id: str
    patients_by_full_url: Mapping[str, str | None] = field(default_factory=dict)
    # "Patient/<id>": the form nearly every resource uses, compared first (hot path).
    own_reference: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "own_reference", f"Patient/{self.patient_id}")

    @staticmethod
    def of(patient_id: str, values: Iterable[object]) -> PatientBinding:
        """The binding for ``patient_id``; ``values`` are prefetch values and draftOrders, whose
        Bundle entries resolve ``urn:uuid:`` references (searchset entries fetched from a FHIR
        server use ``Type/id`` references and need no such map)."""
        found: dict[str, str | None] = {}
        for value in values:
            for url, resource in patient_entries(value):
                if url is not None:
                    rid = resource.get("id")
                    found[url] = rid if isinstance(rid, str) else None
        return PatientBinding(patient_id, found)

    def reference(self, ref: object) -> Verdict:
        """Whether a raw Reference names the context patient (see the module docstring)."""
        target = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(target, str):
            return UNBOUND  # identifier-only or display-only: not provable
        if target == self.own_reference:
            return OWN
        if target.startswith("urn:"):
            if target not in self.patients_by_full_url:
                return UNBOUND
            rid = self.patients_by_full_url[target]
            return UNBOUND if rid is None else self._id(rid)
        parsed = parse_reference(target)
        if parsed is None or parsed.resource_type != "Patient":
            return UNBOUND
        return self._id(parsed.id)

    def resource(self, raw: Mapping[str, Any]) -> Verdict:
        """Whether a raw resource is the context patient's (a Patient: whether it is them)."""
        # Hot path (every entry of a large record): the type's own link, as "Patient/<id>".
        name = PATIENT_LINK.get(raw.get("resourceType"))  # type: ignore[arg-type]
        if name is not None:
            link = raw.get(name)
            if type(link) is dict and link.get("reference") == self.own_reference:
                return OWN
        if raw.get("resourceType") == "Patient":
            rid = raw.get("id")
            return self._id(rid) if isinstance(rid, str) else UNBOUND
        name = _link_field(raw)
        return UNBOUND if name is None else self.reference(raw.get(name))

    def link_path(self, raw: Mapping[str, Any]) -> str:
        """The name of the field :meth:`resource` judged (for error messages: a path, no value)."""
        if raw.get("resourceType") == "Patient":
            return "id"
        return _link_field(raw) or PATIENT_LINK.get(str(raw.get("resourceType")), "subject")

    def _id(self, rid: str) -> Verdict:
        return OWN if rid == self.patient_id else FOREIGN


def patient_entries(value: object) -> list[tuple[str | None, Mapping[str, Any]]]:
    """The Patient resources of a prefetch value (a Patient, or a Bundle's Patient entries),
    each with its entry's ``fullUrl`` (None when absent). One pass over a Bundle's entries."""
    value = unwrap_prefetch_value(value)
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Patient":
        return [(None, value)]
    if value.get("resourceType") != "Bundle":
        return []
    found: list[tuple[str | None, Mapping[str, Any]]] = []
    for entry in value.get("entry") or ():
        # Raw JSON: plain dict checks (no ABC isinstance) on every entry of a large record.
        resource = entry.get("resource") if type(entry) is dict else None
        if type(resource) is dict and resource.get("resourceType") == "Patient":
            url = entry.get("fullUrl")
            found.append((url if isinstance(url, str) else None, resource))
    return found
