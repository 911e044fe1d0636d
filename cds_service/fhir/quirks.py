"""Known CDS client quirks in FHIR data, each repaired here and nowhere else.

A quirk is something a real client sends that breaks the spec in a harmless, recognisable way.
Repairing it keeps the data (strict R4 validation would otherwise skip the resource); anything
not listed here is left to validation.

* ``category-object``. Client: CDS Hooks Sandbox [1]. Sends ``MedicationRequest.category`` as
  one object (R4: ``0..*``, a list). Repair: wrap it in a list. Used by record (prefetched and
  fetched resources) and drafts (draft orders): :func:`repair_resource`.
* ``draft-without-intent``. Client: CDS Hooks Sandbox [1]. A draft ``MedicationRequest`` has no
  ``intent`` and no ``status`` (both ``1..1``) until dispense details are entered. Repair:
  ``intent = "order"``, ``status = "draft"``. Used by drafts:
  :func:`repair_draft_medication_request`.
* ``prefetch-wrapper``. Clients: pre-1.0 CDS Hooks clients (drafts before 1.0 wrapped each
  prefetch result). A prefetch value is wrapped as
  ``{"response": {"status": "200 OK"}, "resource": {...}}``. Repair: use ``resource``. Used by
  prefetch: :func:`unwrap_prefetch_value`.

[1] https://github.com/cds-hooks/sandbox, medication-reducers.js

Quirks that are not FHIR data are handled at the HTTP edge: the sandbox's doubled slash in the
service URL (main.EdgeMiddleware) and in the JWT ``aud`` (api.auth). DSTU2 resource types from
the sandbox's default server are not repaired: record counts them as skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "category_as_list",
    "repair_draft_medication_request",
    "repair_resource",
    "unwrap_prefetch_value",
]


def category_as_list(raw: dict[str, Any]) -> dict[str, Any]:
    """``category-object``: ``raw`` with a single ``category`` object wrapped in a list.

    Returns ``raw`` itself when there is nothing to repair, else a shallow copy.
    """
    if isinstance(raw.get("category"), dict):
        return {**raw, "category": [raw["category"]]}
    return raw


def repair_resource(raw: dict[str, Any]) -> dict[str, Any]:
    """Every quirk of a single resource from prefetch, a FHIR read or search, or draftOrders.

    Returns ``raw`` itself when nothing applies, else a repaired shallow copy.
    """
    if raw.get("resourceType") == "MedicationRequest":
        raw = category_as_list(raw)
    return raw


def repair_draft_medication_request(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``category-object`` and ``draft-without-intent`` for a draft order's MedicationRequest.

    Always a new dict: a draft is what the clinician is writing, so a missing intent or status
    can only mean "order" and "draft".
    """
    fixed = repair_resource(dict(raw))
    fixed.setdefault("intent", "order")
    fixed.setdefault("status", "draft")
    return fixed


def unwrap_prefetch_value(value: Any) -> Any:
    """``prefetch-wrapper``: the ``resource`` of a pre-1.0 wrapped value, else ``value``."""
    if isinstance(value, Mapping) and "resourceType" not in value and "resource" in value:
        return value["resource"]
    return value
