"""Infection-prevention rule through the API: second agents, unknown doses, course length."""

from __future__ import annotations

import pytest

from tests.app_client import app_client, make_settings
from tests.requests import RXNORM, bundle, patient_view, prednisone_order, steroid_prefetch

pytestmark = pytest.mark.anyio


def drug(mid: str, code: str, name: str) -> dict[str, object]:
    return {
        "resourceType": "MedicationRequest", "id": mid, "status": "active", "intent": "order",
        "subject": {"reference": "Patient/pt-api-1"},
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": name}]},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("code", "name", "stronger"),
    [("6851", "methotrexate", True), ("5521", "hydroxychloroquine", False)],
)
async def test_second_agent(tmp_path, code: str, name: str, stronger: bool) -> None:
    prefetch = steroid_prefetch()
    # 40 mg/day (2 x 20 mg) since October: PJP prophylaxis is due.
    prefetch["medications"] = bundle(
        prednisone_order("mr-pred", "pt-api-1", "2026-10-01", "2027-01-31", tablets=2),
        drug("mr-2", code, name),
    )
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(
            "/cds-services/glucocorticoid-safety", json=patient_view(prefetch=prefetch)
        )
    card = next(
        c
        for c in response.json()["cards"]
        if c["source"]["topic"]["code"] == "infection-prevention"
    )
    # Why the risk is higher is in the explanation (topic tests: "pjp-stronger"); the card
    # cites the second agent as evidence.
    assert (
        "MedicationRequest/mr-2" in card["extension"]["org.example.glucocorticoid-cds.evidence"]
    ) is stronger


async def test_systemic_course_with_unknown_dose_still_counts_as_long_term(tmp_path) -> None:
    prefetch = steroid_prefetch()
    order = prednisone_order("mr-sig", "pt-api-1", "2026-03-01", "2026-11-30")
    dosage = order["dosageInstruction"][0]
    del dosage["doseAndRate"]
    dosage["text"] = "as directed by rheumatology"
    prefetch["medications"] = bundle(order)
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(
            "/cds-services/glucocorticoid-safety", json=patient_view(prefetch=prefetch)
        )
    topics = {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}
    assert "bone-health" in topics
    assert (
        "MedicationRequest/mr-sig"
        in topics["bone-health"]["extension"]["org.example.glucocorticoid-cds.evidence"]
    )


@pytest.mark.parametrize(
    ("start", "end", "infection"),
    [
        ("2026-11-21", "2026-11-25", False),  # 5-day burst of 40 mg for asthma: no card
        ("2026-11-10", "2026-12-20", True),  # 40 mg for 6 weeks: PJP prophylaxis and screening
    ],
)
async def test_current_course_length_decides_infection_card(
    tmp_path, start: str, end: str, infection: bool
) -> None:
    prefetch = steroid_prefetch()
    prefetch["conditions"] = bundle()
    prefetch["medications"] = bundle(
        prednisone_order("mr-burst", "pt-api-1", start, end, tablets=2)
    )
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(
            "/cds-services/glucocorticoid-safety", json=patient_view(prefetch=prefetch)
        )
    topics = {c["source"]["topic"]["code"] for c in response.json()["cards"]}
    assert ("infection-prevention" in topics) is infection
    assert "bone-health" not in topics
