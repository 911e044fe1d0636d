"""Draft orders from order-select / order-sign context, read leniently.

MedicationRequests become R4B models (exposure and facts read them); ServiceRequest and
Immunization drafts are kept as reference + code (enough to see a DXA, IGRA or vaccine being
ordered). Other types (NutritionOrder, DSTU2 MedicationOrder, ...) are ignored.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from cds_service.cdshooks import CDSRequest
from cds_service.errors import InvalidRequest
from cds_service.fhir.extract import CODE_FIELDS, raw_codings
from cds_service.fhir.models import MedicationRequest
from cds_service.fhir.quirks import repair_draft_medication_request
from cds_service.order_rules import DraftEntry, DraftOrders

logger = logging.getLogger(__name__)

CODED_DRAFT_TYPES = ("ServiceRequest", "Immunization")


def _entries(bundle: Any) -> list[Mapping[str, Any]]:
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("context.draftOrders must be a FHIR Bundle")
    out = []
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and isinstance(resource.get("resourceType"), str):
            out.append(resource)
    return out


def _reference(resource: Mapping[str, Any]) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


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
    return DraftEntry(_reference(raw), rtype, tuple(found), " ".join(texts) or None)


def draft_orders_for(request: CDSRequest) -> tuple[DraftOrders, str | None]:
    """The draft orders to evaluate and a key for the whole draftOrders Bundle.

    Every draft is returned (the others are context: a prophylaxis drug drafted but not
    selected still counts); ``focus`` is what the hook advises on: order-select's
    ``selections`` (matched by ``Type/id``: sandbox entries have no ``fullUrl``), order-sign's
    whole Bundle. An R4-invalid MedicationRequest is skipped and logged (type only). Bundles
    without ``type`` are accepted (official examples omitted it until 2025). The key hashes
    every draft reference, for both hooks; the engine keys cards by the glucocorticoid draft.
    """
    if request.hook not in ("order-select", "order-sign"):
        return DraftOrders(), None
    entries = _entries(request.context.get("draftOrders"))
    if request.hook == "order-select":
        selections = request.context.get("selections")
        if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
            raise InvalidRequest("context.selections must be a list of Type/id strings")
        focus = frozenset(selections)
    else:
        focus = frozenset(_reference(e) for e in entries)
    requests: list[MedicationRequest] = []
    coded: list[DraftEntry] = []
    for raw in entries:
        rtype = raw.get("resourceType")
        if rtype == "MedicationRequest":
            model = _medication_request(raw)
            if model is not None:
                requests.append(model)
        elif rtype in CODED_DRAFT_TYPES:
            entry = _coded_entry(raw)
            if entry is not None:
                coded.append(entry)
    refs = sorted(_reference(e) for e in entries)
    key = hashlib.sha256("|".join(refs).encode()).hexdigest()[:32] if refs else None
    return DraftOrders(tuple(requests), tuple(coded), focus), key
