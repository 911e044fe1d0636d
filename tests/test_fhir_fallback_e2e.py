"""End to end against a real FHIR server (sekmet-fhir): with no prefetch and fhirServer pointing
at it, every golden patient gets the same cards as with full prefetch."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app_client import app_client, make_settings
from tests.fhir_server import SekmetServer, fhir_server  # noqa: F401

pytestmark = [pytest.mark.anyio, pytest.mark.integration]
REPO = Path(__file__).resolve().parents[1]
CASES = sorted((REPO / "fixtures" / "glucocorticoid-safety").glob("*/request.json"))
# Cases that cannot exist on a FHIR server: it stamps meta.lastUpdated on every write, so an
# order "with no date at all" gets one there (a weak start, the upload day), unlike in prefetch.
UNDATED_ON_PURPOSE = frozenset({"active-order-without-dates"})


def _renamed(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _renamed(v, names) for k, v in node.items()}
        if isinstance(out.get("reference"), str) and out["reference"] in names:
            out["reference"] = names[out["reference"]]
        return out
    if isinstance(node, list):
        return [_renamed(v, names) for v in node]
    return node


def transaction(prefetch: dict[str, Any], case: str) -> dict[str, Any]:
    """The case's resources as PUTs; non-Patient ids get the case name, since fixtures reuse
    ids such as mr-pred-1 across cases (each case is its own synthetic record)."""
    resources: list[dict[str, Any]] = []
    for value in prefetch.values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            resources.extend(e["resource"] for e in value.get("entry", []))
        elif isinstance(value, dict):
            resources.append(value)
    names = {
        f"{r['resourceType']}/{r['id']}": f"{r['resourceType']}/{case}-{r['id']}"[:64]
        for r in resources
        if r["resourceType"] != "Patient"
    }
    renamed = [
        {
            **_renamed(r, names),
            "id": names.get(f"{r['resourceType']}/{r['id']}", f"x/{r['id']}").split("/", 1)[1],
        }
        for r in resources
    ]
    unique = {(r["resourceType"], r["id"]): r for r in renamed}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"{t}/{i}", "resource": r, "request": {"method": "PUT", "url": f"{t}/{i}"}}
            for (t, i), r in unique.items()
        ],
    }


def summary(response: httpx.Response) -> dict[str, tuple[str, tuple[str, ...]]]:
    assert response.status_code == 200, response.text
    return {
        card["source"]["topic"]["code"]: (
            card["indicator"],
            tuple(sorted(s["label"] for s in card.get("suggestions", []))),
        )
        for card in response.json()["cards"]
    }


@pytest.fixture(scope="module")
def loaded(fhir_server: SekmetServer) -> SekmetServer:  # noqa: F811
    for path in CASES:
        fhir_server.load_bundle(
            transaction(json.loads(path.read_text())["prefetch"], path.parent.name)
        )
    return fhir_server


async def test_fetched_record_gives_the_same_cards_as_prefetch(
    loaded: SekmetServer, tmp_path: Path
) -> None:
    assert len(CASES) >= 26
    expected_now = json.loads((CASES[0].parent / "expected.json").read_text())["now"]
    settings = make_settings(
        tmp_path,
        fhir_servers=["http://127.0.0.1"],
        allow_insecure_fhir=True,
        fhir_budget_s=20,
        fhir_timeout_s=10,
    )
    now = datetime.fromisoformat(expected_now)
    compared = 0
    async with app_client(settings, clock=lambda: now) as client:
        for path in CASES:
            if path.parent.name in UNDATED_ON_PURPOSE:
                continue
            body = json.loads(path.read_text())
            prefetched = summary(
                await client.post("/cds-services/glucocorticoid-safety", json=body)
            )
            del body["prefetch"]
            body["fhirServer"] = loaded.base_url
            fetched_response = await client.post("/cds-services/glucocorticoid-safety", json=body)
            fetched = summary(fetched_response)
            assert "extension" not in fetched_response.json() or not fetched_response.json()[
                "extension"
            ].get("org.example.glucocorticoid-cds.missing-data"), path.parent.name
            assert fetched == prefetched, path.parent.name
            compared += bool(prefetched)
    assert compared >= 15  # most cases have cards, so the comparison is not vacuous


async def test_try_it_page_reads_a_patient_from_the_fhir_server(
    loaded: SekmetServer, tmp_path: Path
) -> None:
    """The preview's "FHIR server and patient id" mode: no prefetch, the service reads the
    record; the explanation and the exposure chart match those of the full prefetch (resource
    ids aside: the server copy carries the case name in them)."""
    seed = next(path for path in CASES if path.parent.name == "seed-dermatomyositis")
    now = datetime.fromisoformat(json.loads((seed.parent / "expected.json").read_text())["now"])
    settings = make_settings(
        tmp_path, preview=True, fhir_servers=["http://127.0.0.1"], allow_insecure_fhir=True
    )
    body = json.loads(seed.read_text())
    fetched_body = {
        "hook": "patient-view",
        "hookInstance": "0b6f3a52-7d3e-4a8e-9f1e-2c4b5d6e7f80",
        "fhirServer": loaded.base_url,
        "context": {"patientId": body["context"]["patientId"], "userId": "Practitioner/1"},
    }

    def courses(response: httpx.Response) -> list[tuple[Any, ...]]:
        assert response.status_code == 200, response.text
        out = response.json()
        assert [line["mg"] for line in out["chart"]["lines"]] == [2.5, 7.5, 20.0, 30.0]
        return sorted(
            (c["drug"], c["start"], c["end"], c["daily_peq_mg"], c["planned"])
            for c in out["explanation"]["courses"]
        )

    async with app_client(settings, clock=lambda: now) as client:
        path = "/preview/api/explain/glucocorticoid-safety"
        prefetched = courses(await client.post(path, json=body))
        fetched = courses(await client.post(path, json=fetched_body))
    assert len(prefetched) >= 4
    assert fetched == prefetched
