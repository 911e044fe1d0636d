"""lab_results and facts: test results read from Observations (coded answer, interpretation,
text, number against a cut-off or reference range), orders read as pending, and drugs with
their own current-use window (rituximab, cyclophosphamide)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service.catalog import Service, load_catalog
from cds_service.facts import ClinicalFacts, collect_facts
from cds_service.fhir.views import (
    MedicationAdministration,
    Observation,
    Resource,
    ServiceRequest,
)
from cds_service.lab_results import ResultRules, read_result
from cds_service.record import PatientRecord
from cds_service.topics import KINDS
from tests.topic_support import exposure

REPO = Path(__file__).resolve().parents[1]
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def service() -> Service:
    found = load_catalog(REPO / "hooks", KINDS).find("glucocorticoid-safety")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def rules(service: Service) -> ResultRules:
    return ResultRules.of(service.valuesets, service.thresholds.section("result_cutoffs"))


def observation(code: str, **fields: Any) -> Observation:
    return Observation.model_validate(
        {
            "resourceType": "Observation",
            "id": "obs",
            "status": fields.pop("status", "final"),
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": "Patient/pt"},
            "effectiveDateTime": "2026-11-01",
            **fields,
        }
    )


def concept(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


IGRA = "71773-6"
TST = "1648-5"
IGRA_CORRECTED = "96754-7"
HBV_DNA = "42595-9"
ANTI_HBC = "16933-4"


@pytest.mark.parametrize(
    ("case", "code", "fields", "props", "result"),
    [
        ("LOINC answer Positive", IGRA, {"valueCodeableConcept": concept(LOINC, "LA6576-8")}, {}, "positive"),
        ("SNOMED Not detected", HBV_DNA, {"valueCodeableConcept": concept(SNOMED, "260415000")}, {}, "negative"),
        ("LOINC Indeterminate", IGRA, {"valueCodeableConcept": concept(LOINC, "LA11884-6")}, {}, "indeterminate"),
        ("text Negative (fixture style)", IGRA, {"valueCodeableConcept": {"text": "Negative"}}, {}, "negative"),
        ("interpretation POS", ANTI_HBC, {"interpretation": [concept(V3, "POS")]}, {}, "positive"),
        ("interpretation NR", ANTI_HBC, {"interpretation": [concept(V3, "NR")]}, {}, "negative"),
        ("interpretation E (equivocal)", ANTI_HBC, {"interpretation": [concept(V3, "E")]}, {}, "indeterminate"),
        ("abnormal flag alone", ANTI_HBC, {"interpretation": [concept(V3, "A")]}, {}, "unclear"),
        ("valueString 'not detected' (negation first)", HBV_DNA, {"valueString": "HBV DNA not detected"}, {}, "negative"),
        ("valueString 'Reactive'", ANTI_HBC, {"valueString": "Reactive"}, {}, "positive"),
        ("valueString 'Non-reactive'", ANTI_HBC, {"valueString": "Non-reactive"}, {}, "negative"),
        ("coded answer beats the flag", IGRA, {"valueCodeableConcept": concept(LOINC, "LA6577-6"), "interpretation": [concept(V3, "A")]}, {}, "negative"),
        ("TST 12 mm", TST, {"valueQuantity": {"value": 12, "unit": "mm", "system": "http://unitsofmeasure.org", "code": "mm"}}, {"cutoff": "tst_induration"}, "positive"),
        ("TST 5 mm (at the line)", TST, {"valueQuantity": {"value": 5, "code": "mm"}}, {"cutoff": "tst_induration"}, "positive"),
        ("TST 3 mm", TST, {"valueQuantity": {"value": 3, "code": "mm"}}, {"cutoff": "tst_induration"}, "negative"),
        ("TST in cm: not compared", TST, {"valueQuantity": {"value": 1.2, "code": "cm"}}, {"cutoff": "tst_induration"}, "unclear"),
        ("IGRA 0.2 IU/mL corrected", IGRA_CORRECTED, {"valueQuantity": {"value": 0.2, "code": "[IU]/mL"}}, {"cutoff": "igra_corrected"}, "negative"),
        ("IGRA 0.35 IU/mL corrected", IGRA_CORRECTED, {"valueQuantity": {"value": 0.35, "code": "[IU]/mL"}}, {"cutoff": "igra_corrected"}, "positive"),
        ("above the reference range", ANTI_HBC, {"valueQuantity": {"value": 2.1, "unit": "index"}, "referenceRange": [{"high": {"value": 1.0}}]}, {}, "positive"),
        ("within the reference range", ANTI_HBC, {"valueQuantity": {"value": 0.4, "unit": "index"}, "referenceRange": [{"high": {"value": 1.0}}]}, {}, "negative"),
        ("viral load 250 IU/mL", HBV_DNA, {"valueQuantity": {"value": 250, "code": "[IU]/mL"}}, {"quantity": "detection"}, "positive"),
        ("viral load below the limit '<10'", HBV_DNA, {"valueQuantity": {"value": 10, "comparator": "<", "code": "[IU]/mL"}}, {"quantity": "detection"}, "unclear"),
        ("a number and nothing to read it with", "46217-6", {"valueQuantity": {"value": 0.9, "code": "[IU]/mL"}}, {}, "unclear"),
        ("registered, no value yet", IGRA, {"status": "registered"}, {}, "pending"),
        ("a panel without a value", "71775-1", {}, {}, None),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_read_result(
    rules: ResultRules,
    case: str,
    code: str,
    fields: dict[str, Any],
    props: dict[str, Any],
    result: str | None,
) -> None:
    obs = observation(code, **fields)
    assert read_result(obs, props, rules, registered=obs.status == "registered") == result, case


def facts_of(service: Service, *resources: Resource) -> ClinicalFacts:
    by_type: dict[str, list[Resource]] = {}
    for resource in resources:
        by_type.setdefault(resource.get_resource_type(), []).append(resource)
    t = service.thresholds
    return collect_facts(
        PatientRecord(by_type=by_type),
        service.role_map,
        exposure(),
        NOW,
        recent_medication_days=t.value("exposure.recent_use_days"),
        role_days={role: v.value for role, v in t.section("current_use").items()},
        results=ResultRules.of(service.valuesets, t.section("result_cutoffs")),
    )


def test_observation_hits_carry_result_and_unit(service: Service) -> None:
    tst = observation(TST, valueQuantity={"value": 14, "unit": "mm", "code": "mm"})
    egfr = observation(
        "98979-8", valueQuantity={"value": 22, "unit": "mL/min/1.73m2", "code": "mL/min/{1.73_m2}"}
    )
    f = facts_of(service, tst, egfr.model_copy(update={"id": "egfr"}))
    (tb,) = f.of("tb_tests")
    assert (tb.result, tb.value, tb.unit) == ("positive", 14.0, "mm")
    (kidney,) = f.of("kidney_function")
    assert (kidney.value, kidney.unit) == (22.0, "mL/min/{1.73_m2}")


@pytest.mark.parametrize(("status", "result"), [("active", "pending"), ("completed", None)])
def test_an_open_order_is_pending(service: Service, status: str, result: str | None) -> None:
    order = ServiceRequest.model_validate(
        {
            "resourceType": "ServiceRequest",
            "id": "sr-igra",
            "status": status,
            "intent": "order",
            "code": concept(LOINC, IGRA),
            "subject": {"reference": "Patient/pt"},
            "authoredOn": "2026-11-20",
        }
    )
    (hit,) = facts_of(service, order).of("tb_tests")
    assert hit.result == result


def rituximab_given(day: str) -> MedicationAdministration:
    return MedicationAdministration.model_validate(
        {
            "resourceType": "MedicationAdministration",
            "id": f"ma-rtx-{day}",
            "status": "completed",
            "medicationCodeableConcept": concept(RXNORM, "121191"),
            "subject": {"reference": "Patient/pt"},
            "effectiveDateTime": day,
        }
    )


@pytest.mark.parametrize(
    ("day", "current"),
    [
        ("2026-07-24", True),  # four months ago: B-cells still depleted
        ("2025-11-25", True),  # 364 days ago
        ("2025-11-23", False),  # 366 days ago: past the 12-month window
    ],
)
def test_rituximab_counts_as_current_for_twelve_months(
    service: Service, day: str, current: bool
) -> None:
    f = facts_of(service, rituximab_given(day))
    (b_cell,) = f.of("b_cell_depletion")
    assert b_cell.active is current
    # The generic immunosuppressant role keeps the 90-day window for administrations.
    (generic,) = f.of("immunosuppressant_drugs")
    assert generic.active is False
