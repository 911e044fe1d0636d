"""Raw-first selection and per-entry R4B validation of prefetch data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cds_service.catalog import load_catalog
from cds_service.fhir.views import Condition, MedicationRequest
from cds_service.patient_binding import OWN, PATIENT_LINK, PatientBinding
from cds_service.record import Selector, _Build, build_record
from cds_service.topics import KINDS

REPO = Path(__file__).resolve().parents[1]
BINDING = PatientBinding("p")  # the patient every resource here belongs to


@pytest.fixture(scope="module")
def selector() -> Selector:
    service = load_catalog(REPO / "hooks", KINDS).find("glucocorticoid-safety")
    assert service is not None
    return service.selector


def condition(cid: str, system: str, code: str, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {"coding": [{"system": system, "code": code}]}
    if text:
        concept["text"] = text
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/p"},
        "code": concept,
    }


ICD = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.mark.parametrize(
    ("resource", "kept"),
    [
        (condition("a", ICD, "M33.10"), True),
        (condition("b", ICD, "M3310"), True),  # feeds without the dot
        (condition("c", ICD, "J45.909", "Asthma"), False),
        (condition("d", "urn:local", "123", "Dermatomyositis, adult onset"), True),  # text fallback
        (
            {
                "resourceType": "Observation",
                "id": "o",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "39156-5"}]},
            },
            False,  # BMI: in no value set
        ),
        (
            {
                "resourceType": "Observation",
                "id": "o2",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "38265-5"}]},
            },
            True,
        ),
        ({"resourceType": "Encounter", "id": "e"}, False),
        ({"resourceType": "Patient", "id": "p"}, True),
        (  # text fallback on a coding's display, the concept has no text
            {
                "resourceType": "Condition",
                "id": "f",
                "code": {"coding": [{"system": "urn:local", "code": "9", "display": "Myositis"}]},
            },
            True,
        ),
        (  # odd JSON in a coding (unhashable system, code an object): not selected, no error
            {
                "resourceType": "Condition",
                "id": "g",
                "code": {"coding": [{"system": [ICD], "code": {"c": "M33.10"}}, "M33.10"]},
            },
            False,
        ),
    ],
)
def test_selection_on_raw_json(selector: Selector, resource: dict[str, Any], kept: bool) -> None:
    assert selector.matches(resource, {}) is kept


def test_medication_reference_is_resolved_for_selection(selector: Selector) -> None:
    med = {
        "resourceType": "Medication",
        "id": "m1",
        "code": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "312615"}]
        },
    }
    other = {
        "resourceType": "Medication",
        "id": "m2",
        "code": {"text": "paracetamol 500 mg tablet"},
    }
    order = {
        "resourceType": "MedicationRequest",
        "id": "r",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
    }
    assert selector.matches(
        {**order, "medicationReference": {"reference": "Medication/m1"}}, {"Medication/m1": med}
    )
    assert not selector.matches(
        {**order, "medicationReference": {"reference": "Medication/m2"}}, {"Medication/m2": other}
    )
    # An unresolved reference is kept: the engine decides once the Medication is read.
    assert selector.matches({**order, "medicationReference": {"reference": "Medication/zz"}}, {})


def test_build_record_skips_invalid_and_non_r4_and_deduplicates(selector: Selector) -> None:
    good = condition("a", ICD, "M33.10")
    invalid = {**condition("bad", ICD, "M33.10"), "recordedDate": "not-a-date"}
    dstu2 = {"resourceType": "MedicationOrder", "id": "x", "patient": {"reference": "Patient/p"}}
    record = build_record(
        {"conditions": [good, invalid, "junk", dstu2], "again": [good]},
        selector,
        binding=BINDING,
    )
    assert [c.id for c in record.of_type(Condition)] == ["a"]
    assert record.skipped == {"Condition": 1, "MedicationOrder": 1}
    assert record.skipped_by_key == {"conditions": {"invalid-r4": 1, "not-r4-type": 1}}


def test_sandbox_category_object_is_repaired(selector: Selector) -> None:
    order = {
        "resourceType": "MedicationRequest",
        "id": "r",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "category": {"text": "outpatient"},
        "medicationCodeableConcept": {"text": "prednisone 20 mg tablet"},
    }
    record = build_record({"medications": [order]}, selector, binding=BINDING)
    assert [m.id for m in record.of_type(MedicationRequest)] == ["r"]


def test_every_call_reads_afresh_and_an_invalid_field_read_skips_the_entry() -> None:
    selector = Selector({"Condition": []})
    first = build_record({"k": [condition("a", ICD, "M33.10")]}, selector, binding=BINDING)
    second = build_record({"k": [condition("a", ICD, "M33.10")]}, selector, binding=BINDING)
    assert second.of_type(Condition)[0] is not first.of_type(Condition)[0]  # no cache
    assert second.of_type(Condition)[0] == first.of_type(Condition)[0]
    invalid = {**condition("bad", ICD, "M33.10"), "recordedDate": "nope"}  # read: onset, else this
    record = build_record({"k": [invalid]}, selector, binding=BINDING)
    assert record.skipped == {"Condition": 1}
    unread = {**condition("odd", ICD, "M33.10"), "note": [{"text": 7}], "stage": "not a list"}
    record = build_record({"k": [unread]}, selector, binding=BINDING)
    assert record.skipped == {}
    assert [c.id for c in record.of_type(Condition)] == ["odd"]


def _fixture_resources() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("resourceType"), str):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for source in sorted(
        [*(REPO / "fixtures").rglob("*.json"), *(REPO / "tests/data").rglob("*.json")]
    ):
        try:
            walk(json.loads(source.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
    return found


def test_the_per_entry_fast_path_agrees_with_binding_and_selector(selector: Selector) -> None:
    """build_record's hot path (Selector.linked) keeps exactly the entries that
    PatientBinding.resource calls the patient's own and Selector.matches selects, and counts
    every other-patient entry, on every resource of fixtures/ and tests/data/."""
    linked = 0
    for raw in _fixture_resources():
        if raw["resourceType"] not in selector.linked:
            continue
        linked += 1
        link = raw.get(PATIENT_LINK[raw["resourceType"]])
        target = link.get("reference") if isinstance(link, dict) else None
        own_id = target.rsplit("/", 1)[-1] if isinstance(target, str) else "p"
        for binding in (PatientBinding(own_id), PatientBinding("someone-else")):
            build = _Build(selector, binding, None, {})
            verdict = binding.resource(raw)
            expected = verdict == OWN and selector.matches(raw, {})
            assert build.wanted(raw, "k") is expected, raw.get("id")
            assert sum(build.record.unbound.values()) == (verdict != OWN)
    assert linked > 1000
