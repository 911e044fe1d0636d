"""Each known client quirk (cds_service.fhir.quirks) is repaired, and only that."""

from __future__ import annotations

from typing import Any

from cds_service.fhir.models import MedicationRequest
from cds_service.fhir.quirks import (
    category_as_list,
    repair_draft_medication_request,
    repair_resource,
    unwrap_prefetch_value,
)

INPATIENT = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
            "code": "inpatient",
        }
    ]
}


def sandbox_order(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": "draft-1",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"text": "prednisone 20 mg tablet"},
        **fields,
    }


# -- category-object (CDS Hooks Sandbox) -----------------------------------------------------------


def test_category_object_is_wrapped_in_a_list_and_validates() -> None:
    raw = sandbox_order(status="active", intent="order", category=INPATIENT)
    repaired = repair_resource(raw)
    assert repaired["category"] == [INPATIENT]
    assert raw["category"] == INPATIENT, "the input is not modified"
    MedicationRequest.model_validate(repaired)


def test_category_list_and_other_types_are_left_as_they_are() -> None:
    listed = sandbox_order(category=[INPATIENT])
    assert repair_resource(listed) is listed
    condition = {"resourceType": "Condition", "id": "c", "category": INPATIENT}
    assert repair_resource(condition) is condition, "only the sandbox's MedicationRequest quirk"
    assert category_as_list({"category": INPATIENT}) == {"category": [INPATIENT]}


# -- draft-without-intent (CDS Hooks Sandbox) ------------------------------------------------------


def test_draft_without_intent_and_status_becomes_a_draft_order() -> None:
    raw = sandbox_order(category=INPATIENT)
    fixed = repair_draft_medication_request(raw)
    assert (fixed["intent"], fixed["status"]) == ("order", "draft")
    assert fixed["category"] == [INPATIENT]
    assert "intent" not in raw
    MedicationRequest.model_validate(fixed)


def test_draft_intent_and_status_that_are_sent_are_kept() -> None:
    fixed = repair_draft_medication_request(sandbox_order(intent="plan", status="active"))
    assert (fixed["intent"], fixed["status"]) == ("plan", "active")


# -- prefetch-wrapper (pre-1.0 clients) ------------------------------------------------------------


def test_pre_1_0_prefetch_wrapper_is_unwrapped() -> None:
    patient = {"resourceType": "Patient", "id": "p"}
    assert unwrap_prefetch_value({"response": {"status": "200 OK"}, "resource": patient}) is patient


def test_resources_and_other_values_are_not_unwrapped() -> None:
    # A resource that has a "resource" element of its own stays as it is.
    bundle_entry_like = {"resourceType": "Basic", "resource": {"x": 1}}
    assert unwrap_prefetch_value(bundle_entry_like) is bundle_entry_like
    assert unwrap_prefetch_value(None) is None
    assert unwrap_prefetch_value("<html>") == "<html>"
