"""Small synthetic CDS Hooks requests for API tests (clinical golden cases live in fixtures/)."""

from __future__ import annotations

from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def condition(cid: str, patient: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": ICD10, "code": code}]},
    }


def prednisone_order(
    mid: str, patient: str, start: str, end: str, tablets: float = 1
) -> dict[str, Any]:
    """Prednisone 20 mg tablets (RxNorm 312615), ``tablets`` once daily from start to end."""
    return {
        "resourceType": "MedicationRequest",
        "id": mid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": start,
        "medicationCodeableConcept": {
            "coding": [
                {"system": RXNORM, "code": "312615", "display": "prednisone 20 MG Oral Tablet"}
            ]
        },
        "dosageInstruction": [
            {
                "route": {"text": "Oral"},
                "timing": {
                    "repeat": {
                        "frequency": 1,
                        "period": 1,
                        "periodUnit": "d",
                        "boundsPeriod": {"start": start, "end": end},
                    }
                },
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": tablets,
                            "unit": "tablet",
                            "system": "http://unitsofmeasure.org",
                            "code": "{tbl}",
                        }
                    }
                ],
            }
        ],
    }


def result(oid: str, patient: str, code: str, day: str, value: float, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": day,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def steroid_prefetch(patient: str = "pt-api-1") -> dict[str, Any]:
    """A 37-year-old with dermatomyositis, both hips replaced, prednisone 20 mg daily since June.
    Her myositis follow-up is up to date (FVC and CK this autumn, HRCT on file, onset not
    recorded), so the myositis-monitoring topic stays silent and the API tests see the three
    glucocorticoid cards."""
    return {
        "patient": {
            "resourceType": "Patient",
            "id": patient,
            "birthDate": "1989-05-01",
            "gender": "female",
        },
        "conditions": bundle(
            condition("c-dm", patient, "M33.10"),
            condition("c-hips", patient, "Z96.643"),
            condition("c-avn", patient, "M87.151"),
        ),
        "medications": bundle(prednisone_order("mr-pred", patient, "2026-06-01", "2027-01-31")),
        "observations": bundle(
            result("o-fvc", patient, "19870-5", "2026-10-01", 2.9, "L"),
            result("o-ck", patient, "2157-6", "2026-11-01", 120, "U/L"),
        ),
        "procedures": bundle(
            {
                "resourceType": "Procedure",
                "id": "p-hrct",
                "status": "completed",
                "subject": {"reference": f"Patient/{patient}"},
                "code": {"coding": [{"system": SNOMED, "code": "16335031000119103"}]},
                "performedDateTime": "2025-06-01",
            }
        ),
    }


def patient_view(
    patient: str = "pt-api-1", prefetch: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/example", "patientId": patient},
        "prefetch": steroid_prefetch(patient) if prefetch is None else prefetch,
    }
    body.update(extra)
    return body
