"""Cards only from the context patient's own, readable data: the integrity findings, end to end.

Finding 1: the seed request sent for another patientId gave the seed's cards (with suggestions
for ``Patient/someone-else``). Finding 2: another patient's MedicationRequest in a steroid-free
patient's prefetch gave three cards (golden case foreign-prednisone-order-ignored). Finding 9:
one invalid field on the only steroid order gave ``{"cards": []}`` and no word of it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.catalog import load_catalog
from cds_service.cdshooks import CDSRequest
from cds_service.engine import Engine, HookCall
from cds_service.errors import MissingData
from cds_service.topics import KINDS
from tests.app_client import FIXTURES, NOW, REPO, app_client, make_settings
from tests.fake_fhir import BASE, FakeFHIR

pytestmark = pytest.mark.anyio
SAFETY = "/cds-services/glucocorticoid-safety"
ORDERS = "/cds-services/glucocorticoid-orders"
SKIPPED = "org.example.glucocorticoid-cds.skipped-entries"
SEED_TOPICS = {"bone-health", "osteonecrosis", "infection-prevention", "myositis-monitoring"}


def case(service: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / service / name / "request.json").read_text())
    return body


def topics(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {card["source"]["topic"]["code"] for card in response.json()["cards"]}


def subjects_to(body: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The body with every ``"reference": old`` replaced by ``new`` (nothing else touched)."""
    out: dict[str, Any] = json.loads(
        json.dumps(body).replace(f'"reference": "{old}"', f'"reference": "{new}"')
    )
    return out


async def test_seed_for_another_patient_without_fhir_access_is_412() -> None:
    body = case("glucocorticoid-safety", "seed-dermatomyositis")
    body["context"]["patientId"] = "someone-else"
    service = load_catalog(REPO / "hooks", KINDS).find("glucocorticoid-safety")
    assert service is not None
    call = HookCall.of(CDSRequest.model_validate(body), service, NOW)
    assert call.set_aside == {"patient": "foreign-patient"}
    with pytest.raises(MissingData) as raised:
        await Engine().evaluate(call)  # no FHIR client: the set-aside key cannot be fetched
    assert raised.value.keys == ["patient"]


async def test_seed_for_another_patient_fetches_them_and_shows_none_of_the_seed(
    tmp_path: Path,
) -> None:
    body = case("glucocorticoid-safety", "seed-dermatomyositis")
    body["context"]["patientId"] = "someone-else"
    body["fhirServer"] = BASE
    fhir = FakeFHIR([{"resourceType": "Patient", "id": "someone-else", "birthDate": "1970-01-01"}])
    async with app_client(make_settings(tmp_path), fhir_transport=fhir.transport()) as client:
        response = await client.post(SAFETY, json=body)
        metrics = (await client.get("/metrics")).text
    assert topics(response) == set()
    assert "Patient/someone-else" not in response.text  # no suggestion drafted for them
    assert [r.url.path for r in fhir.requests] == ["/r4/Patient/someone-else"]
    assert response.json()["extension"][SKIPPED] == {
        "patient": {"foreign-patient": 1},
        "conditions": {"foreign-patient": 8},
        "medications": {"foreign-patient": 5},
        "observations": {"foreign-patient": 2},
        "procedures": {"foreign-patient": 3},
    }
    line = 'cds_prefetch_entries_unbound_total{reason="foreign-patient",resource_type="%s"} %s'
    assert line % ("Patient", "1.0") in metrics
    assert line % ("Condition", "8.0") in metrics


async def test_seed_still_gives_its_cards_for_its_own_patient(tmp_path: Path) -> None:
    body = case("glucocorticoid-safety", "seed-dermatomyositis")
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(SAFETY, json=body)
    assert topics(response) == SEED_TOPICS
    assert "extension" not in response.json()


async def test_foreign_medication_request_is_dropped_and_counted(tmp_path: Path) -> None:
    body = case("glucocorticoid-safety", "foreign-prednisone-order-ignored")
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(SAFETY, json=body)
        metrics = (await client.get("/metrics")).text
    # No glucocorticoid of her own: only the myositis follow-up, which applies whatever the dose.
    assert topics(response) == {"myositis-monitoring"}
    assert response.json()["extension"][SKIPPED] == {"medications": {"foreign-patient": 1}}
    assert "mr-pred-other-chart" not in response.text  # counts, never ids
    assert (
        'cds_prefetch_entries_unbound_total{reason="foreign-patient",'
        'resource_type="MedicationRequest"} 1.0'
    ) in metrics


async def test_an_unreadable_only_steroid_order_is_said_not_silent(tmp_path: Path) -> None:
    body = case("glucocorticoid-safety", "pmr-prednisone-5mg-100-days")
    async with app_client(make_settings(tmp_path)) as client:
        assert topics(await client.post(SAFETY, json=body)) == {
            "bone-health",
            "infection-prevention",
        }
        broken = copy.deepcopy(body)
        broken["prefetch"]["medications"]["entry"][0]["resource"]["status"] = 7
        response = await client.post(SAFETY, json=broken)
    assert topics(response) == {"record-quality"}
    (card,) = response.json()["cards"]
    assert card["indicator"] == "info"
    assert card["summary"].startswith("A glucocorticoid entry in the record could not be read")
    assert (
        "**Check the unreadable entries in the chart:** 1 in medication orders." in card["detail"]
    )
    assert response.json()["extension"][SKIPPED] == {"medications": {"invalid-r4": 1}}


@pytest.mark.parametrize(
    "form",
    [
        "https://ehr.example.org/fhir/Patient/pt-seed-dm",
        "Patient/pt-seed-dm/_history/4",
        "urn:uuid:5b0f0c2e-6b1d-4f0e-9a51-0d8c1d3a7e11",
    ],
)
async def test_every_reference_form_to_the_patient_binds(tmp_path: Path, form: str) -> None:
    body = subjects_to(
        case("glucocorticoid-safety", "seed-dermatomyositis"), "Patient/pt-seed-dm", form
    )
    if form.startswith("urn:"):
        # The Bundle names the patient's entry by that fullUrl (as an _include would).
        patient = body["prefetch"]["patient"]
        body["prefetch"]["conditions"]["entry"].append(
            {"fullUrl": form, "resource": patient, "search": {"mode": "include"}}
        )
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(SAFETY, json=body)
    assert topics(response) == SEED_TOPICS
    assert "extension" not in response.json()


async def test_a_urn_uuid_naming_another_patient_binds_nothing(tmp_path: Path) -> None:
    urn = "urn:uuid:5b0f0c2e-6b1d-4f0e-9a51-0d8c1d3a7e12"
    body = subjects_to(
        case("glucocorticoid-safety", "seed-dermatomyositis"), "Patient/pt-seed-dm", urn
    )
    body["prefetch"]["orders"]["entry"] = [
        {"fullUrl": urn, "resource": {"resourceType": "Patient", "id": "pt-other"}}
    ]
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(SAFETY, json=body)
    assert topics(response) == set()
    skipped = response.json()["extension"][SKIPPED]
    assert skipped["orders"] == {"foreign-patient": 1}  # the key holding pt-other: set aside
    assert skipped["medications"] == {"foreign-patient": 5}


async def test_draft_order_for_another_patient_is_400(tmp_path: Path) -> None:
    body = case("glucocorticoid-orders", "pjp-prednisone-40mg-8-weeks")
    body["context"]["draftOrders"]["entry"][0]["resource"]["subject"] = {
        "reference": "Patient/PHI-CANARY-PATIENT-7731"
    }
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(ORDERS, json=body)
        assert response.status_code == 400
        assert "PHI-CANARY" not in response.text
        issue = response.json()["issue"][0]
        assert "context.draftOrders.entry[0].resource.subject" in issue["diagnostics"]
        own = case("glucocorticoid-orders", "pjp-prednisone-40mg-8-weeks")
        assert (await client.post(ORDERS, json=own)).status_code == 200


async def test_an_unreadable_steroid_draft_is_said(tmp_path: Path) -> None:
    body = case("glucocorticoid-orders", "pjp-prednisone-40mg-8-weeks")
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["authoredOn"] = "not a date"
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(ORDERS, json=body)
    assert "record-quality" in topics(response)
    (card,) = [
        c for c in response.json()["cards"] if c["source"]["topic"]["code"] == "record-quality"
    ]
    assert "**Check the orders being written:** 1 could not be read" in card["detail"]
    assert "unreadable entries" not in card["detail"]
    assert response.json()["extension"][SKIPPED] == {"context.draftOrders": {"invalid-r4": 1}}
