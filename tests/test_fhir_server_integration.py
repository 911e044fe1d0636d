"""FHIRClient against a real FHIR R4 server (sekmet-fhir) loaded with a Synthea patient."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.fhir.client import FHIRClient, FHIRClientConfig, FHIRRefused
from tests.fhir_server import SekmetServer, fhir_server, sekmet_server  # noqa: F401

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

DATA = Path(__file__).resolve().parent / "data" / "fhir-data" / "smart-generated-sample-data-R4"
GUSTAVO = DATA / "Gustavo_Olson_ccc11b20-cd0d-4197-8b25-6a01fce1372e.json"
DXA = "http://loinc.org|38265-5"  # the code Synthea uses for DXA T-scores (fhir-data/README.md)


def _gustavo() -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(GUSTAVO.read_text())
    return bundle


@pytest.fixture(scope="module")
def gustavo(fhir_server: SekmetServer) -> tuple[dict[str, Any], str]:  # noqa: F811
    bundle = _gustavo()
    stored = fhir_server.load_bundle(bundle)
    patient_entry = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient_ref = stored[patient_entry["fullUrl"]]
    assert patient_ref == f"Patient/{patient_entry['resource']['id']}"  # ids kept by PUT
    return bundle, patient_ref.split("/", 1)[1]


def _config(base_url: str, **overrides: Any) -> FHIRClientConfig:
    values: dict[str, Any] = {
        "allowed_prefixes": (base_url.rsplit(":", 1)[0],),  # http://127.0.0.1, any port
        "allow_insecure": False,
        "timeout_s": 10.0,
        "budget_s": 30.0,
        "max_pages": 50,
        "max_entries": 5000,
    }
    values.update(overrides)
    return FHIRClientConfig(**values)


@pytest.fixture
async def recorded_http() -> AsyncIterator[tuple[httpx.AsyncClient, list[httpx.Request]]]:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        yield http, seen


def _ids(bundle: dict[str, Any], resource_type: str) -> set[str]:
    return {
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e["resource"]["resourceType"] == resource_type
    }


async def test_fetch_all_matches_the_loaded_bundle(fhir_server, gustavo, recorded_http) -> None:  # noqa: F811
    bundle, pid = gustavo
    http, seen = recorded_http
    client = FHIRClient(http, _config(fhir_server.base_url))
    expected = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    dxa_ids = {
        e["resource"]["id"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation"
        and any(c.get("code") == "38265-5" for c in e["resource"]["code"].get("coding", []))
    }
    assert expected["MedicationRequest"] > 5  # so _count=5 really pages
    assert dxa_ids

    start = time.monotonic()
    result = await client.fetch_all(
        fhir_server.base_url + "/",  # a trailing slash must not produce "//"
        {
            "patient": f"Patient/{pid}",
            "conditions": f"Condition?patient={pid}",
            "meds": f"MedicationRequest?patient={pid}&_count=5",
            "dxa": f"Observation?patient={pid}&code={DXA}",
        },
        token=None,
    )
    elapsed = time.monotonic() - start

    patient, conditions, meds, dxa = (result[k] for k in ("patient", "conditions", "meds", "dxa"))
    assert isinstance(patient, dict), patient
    assert (patient["resourceType"], patient["id"]) == ("Patient", pid)
    for found in (conditions, meds, dxa):
        assert isinstance(found, dict), found
        assert (found["resourceType"], found["type"]) == ("Bundle", "searchset")
        assert "meta" not in found  # not SUBSETTED
    assert isinstance(conditions, dict)
    assert isinstance(meds, dict)
    assert isinstance(dxa, dict)
    assert len(conditions["entry"]) == expected["Condition"]
    assert _ids(conditions, "Condition") == {
        e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition"
    }
    assert len(meds["entry"]) == expected["MedicationRequest"]
    assert len(_ids(meds, "MedicationRequest")) == expected["MedicationRequest"]
    assert _ids(dxa, "Observation") == dxa_ids

    med_pages = [r for r in seen if r.url.path.endswith("/MedicationRequest")]
    assert len(med_pages) == -(-expected["MedicationRequest"] // 5)  # ceil: every page followed
    assert all("//" not in r.url.path for r in seen)
    assert all("Authorization" not in r.headers for r in seen)
    assert elapsed < 10.0, elapsed


async def test_max_pages_against_real_paging(fhir_server, gustavo, recorded_http) -> None:  # noqa: F811
    _, pid = gustavo
    http, seen = recorded_http
    client = FHIRClient(http, _config(fhir_server.base_url, max_pages=2))
    result = await client.fetch_all(
        fhir_server.base_url, {"meds": f"MedicationRequest?patient={pid}&_count=5"}, token=None
    )
    meds = result["meds"]
    assert isinstance(meds, dict), meds
    assert len(meds["entry"]) == 10
    assert meds["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert len(seen) == 2


async def test_bearer_token_against_enforcing_server(tmp_path, recorded_http) -> None:
    token = "integration-token-5521"
    with sekmet_server(tmp_path, tokens=[token]) as server:
        server.load_bundle(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "fullUrl": "urn:uuid:pt-token-check",
                        "resource": {"resourceType": "Patient", "id": "pt-token-check"},
                        "request": {"method": "POST", "url": "Patient"},
                    }
                ],
            }
        )
        http, seen = recorded_http
        client = FHIRClient(http, _config(server.base_url, allow_insecure=True))
        ok = await client.fetch_all(server.base_url, {"p": "Patient/pt-token-check"}, token=token)
        refused = await client.fetch_all(
            server.base_url, {"p": "Patient/pt-token-check"}, token=None
        )
    assert isinstance(ok["p"], dict), ok["p"]
    assert ok["p"]["id"] == "pt-token-check"
    assert isinstance(refused["p"], FHIRRefused)
    assert refused["p"].status == 401
    assert [r.headers.get("Authorization") for r in seen] == [f"Bearer {token}", None]
