"""One reading of FHIR literal references (cds_service.fhir.references)."""

from __future__ import annotations

import pytest

from cds_service.fhir.references import (
    LiteralReference,
    is_resource_type,
    parse_reference,
    relative_reference,
)


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
