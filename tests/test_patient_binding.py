"""Patient binding on raw JSON: whose resource it is, and what the record and drafts do with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cds_service.catalog import Service, load_catalog
from cds_service.drafts import check_draft_patients
from cds_service.errors import InvalidRequest
from cds_service.fhir.models import MODEL_BY_TYPE
from cds_service.fhir.views import Condition, MedicationRequest
from cds_service.patient_binding import PATIENT_LINK, PatientBinding
from cds_service.record import RawMatcher, build_record
from cds_service.topics import KINDS

REPO = Path(__file__).resolve().parents[1]
ME = PatientBinding("pt-1")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


@pytest.fixture(scope="module")
def service() -> Service:
    found = load_catalog(REPO / "hooks", KINDS).find("glucocorticoid-safety")
    assert found is not None
    return found


def ref(value: str) -> dict[str, Any]:
    return {"reference": value}


@pytest.mark.parametrize(
    ("reference", "verdict"),
    [
        (ref("Patient/pt-1"), "own"),
        (ref("Patient/pt-1/_history/3"), "own"),
        (ref("https://ehr.example.org/fhir/Patient/pt-1"), "own"),
        (ref("http://10.0.0.7/r4/tenant-a/Patient/pt-1"), "own"),  # base names vary per EHR
        (ref("Patient/pt-2"), "foreign-patient"),
        (ref("https://ehr.example.org/fhir/Patient/pt-10"), "foreign-patient"),
        (ref("Patient/PT-1"), "foreign-patient"),  # FHIR ids are case-sensitive
        (ref("Group/pt-1"), "unbound"),
        (ref("#pt"), "unbound"),
        (ref("Patient?identifier=x|1"), "unbound"),
        (ref("urn:uuid:7f6c1c8e-0000-4000-8000-000000000001"), "unbound"),  # no such entry
        ({"identifier": {"system": "urn:mrn", "value": "1"}}, "unbound"),
        ({"display": "Jane Doe"}, "unbound"),
        (None, "unbound"),
        ("Patient/pt-1", "unbound"),  # a string, not a Reference
    ],
)
def test_reference_verdicts(reference: object, verdict: str) -> None:
    assert ME.reference(reference) == verdict


def _bundle(*entries: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": url, "resource": r} for url, r in entries],
    }


def test_urn_uuid_resolves_through_the_bundle_full_urls() -> None:
    own, other, anonymous = (
        "urn:uuid:00000000-0000-4000-8000-000000000001",
        "urn:uuid:00000000-0000-4000-8000-000000000002",
        "urn:uuid:00000000-0000-4000-8000-000000000003",
    )
    condition = {"resourceType": "Condition", "id": "c"}
    binding = PatientBinding.of(
        "pt-1",
        [
            _bundle((own, {"resourceType": "Patient", "id": "pt-1"}), ("urn:uuid:c", condition)),
            # pre-1.0 wrapper, unwrapped as prefetch does
            {"resource": _bundle((other, {"resourceType": "Patient", "id": "pt-2"}))},
            _bundle((anonymous, {"resourceType": "Patient"})),
            None,
            "garbage",
        ],
    )
    assert binding.reference(ref(own)) == "own"
    assert binding.reference(ref(other)) == "foreign-patient"
    assert binding.reference(ref(anonymous)) == "unbound"  # a Patient without id: not provable
    assert binding.reference(ref("urn:uuid:c")) == "unbound"  # names a Condition, not a Patient


@pytest.mark.parametrize(
    ("resource", "verdict"),
    [
        ({"resourceType": "Patient", "id": "pt-1"}, "own"),
        ({"resourceType": "Patient", "id": "pt-2"}, "foreign-patient"),
        ({"resourceType": "Patient"}, "unbound"),
        ({"resourceType": "Condition", "subject": ref("Patient/pt-1")}, "own"),
        ({"resourceType": "Condition", "subject": ref("Patient/pt-2")}, "foreign-patient"),
        ({"resourceType": "Condition"}, "unbound"),
        # The R4 link field only: a stray ``patient`` does not bind a Condition.
        ({"resourceType": "Condition", "patient": ref("Patient/pt-1")}, "unbound"),
        ({"resourceType": "Immunization", "patient": ref("Patient/pt-1")}, "own"),
        ({"resourceType": "Immunization", "patient": ref("Patient/pt-2")}, "foreign-patient"),
        ({"resourceType": "AllergyIntolerance", "patient": ref("Patient/pt-2")}, "foreign-patient"),
        ({"resourceType": "AllergyIntolerance", "subject": ref("Patient/pt-1")}, "unbound"),
        ({"resourceType": "MedicationOrder", "patient": ref("Patient/pt-2")}, "foreign-patient"),
        ({"resourceType": "NutritionOrder", "patient": ref("Patient/pt-1")}, "own"),
        ({"resourceType": "ProcedureRequest", "subject": ref("Patient/pt-1")}, "own"),
        ({"resourceType": "Encounter"}, "unbound"),
    ],
)
def test_resource_verdicts(resource: dict[str, Any], verdict: str) -> None:
    assert ME.resource(resource) == verdict


def test_every_selected_type_has_a_patient_link_that_r4_defines() -> None:
    catalog = load_catalog(REPO / "hooks", KINDS)
    selected = {t for s in catalog.services for t in s.definition.selection} - {"Patient"}
    assert selected <= set(PATIENT_LINK), "a type the rules read needs its patient link"
    for rtype, name in PATIENT_LINK.items():
        assert name in MODEL_BY_TYPE[rtype].model_fields, (rtype, name)


def prednisone(rid: str, patient: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "subject": ref(f"Patient/{patient}"),
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "312615"}]},
        **extra,
    }


def steroid(service: Service) -> RawMatcher:
    return RawMatcher((service.valuesets["gc_ingredients"], service.valuesets["gc_products"]))


def test_record_drops_other_patients_entries_before_validation(service: Service) -> None:
    own = prednisone("mine", "pt-1")
    theirs = prednisone("theirs", "pt-2")
    theirs_invalid = prednisone("theirs-bad", "pt-2", status=7)  # never validated, never read
    no_subject = {k: v for k, v in prednisone("nobody", "x").items() if k != "subject"}
    condition = {
        "resourceType": "Condition",
        "id": "c",
        "subject": ref("Patient/pt-2"),
        "code": {"coding": [{"system": ICD, "code": "M33.10"}]},
    }
    record = build_record(
        {
            "patient": [{"resourceType": "Patient", "id": "pt-2"}],
            "medications": [own, theirs, theirs_invalid, no_subject],
            "conditions": [condition],
        },
        service.selector,
        binding=ME,
        steroid=steroid(service),
    )
    assert record.patient is None
    assert [r.id for r in record.of_type(MedicationRequest)] == ["mine"]
    assert record.of_type(Condition) == []
    assert record.skipped_by_key == {
        "patient": {"foreign-patient": 1},
        "medications": {"foreign-patient": 2, "unbound": 1},
        "conditions": {"foreign-patient": 1},
    }
    assert record.unbound == {
        ("Patient", "foreign-patient"): 1,
        ("MedicationRequest", "foreign-patient"): 2,
        ("MedicationRequest", "unbound"): 1,
        ("Condition", "foreign-patient"): 1,
    }
    assert record.skipped == {}  # nothing of the patient's was unreadable
    assert record.unreadable_steroid == {}


def test_unreadable_steroid_entries_of_the_patient_are_counted_by_key(service: Service) -> None:
    med = {"resourceType": "Medication", "id": "m", "code": {"text": "prednisone 5 mg tablet"}}
    record = build_record(
        {
            "medications": [
                prednisone("bad", "pt-1", status=7),  # finding 9: one invalid field
                prednisone("ok", "pt-1"),
                # not selected (no value set of the rules names it): never validated nor counted
                prednisone(
                    "other-bad", "pt-1", status=7, medicationCodeableConcept={"text": "omeprazole"}
                ),
                # a DSTU2 order names the drug as R4 does
                {
                    "resourceType": "MedicationOrder",
                    "id": "dstu2",
                    "patient": ref("Patient/pt-1"),
                    "medicationCodeableConcept": {"text": "Prednisone 10 mg tablet"},
                },
            ],
            "statements": [
                {
                    "resourceType": "MedicationStatement",
                    "id": "s",
                    "status": "active",
                    "subject": ref("Patient/pt-1"),
                    "medicationReference": ref("Medication/m"),
                    "effectiveDateTime": "not a date",
                },
            ],
            "includes": [med],
        },
        service.selector,
        binding=ME,
        steroid=steroid(service),
    )
    assert [r.id for r in record.of_type(MedicationRequest)] == ["ok"]
    assert record.unreadable_steroid == {"medications": 2, "statements": 1}
    assert record.skipped_by_key == {
        "medications": {"invalid-r4": 1, "not-r4-type": 1},
        "statements": {"invalid-r4": 1},
    }


def test_an_unreadable_medication_counts_only_when_the_patient_references_it(
    service: Service,
) -> None:
    bad_med = {
        "resourceType": "Medication",
        "id": "m",
        "code": {"text": "prednisone"},
        "form": {"coding": 7},
    }
    theirs = prednisone("theirs", "pt-2") | {"medicationReference": ref("Medication/m")}
    del theirs["medicationCodeableConcept"]
    record = build_record(
        {"medications": [theirs, bad_med]}, service.selector, binding=ME, steroid=steroid(service)
    )
    assert record.unreadable_steroid == {}
    mine = {**theirs, "id": "mine", "subject": ref("Patient/pt-1")}
    record = build_record(
        {"medications": [mine, bad_med]}, service.selector, binding=ME, steroid=steroid(service)
    )
    assert record.unreadable_steroid == {"medications": 1}


def _drafts(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "entry": [{"resource": r} for r in resources]}


def test_a_draft_for_another_patient_is_a_400_naming_the_field_only() -> None:
    own = prednisone("d1", "pt-1")
    nutrition = {"resourceType": "NutritionOrder", "id": "n", "patient": ref("Patient/pt-secret")}
    with pytest.raises(InvalidRequest) as raised:
        check_draft_patients(_drafts(own, {"junk": 1}, nutrition), ME)
    assert raised.value.detail == (
        "draft order for another patient: context.draftOrders.entry[2].resource.patient"
    )
    assert "pt-secret" not in str(raised.value)


def test_drafts_of_the_patient_or_without_a_link_pass() -> None:
    no_subject = {k: v for k, v in prednisone("d2", "x").items() if k != "subject"}
    check_draft_patients(_drafts(prednisone("d1", "pt-1"), no_subject), ME)
    check_draft_patients(None, ME)  # not a Bundle: bundle_entries answers that one
