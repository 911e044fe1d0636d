"""facts: what a medication record says about a dose given (and its days' supply), and the
bodySite of Conditions and Procedures read with their code (laterality, joint)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service.catalog import Service, load_catalog
from cds_service.exposure import ExposureSummary
from cds_service.facts import ClinicalFacts, collect_facts
from cds_service.fhir.views import (
    Condition,
    MedicationAdministration,
    MedicationDispense,
    MedicationRequest,
    Procedure,
    Resource,
)
from cds_service.record import PatientRecord
from cds_service.topics import KINDS
from tests.topic_support import TODAY, exposure

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)
SNOMED = "http://snomed.info/sct"
PATIENT = {"reference": "Patient/p"}


@pytest.fixture(scope="module")
def service() -> Service:
    found = load_catalog(REPO / "hooks", KINDS).find("glucocorticoid-safety")
    assert found is not None
    return found


def _facts(service: Service, *resources: Resource) -> ClinicalFacts:
    record = PatientRecord()
    for r in resources:
        record.by_type.setdefault(r.get_resource_type(), []).append(r)
    empty: ExposureSummary = exposure()
    return collect_facts(record, service.role_map, empty, NOW, recent_medication_days=90)


def _medication(text: str) -> dict[str, Any]:
    return {"medicationCodeableConcept": {"text": text}, "subject": PATIENT}


@pytest.mark.parametrize(
    ("resource", "given", "supply"),
    [
        (
            MedicationAdministration.model_validate(
                {"resourceType": "MedicationAdministration", "id": "a", "status": "completed"}
                | _medication("Zoledronic acid 5 mg infusion")
                | {"effectiveDateTime": "2026-03-24"}
            ),
            True,
            None,
        ),
        (
            MedicationAdministration.model_validate(
                {"resourceType": "MedicationAdministration", "id": "a", "status": "stopped"}
                | _medication("Zoledronic acid 5 mg infusion")
                | {"effectiveDateTime": "2026-03-24"}
            ),
            False,
            None,
        ),
        (
            MedicationDispense.model_validate(
                {"resourceType": "MedicationDispense", "id": "d", "status": "completed"}
                | _medication("Alendronic acid 70 mg tablet")
                | {"whenHandedOver": "2026-10-01", "daysSupply": {"value": 4, "code": "wk"}}
            ),
            True,
            28.0,
        ),
        (
            MedicationDispense.model_validate(
                {"resourceType": "MedicationDispense", "id": "d", "status": "completed"}
                | _medication("Alendronic acid 70 mg tablet")
                | {"whenHandedOver": "2026-10-01", "daysSupply": {"value": 4, "unit": "tablets"}}
            ),
            True,
            None,  # not a unit of time
        ),
        (
            MedicationRequest.model_validate(
                {"resourceType": "MedicationRequest", "id": "r", "status": "completed"}
                | {"intent": "order", "authoredOn": "2026-03-24"}
                | _medication("Zoledronic acid 5 mg infusion")
            ),
            True,
            None,
        ),
        (
            MedicationRequest.model_validate(
                {"resourceType": "MedicationRequest", "id": "r", "status": "active"}
                | {"intent": "order", "authoredOn": "2026-03-24"}
                | _medication("Zoledronic acid 5 mg infusion")
            ),
            False,  # an order, not a dose
            None,
        ),
    ],
    ids=[
        "administered",
        "stopped",
        "dispense-4-weeks",
        "dispense-in-tablets",
        "completed",
        "order",
    ],
)
def test_medication_records_say_whether_a_dose_was_given(
    service: Service, resource: Resource, given: bool, supply: float | None
) -> None:
    f = _facts(service, resource)
    [generic] = f.of("osteoporosis_drugs")
    assert (generic.given, generic.supply_days) == (given, supply)
    classes = {h.role for roles in f.hits.values() for h in roles} - {"osteoporosis_drugs"}
    assert len(classes) == 1  # one drug class: zoledronic acid or oral bisphosphonate


def test_an_administration_older_than_90_days_keeps_the_generic_reading(service: Service) -> None:
    admin = MedicationAdministration.model_validate(
        {"resourceType": "MedicationAdministration", "id": "a", "status": "completed"}
        | _medication("Denosumab 60 mg (Prolia)")
        | {"effectiveDateTime": "2026-06-27"}
    )
    [h] = _facts(service, admin).of("denosumab")
    assert h.active is False  # exposure.recent_use_days: how long is the bone topic's business
    assert h.given is True
    assert h.day is not None
    assert (TODAY - h.day).days == 150


def test_condition_body_site_gives_joint_and_side(service: Service) -> None:
    pain = Condition.model_validate(
        {
            "resourceType": "Condition",
            "id": "c",
            "subject": PATIENT,
            "code": {"text": "Joint pain"},
            "bodySite": [
                {
                    "coding": [{"system": SNOMED, "code": "7771000", "display": "Left"}],
                    "text": "Knee",
                }
            ],
        }
    )
    f = _facts(service, pain)
    roles = {role for role, hits in f.hits.items() if hits}
    assert {"joint_pain", "joint_site_knee", "laterality_left"} <= roles
    assert "laterality_right" not in roles


def test_procedure_body_site_gives_the_side_of_a_text_only_prosthesis(service: Service) -> None:
    tka = Procedure.model_validate(
        {
            "resourceType": "Procedure",
            "id": "p",
            "status": "completed",
            "subject": PATIENT,
            "code": {"text": "Knee arthroplasty"},
            "bodySite": [{"coding": [{"system": SNOMED, "code": "24028007", "display": "Right"}]}],
        }
    )
    f = _facts(service, tka)
    assert f.refs("knee_prosthesis") == ("Procedure/p",)
    assert f.refs("laterality_right") == ("Procedure/p",)
