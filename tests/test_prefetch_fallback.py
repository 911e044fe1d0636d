"""Prefetch semantics and the FHIR fallback, through the HTTP app with an in-memory FHIR server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app_client import LogCapture, app_client, make_settings
from tests.fake_fhir import BASE, FakeFHIR
from tests.requests import bundle, condition, patient_view, steroid_prefetch

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/glucocorticoid-safety"
MISSING = "org.example.glucocorticoid-cds.missing-data"
SKIPPED = "org.example.glucocorticoid-cds.skipped-entries"


def topics(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {card["source"]["topic"]["code"] for card in response.json()["cards"]}


def auth(token: str = "tok-123") -> dict[str, Any]:
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds",
    }


async def call(
    tmp_path: Path, fhir: FakeFHIR, body: dict[str, Any], **settings: Any
) -> httpx.Response:
    async with app_client(
        make_settings(tmp_path, **settings), fhir_transport=fhir.transport()
    ) as client:
        return await client.post(SERVICE, json=body)


async def test_no_prefetch_fetches_everything_and_gives_the_same_cards(tmp_path: Path) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch())
    full = await call(tmp_path, fhir, patient_view())
    assert fhir.requests == []
    body = patient_view(fhirServer=BASE + "/", fhirAuthorization=auth())
    del body["prefetch"]
    fetched = await call(tmp_path, fhir, body)
    assert (
        topics(fetched) == topics(full) == {"bone-health", "osteonecrosis", "infection-prevention"}
    )
    assert all(r.headers["authorization"] == "Bearer tok-123" for r in fhir.requests)
    paths = {r.url.path for r in fhir.requests}
    assert "/r4/Patient/pt-api-1" in paths  # base path kept, one slash, no urljoin surprises
    assert not any("//" in p for p in paths)


async def test_open_server_is_queried_without_a_token(tmp_path: Path) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch())
    body = patient_view(fhirServer=BASE)
    del body["prefetch"]
    assert topics(await call(tmp_path, fhir, body))
    assert fhir.requests
    assert all("authorization" not in r.headers for r in fhir.requests)


async def test_null_means_no_data_and_is_not_fetched_again(tmp_path: Path) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch())
    prefetch = steroid_prefetch()
    prefetch["conditions"] = None
    response = await call(tmp_path, fhir, patient_view(prefetch=prefetch, fhirServer=BASE))
    assert response.status_code == 200
    assert not any(r.url.path.endswith("/Condition") for r in fhir.requests)


@pytest.mark.parametrize(
    "value",
    [
        {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception"}]},
        "<html><body>Apache Tomcat error</body></html>",
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [
                {
                    "resource": {
                        "resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": "timeout"}],
                    },
                    "search": {"mode": "outcome"},
                }
            ],
        },
    ],
    ids=["operation-outcome", "html-garbage", "bundle-of-errors"],
)
async def test_failed_prefetch_is_fetched_instead(tmp_path: Path, value: Any) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch())
    prefetch = steroid_prefetch()
    prefetch["conditions"] = value
    response = await call(tmp_path, fhir, patient_view(prefetch=prefetch, fhirServer=BASE))
    assert "osteonecrosis" in topics(response)  # needs the conditions (prior AVN, hips)
    assert any(r.url.path.endswith("/Condition") for r in fhir.requests)


async def test_legacy_resource_wrapper_is_unwrapped(tmp_path: Path) -> None:
    prefetch = steroid_prefetch()
    prefetch["patient"] = {"response": {"status": "200 OK"}, "resource": prefetch["patient"]}
    response = await call(tmp_path, FakeFHIR([]), patient_view(prefetch=prefetch))
    assert len(topics(response)) == 3


async def test_invalid_and_non_r4_entries_are_skipped_and_the_rest_used(tmp_path: Path) -> None:
    prefetch = steroid_prefetch()
    meds = prefetch["medications"]["entry"]
    dstu2 = {"resourceType": "MedicationOrder", "id": "dstu2", "status": "active"}
    meds.append({"resource": {**dstu2, "patient": {"reference": "Patient/pt-api-1"}}})
    meds.append(
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": "broken",
                "status": "active",
                "authoredOn": "not-a-date",
                "intent": "order",
                "subject": {"reference": "Patient/pt-api-1"},
                "medicationCodeableConcept": {"text": "prednisone"},
            }
        }
    )
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(SERVICE, json=patient_view(prefetch=prefetch))
        # The three cards from the readable entries, and one saying a steroid entry was not read.
        assert topics(response) == {
            "bone-health",
            "osteonecrosis",
            "infection-prevention",
            "record-quality",
        }
        assert response.json()["extension"][SKIPPED] == {
            "medications": {"invalid-r4": 1, "not-r4-type": 1}
        }
        metrics = (await client.get("/metrics")).text
    assert 'cds_prefetch_entries_skipped_total{resource_type="MedicationOrder"} 1.0' in metrics
    assert 'cds_prefetch_entries_skipped_total{resource_type="MedicationRequest"} 1.0' in metrics


async def test_prefetched_bundle_with_next_link_is_completed(tmp_path: Path) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch(), page_size=1)
    prefetch = steroid_prefetch()
    first = prefetch["conditions"]["entry"][:1]
    prefetch["conditions"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": first,
        "link": [{"relation": "next", "url": f"{BASE}/Condition?patient=pt-api-1&_offset=1"}],
    }
    response = await call(tmp_path, fhir, patient_view(prefetch=prefetch, fhirServer=BASE))
    assert "osteonecrosis" in topics(response)
    assert sum(r.url.path.endswith("/Condition") for r in fhir.requests) >= 2


async def test_optional_key_failing_still_answers_and_says_so(tmp_path: Path) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch(), fail={"Immunization": 503})
    response = await call(tmp_path, fhir, patient_view(fhirServer=BASE))
    assert response.status_code == 200
    assert "immunizations" in response.json()["extension"][MISSING]


@pytest.mark.parametrize("status", [401, 403, 404, 500])
async def test_needed_key_failing_is_412_naming_the_key(tmp_path: Path, status: int) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch(), fail={"Condition": status})
    body = patient_view(fhirServer=BASE, fhirAuthorization=auth())
    del body["prefetch"]["conditions"]
    response = await call(tmp_path, fhir, body)
    assert response.status_code == 412
    assert "conditions" in response.json()["issue"][0]["diagnostics"]
    assert "fhir.test" not in response.text
    assert "tok-123" not in response.text


async def test_server_not_on_allow_list_is_never_contacted(tmp_path: Path) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch())
    body = patient_view(fhirServer="http://evil.test/fhir", fhirAuthorization=auth())
    del body["prefetch"]
    response = await call(tmp_path, fhir, body)
    assert response.status_code == 412
    assert fhir.requests == []


async def test_token_is_not_sent_over_plain_http_by_default(tmp_path: Path) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch())
    body = patient_view(fhirServer=BASE, fhirAuthorization=auth())
    del body["prefetch"]
    response = await call(tmp_path, fhir, body, allow_insecure_fhir=False)
    assert response.status_code == 412
    assert fhir.requests == []


async def test_slow_server_keys_are_fetched_concurrently(tmp_path: Path) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch(), delay_s=0.2)
    body = patient_view(fhirServer=BASE)
    del body["prefetch"]
    started = time.perf_counter()
    response = await call(tmp_path, fhir, body)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert len(fhir.requests) >= 10
    # 11 keys at 0.2 s each would take 2.2 s one after another.
    assert elapsed < 1.5


async def test_dead_server_answers_within_the_budget(tmp_path: Path) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch(), delay_s=30)
    body = patient_view(fhirServer=BASE)
    started = time.perf_counter()
    response = await call(tmp_path, fhir, body, fhir_timeout_s=0.2, fhir_budget_s=0.5)
    assert time.perf_counter() - started < 3
    assert response.status_code == 200
    assert "immunizations" in response.json()["extension"][MISSING]


async def test_searchset_bundle_with_zero_entries_is_data(tmp_path: Path) -> None:
    prefetch = steroid_prefetch()
    prefetch["immunizations"] = bundle()
    response = await call(tmp_path, FakeFHIR([]), patient_view(prefetch=prefetch))
    assert "immunizations" not in response.json().get("extension", {}).get(MISSING, [])


async def test_medication_references_are_read_once_each(tmp_path: Path) -> None:
    prefetch = steroid_prefetch()
    order = prefetch["medications"]["entry"][0]["resource"]
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/med-pred-20"}
    twin = {
        **order,
        "id": "mr-pred-twin",
        "medicationReference": {"reference": "Medication/med-pred-20"},
    }
    prefetch["medications"]["entry"].append({"resource": twin})
    medication = {
        "resourceType": "Medication",
        "id": "med-pred-20",
        "code": {
            "coding": [
                {
                    "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                    "code": "312615",
                    "display": "prednisone 20 MG Oral Tablet",
                }
            ]
        },
    }
    fhir = FakeFHIR([medication])
    response = await call(tmp_path, fhir, patient_view(prefetch=prefetch, fhirServer=BASE))
    assert "bone-health" in topics(response)
    reads = [r for r in fhir.requests if r.url.path.endswith("/Medication/med-pred-20")]
    assert len(reads) == 1


def long_record(filler: int = 2000) -> FakeFHIR:
    """The steroid record behind ``filler`` Conditions and ``filler`` Procedures (4,000+ entries),
    the conditions that matter last: a search cut short loses them."""
    prefetch = steroid_prefetch()
    fhir = FakeFHIR.from_prefetch(prefetch, page_size=20)  # pages at 20 unless asked otherwise
    noise = [condition(f"c-noise-{i}", "pt-api-1", "J06.9") for i in range(filler)]
    procedures = [
        {
            "resourceType": "Procedure",
            "id": f"pr-{i}",
            "status": "completed",
            "subject": {"reference": "Patient/pt-api-1"},
        }
        for i in range(filler)
    ]
    fhir.resources[:0] = noise + procedures
    return fhir


async def test_long_record_is_read_whole_with_count(tmp_path: Path) -> None:
    """Finding 3: without _count a server paging at 20 and a 10-page cap cut a 4,000-entry record
    silently. Every search now asks for fhir_page_size entries a page."""
    full = topics(await call(tmp_path, FakeFHIR([]), patient_view()))
    fhir = long_record()
    body = patient_view(fhirServer=BASE)
    del body["prefetch"]
    with LogCapture() as logs:
        response = await call(tmp_path, fhir, body)
    assert topics(response) == full
    assert MISSING not in response.json().get("extension", {})
    searches = [r for r in fhir.requests if r.url.params]
    assert searches
    assert all(r.url.params.get_list("_count") == ["100"] for r in searches)
    assert sum(r.url.path.endswith("/Condition") for r in fhir.requests) == 21  # 2,003 / 100
    (line,) = [json.loads(x) for x in logs.lines if '"prefetch_keys_fetched"' in x]
    assert line["prefetch_keys_incomplete"] == []
    assert {"conditions", "procedures"} <= set(line["prefetch_keys_fetched"])


async def test_long_record_cut_by_the_page_cap_is_said_to_be_incomplete(tmp_path: Path) -> None:
    fhir = long_record()
    fhir.max_page_size = 20  # a server that ignores larger _count values
    body = patient_view(fhirServer=BASE)
    del body["prefetch"]
    with LogCapture() as logs:
        response = await call(tmp_path, fhir, body, fhir_max_pages=10)
    assert response.status_code == 200
    assert {"conditions", "procedures"} <= set(response.json()["extension"][MISSING])
    (line,) = [json.loads(x) for x in logs.lines if '"prefetch_keys_fetched"' in x]
    # Fetched, and said to be incomplete: never reported only as fetched.
    assert {"conditions", "procedures"} <= set(line["prefetch_keys_fetched"])
    assert {"conditions", "procedures"} <= set(line["prefetch_keys_incomplete"])
    assert sum(r.url.path.endswith("/Condition") for r in fhir.requests) == 10


async def test_byte_cap_cuts_a_later_page_and_the_key_is_incomplete(tmp_path: Path) -> None:
    body = patient_view(fhirServer=BASE)
    del body["prefetch"]
    response = await call(
        tmp_path, long_record(), body, fhir_page_size=10, fhir_max_response_bytes=8 * 1024
    )
    assert response.status_code == 200
    assert {"conditions", "procedures"} <= set(response.json()["extension"][MISSING])


async def test_byte_cap_on_the_first_page_of_a_needed_key_is_412(tmp_path: Path) -> None:
    body = patient_view(fhirServer=BASE)
    del body["prefetch"]
    response = await call(tmp_path, long_record(), body, fhir_max_response_bytes=8 * 1024)
    assert response.status_code == 412
    assert "conditions" in response.json()["issue"][0]["diagnostics"]
