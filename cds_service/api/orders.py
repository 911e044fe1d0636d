"""Draft orders from order-select / order-sign context, read leniently as R4 MedicationRequests."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from cds_service.cdshooks import CDSRequest
from cds_service.errors import InvalidRequest
from cds_service.fhir.models import MedicationRequest

logger = logging.getLogger(__name__)


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


def draft_orders_for(request: CDSRequest) -> tuple[list[MedicationRequest], str | None]:
    """The draft MedicationRequests to evaluate and a key that identifies this ordering session.

    order-select: only the ``selections`` (matched by ``Type/id``: sandbox entries have no
    ``fullUrl``); order-sign: everything being signed. Other resource types are ignored here;
    an R4-invalid MedicationRequest is skipped and logged (type only). Bundles without ``type``
    are accepted (official examples omitted it until 2025).
    """
    if request.hook not in ("order-select", "order-sign"):
        return [], None
    entries = _entries(request.context.get("draftOrders"))
    if request.hook == "order-select":
        selections = request.context.get("selections")
        if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
            raise InvalidRequest("context.selections must be a list of Type/id strings")
        wanted = set(selections)
        entries = [e for e in entries if _reference(e) in wanted]
    drafts: list[MedicationRequest] = []
    for raw in entries:
        if raw.get("resourceType") != "MedicationRequest":
            continue
        fixed = dict(raw)
        if isinstance(fixed.get("category"), dict):
            fixed["category"] = [fixed["category"]]  # sandbox sends one object, R4 wants a list
        fixed.setdefault("intent", "order")  # the sandbox omits intent until dispense details exist
        fixed.setdefault("status", "draft")
        try:
            drafts.append(MedicationRequest.model_validate(fixed))
        except (ValidationError, ValueError, TypeError):
            logger.warning(
                "draft order skipped: invalid R4 MedicationRequest",
                extra={"resource_type": "MedicationRequest"},
            )
    refs = sorted(_reference(e) for e in entries)
    key = hashlib.sha256("|".join(refs).encode()).hexdigest()[:32] if refs else None
    return drafts, key
