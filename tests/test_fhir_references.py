"""One reading of FHIR literal references (cds_service.fhir.references)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cds_service.catalog import load_catalog
from cds_service.facts import _medication_concepts
from cds_service.fhir.references import (
    LiteralReference,
    is_resource_type,
    parse_reference,
    relative_reference,
)
from cds_service.fhir.views import Medication, MedicationRequest
from cds_service.prefetch import resolve
from cds_service.topics import KINDS

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("Medication/m1", LiteralReference("Medication", "m1")),
        ("/Medication/m1/", LiteralReference("Medication", "m1")),
        ("Medication/m1/_history/3", LiteralReference("Medication", "m1", version="3")),
        (
            "https://ehr.test/r4/Medication/m1",
            LiteralReference("Medication", "m1", base="https://ehr.test/r4"),
        ),
        (
            "https://ehr.test/r4/Medication/m1/_history/2",
            LiteralReference("Medication", "m1", version="2", base="https://ehr.test/r4"),
        ),
        ("http://ehr.test/Patient/p-1", LiteralReference("Patient", "p-1", base="http://ehr.test")),
        ("Medication/m1?_format=json", LiteralReference("Medication", "m1")),
    ],
)
def test_literal_references_name_type_and_id(ref: str, expected: LiteralReference) -> None:
    assert parse_reference(ref) == expected
    assert relative_reference(ref) == expected.relative


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "#med1",  # contained: resolved against .contained by the caller
        "urn:uuid:5b0c5e4e-5d2e-4e9f-9b0e-3d2f0c1a7e11",  # Bundle-local: needs the fullUrl map
        "urn:oid:1.2.3",
        "Medication?code=http://www.nlm.nih.gov/research/umls/rxnorm|8640",  # conditional
        "Medication",
        "fhir/medication/1",  # "medication" is not a resource type
        "https://ehr.test/Medication",  # host + type, no id
        "http://Medication/1",  # "Medication" is the host here
        "Medication/1/_history",
    ],
)
def test_references_without_type_and_id_resolve_to_nothing(ref: str) -> None:
    assert parse_reference(ref) is None
    assert relative_reference(ref) == ref, "unchanged: a lookup by Type/id then misses"


def test_resource_type_shape() -> None:
    assert is_resource_type("MedicationRequest")
    assert not is_resource_type("_history")
    assert not is_resource_type("fhir")
    assert not is_resource_type("")


# -- every caller keys references the same way ---------------------------------------------------

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
PREDNISONE_TABLET = "312615"  # a glucocorticoid product in hooks/valuesets (see test_record.py)


@pytest.mark.parametrize(
    "ref",
    [
        "Medication/m1",
        "Medication/m1/_history/4",
        "https://ehr.test/r4/Medication/m1",
        "https://ehr.test/r4/Medication/m1/_history/4",
    ],
)
def test_record_and_facts_resolve_every_reference_form(ref: str) -> None:
    service = load_catalog(REPO / "hooks", KINDS).find("glucocorticoid-safety")
    assert service is not None
    med = {
        "resourceType": "Medication",
        "id": "m1",
        "code": {"coding": [{"system": RXNORM, "code": PREDNISONE_TABLET}]},
    }
    order = {
        "resourceType": "MedicationRequest",
        "id": "r",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "medicationReference": {"reference": ref},
    }
    assert service.selector.matches(order, {"Medication/m1": med})
    concepts = _medication_concepts(
        MedicationRequest.model_validate(order), {"Medication/m1": Medication.model_validate(med)}
    )
    assert concepts[1] is not None, "the referenced Medication's code was found"


async def _wanted_reads(refs: list[str]) -> list[str]:
    class Recorder:
        def __init__(self) -> None:
            self.read: list[str] = []

        async def fetch_all(self, base: str, queries: Any, *, token: str | None) -> dict[str, Any]:
            return {}

        async def complete_bundle(self, base: str, bundle: Any, **_: Any) -> object:
            return bundle

        async def read_references(
            self, base: str, refs: Any, *, token: str | None
        ) -> dict[str, Any]:
            self.read.extend(refs)
            return {}

    orders = [
        {
            "resourceType": "MedicationRequest",
            "id": f"r{i}",
            "medicationReference": {"reference": r},
        }
        for i, r in enumerate(refs)
    ]
    recorder = Recorder()
    await resolve(
        {"medications": "MedicationRequest?patient={{context.patientId}}"},
        frozenset(),
        {"patientId": "p"},
        {"medications": {"resourceType": "Bundle", "entry": [{"resource": o} for o in orders]}},
        fhir_server="https://ehr.test/r4",
        token=None,
        fetcher=recorder,
    )
    return recorder.read


@pytest.mark.anyio
async def test_prefetch_reads_relative_medication_references_once_as_type_and_id() -> None:
    read = await _wanted_reads(
        [
            "Medication/m1",
            "Medication/m1/_history/2",
            "/Medication/m2",
            "https://other.test/fhir/Medication/m3",  # may name another server: not read
            "#contained",
            "urn:uuid:5b0c5e4e-5d2e-4e9f-9b0e-3d2f0c1a7e11",
            "Substance/s1",
        ]
    )
    assert read == ["Medication/m1", "Medication/m2"]
