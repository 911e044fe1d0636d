"""Draft orders of the order hooks (order-select, order-sign), read leniently from the context.

MedicationRequests become R4B models (exposure and facts read them); ServiceRequest and
Immunization drafts are kept as reference + code (enough to see a DXA, IGRA or vaccine being
ordered, without requiring the client to send valid R4). Other types (NutritionOrder, DSTU2
MedicationOrder, ...) are ignored. Which drafts a hook advises on (its ``focus``) is the hook
table's business (hook_table.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from cds_service.errors import InvalidRequest
from cds_service.fhir.extract import CODE_FIELDS, raw_codings
from cds_service.fhir.quirks import repair_draft_medication_request
from cds_service.fhir.views import MedicationRequest
from cds_service.patient_binding import FOREIGN, PatientBinding
from cds_service.valuesets import Coding

logger = logging.getLogger(__name__)

CODED_DRAFT_TYPES = ("ServiceRequest", "Immunization")


@dataclass(frozen=True)
class DraftEntry:
    """A draft order that is not a MedicationRequest (ServiceRequest, Immunization), read raw."""

    reference: str  # "Type/id"
    resource_type: str
    codings: tuple[Coding, ...]
    text: str | None


@dataclass(frozen=True)
class DraftOrders:
    """The draft orders of one order-select / order-sign call.

    ``medication_requests`` and ``entries`` hold every draft in ``context.draftOrders`` (the
    other drafts are context: a prophylaxis drug drafted but not selected still counts);
    ``focus`` names the ones the hook advises on; ``bundle_key`` hashes every draft reference.
    """

    medication_requests: tuple[MedicationRequest, ...] = ()
    entries: tuple[DraftEntry, ...] = ()
    focus: frozenset[str] = frozenset()
    bundle_key: str | None = None
    # Draft MedicationRequests that failed R4 validation, raw: counted in the response, and
    # checked for a glucocorticoid (topics/record_quality.py). Never logged.
    unreadable: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)

    @staticmethod
    def of(requests: Iterable[MedicationRequest]) -> DraftOrders:
        """Plain draft MedicationRequests, all of them in focus."""
        requests = tuple(requests)
        refs = [f"MedicationRequest/{r.id}" for r in requests if r.id]
        return DraftOrders(requests, (), frozenset(refs), reference_key(refs))

    def names(self) -> dict[str, str]:
        """Draft reference -> what the order says it is (text, else first display)."""
        out: dict[str, str] = {}
        for request in self.medication_requests:
            concept = request.medicationCodeableConcept
            if request.id and concept is not None:
                displays = [c.display for c in concept.coding or () if c.display]
                name = concept.text or (displays[0] if displays else None)
                if name:
                    out[f"MedicationRequest/{request.id}"] = name
        for entry in self.entries:
            displays = [c.display for c in entry.codings if c.display]
            name = entry.text or (displays[0] if displays else None)
            if name:
                out[entry.reference] = name
        return out


def reference_key(refs: Iterable[str]) -> str | None:
    """A stable key for a set of draft references (None for none)."""
    ordered = sorted(refs)
    return hashlib.sha256("|".join(ordered).encode()).hexdigest()[:32] if ordered else None


def bundle_entries(bundle: Any) -> list[Mapping[str, Any]]:
    """The resources of ``context.draftOrders``; 400 unless it is a FHIR Bundle."""
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("context.draftOrders must be a FHIR Bundle")
    out = []
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and isinstance(resource.get("resourceType"), str):
            out.append(resource)
    return out


def check_draft_patients(bundle: Any, binding: PatientBinding) -> None:
    """400 when a draft order names another patient: an order written for someone else must not
    be advised on, nor answered with suggestions for this chart. The message gives field paths
    only. A draft with no patient link is kept: the EHR drafted it in this patient's order
    session, and a missing link is no sign of a mix-up (the sandbox's drafts carry one)."""
    paths = []
    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    for i, entry in enumerate(entries if isinstance(entries, list) else ()):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and binding.resource(resource) == FOREIGN:
            paths.append(f"context.draftOrders.entry[{i}].resource.{binding.link_path(resource)}")
    if paths:
        raise InvalidRequest("draft order for another patient: " + ", ".join(paths))


def entry_reference(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def read_drafts(entries: list[Mapping[str, Any]], focus: frozenset[str]) -> DraftOrders:
    """Every draft of the Bundle, with the hook's focus. An R4-invalid MedicationRequest is
    skipped and logged (type only). Bundles without ``type`` are accepted (official examples
    omitted it until 2025)."""
    requests: list[MedicationRequest] = []
    coded: list[DraftEntry] = []
    unreadable: list[Mapping[str, Any]] = []
    for raw in entries:
        rtype = raw.get("resourceType")
        if rtype == "MedicationRequest":
            model = _medication_request(raw)
            if model is not None:
                requests.append(model)
            else:
                unreadable.append(raw)
        elif rtype in CODED_DRAFT_TYPES:
            entry = _coded_entry(raw)
            if entry is not None:
                coded.append(entry)
    key = reference_key(entry_reference(e) for e in entries)
    return DraftOrders(tuple(requests), tuple(coded), focus, key, tuple(unreadable))


def _medication_request(raw: Mapping[str, Any]) -> MedicationRequest | None:
    fixed = repair_draft_medication_request(raw)  # sandbox drafts (fhir/quirks.py)
    try:
        return MedicationRequest.model_validate(fixed)
    except (ValidationError, ValueError, TypeError):
        logger.warning(
            "draft order skipped: invalid R4 MedicationRequest",
            extra={"resource_type": "MedicationRequest"},
        )
        return None


def _coded_entry(raw: Mapping[str, Any]) -> DraftEntry | None:
    rtype = str(raw.get("resourceType"))
    if not isinstance(raw.get("id"), str):
        return None  # cannot be referenced (selected or deleted) without an id
    found: list[Any] = []
    texts: list[str] = []
    for name in CODE_FIELDS.get(rtype, ()):
        codings, text = raw_codings(raw.get(name))
        found.extend(codings)
        if text:
            texts.append(text)
    if not found and not texts:
        return None
    return DraftEntry(entry_reference(raw), rtype, tuple(found), " ".join(texts) or None)
