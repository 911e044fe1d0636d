"""Hostile inputs are bounded (issue: patient-data integrity, findings 6, 7 and 11): a deeply
nested resource is skipped, never a 500; id-like fields have length limits; a large record is
decided off the event loop so other calls keep being answered."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from cds_service import engine as engine_module
from tests.app_client import FIXTURES, app_client, make_settings

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/glucocorticoid-safety"
SEED = FIXTURES / "glucocorticoid-safety" / "seed-dermatomyositis" / "request.json"


def seed() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(SEED.read_text())
    return body


def nested(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"valueString": value} if isinstance(value, str) else {"extension": [value]}
    return value


@pytest.fixture
async def client(tmp_path: Path):
    async with app_client(make_settings(tmp_path)) as c:
        yield c


def _bundles(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in body["prefetch"].values() if isinstance(v, dict) and v.get("entry")]


async def test_a_resource_nested_254_levels_where_the_rules_never_read_is_read_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    """An extension nested 254 levels: the rules never read extensions, and a read view never
    walks a field it does not declare (fhir/views.py), so the entry is read as it is."""
    body = seed()
    baseline = (await client.post(SERVICE, json=body)).json()
    medications = body["prefetch"]["medications"]
    hostile = copy.deepcopy(medications["entry"][0]["resource"])
    hostile["id"] = "deep"
    hostile["extension"] = [nested(254)]
    medications["entry"].append({"resource": hostile})
    response = await client.post(SERVICE, json=body)
    assert response.status_code == 200, response.text
    assert [c["summary"] for c in response.json()["cards"]] == [
        c["summary"] for c in baseline["cards"]
    ]
    assert "org.example.glucocorticoid-cds.skipped-entries" not in response.json().get(
        "extension", {}
    )


async def test_a_resource_nested_254_levels_where_the_rules_read_is_skipped_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    body = seed()
    baseline = (await client.post(SERVICE, json=body)).json()
    medications = body["prefetch"]["medications"]
    hostile = copy.deepcopy(medications["entry"][0]["resource"])
    hostile["id"] = "deep"
    hostile["dosageInstruction"] = [{"text": nested(254)}]  # read: a string, not 254 levels
    medications["entry"].append({"resource": hostile})
    response = await client.post(SERVICE, json=body)
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    # The same cards, plus the record-quality card: the skipped entry names a glucocorticoid.
    assert [c["summary"] for c in cards if c["source"]["topic"]["code"] != "record-quality"] == [
        c["summary"] for c in baseline["cards"]
    ]
    assert {c["source"]["topic"]["code"] for c in cards} - {
        c["source"]["topic"]["code"] for c in baseline["cards"]
    } == {"record-quality"}
    skipped = response.json()["extension"]["org.example.glucocorticoid-cds.skipped-entries"]
    assert skipped == {"medications": {"invalid-r4": 1}}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("patientId", "p1,VICTIM&_count=1000"),
        ("patientId", "x" * 65),
        ("patientId", "a b"),
        ("patientId", 42),
        ("encounterId", "e/1"),
        ("userId", "Practitioner/" + "x" * 300),
    ],
)
async def test_context_ids_are_checked(client: httpx.AsyncClient, field: str, value: Any) -> None:
    body = seed()
    body["context"][field] = value
    response = await client.post(SERVICE, json=body)
    assert response.status_code == 400, response.text
    assert f"context.{field}" in response.text
    if isinstance(value, str) and len(value) > 8:
        assert value not in response.text, "error bodies name the field, never the value"


async def test_a_5_mb_patient_id_gives_a_small_400(client: httpx.AsyncClient) -> None:
    body = seed()
    body["context"]["patientId"] = "p" * 5_000_000
    response = await client.post(SERVICE, json=body)
    assert response.status_code == 400
    assert len(response.content) < 2_000


@pytest.mark.parametrize("field", ["hookInstance", "hook"])
async def test_long_request_fields_are_400(client: httpx.AsyncClient, field: str) -> None:
    body = seed()
    body[field] = "h" * 5_000_000
    response = await client.post(SERVICE, json=body)
    assert response.status_code == 400
    assert len(response.content) < 2_000


async def test_a_null_encounter_id_is_no_encounter(client: httpx.AsyncClient) -> None:
    body = seed()
    body["context"]["encounterId"] = None
    assert (await client.post(SERVICE, json=body)).status_code == 200


async def test_a_long_feedback_card_uuid_is_400(client: httpx.AsyncClient) -> None:
    feedback = {
        "feedback": [
            {
                "card": "c" * 1_000_000,
                "outcome": "overridden",
                "outcomeTimestamp": "2026-11-24T10:00:00Z",
            }
        ]
    }
    response = await client.post(f"{SERVICE}/feedback", json=feedback)
    assert response.status_code == 400
    assert len(response.content) < 2_000


def _padded(body: dict[str, Any], count: int, code: str = "8302-2") -> dict[str, Any]:
    """The seed plus ``count`` Observations of one LOINC ``code`` (body height by default, which
    the rules read; a code no value set holds is left out by the selection)."""
    observations = body["prefetch"].setdefault(
        "observations", {"resourceType": "Bundle", "type": "searchset", "entry": []}
    )
    for i in range(count):
        observations.setdefault("entry", []).append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": f"height-{i}",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                    "subject": {"reference": f"Patient/{body['context']['patientId']}"},
                }
            }
        )
    return body


def _with_glucocorticoid_orders(body: dict[str, Any], count: int) -> dict[str, Any]:
    """The seed plus ``count`` copies of its current prednisone order (each a course to place)."""
    entries = body["prefetch"]["medications"]["entry"]
    current = next(e for e in entries if e["resource"]["id"] == "mr-pred-4")
    for i in range(count):
        copied = copy.deepcopy(current)
        copied["resource"]["id"] = f"mr-copy-{i}"
        copied.pop("fullUrl", None)
        entries.append(copied)
    return body


@pytest.mark.parametrize(
    "heavy",
    [
        lambda: _with_glucocorticoid_orders(seed(), engine_module.OFFLOAD_MIN_MEDICATION_ENTRIES),
        lambda: _padded(seed(), engine_module.OFFLOAD_MIN_SELECTED),
        lambda: _padded(seed(), engine_module.OFFLOAD_ALL_ENTRIES, code="8867-4"),
    ],
    ids=["glucocorticoid-orders", "selected-resources", "entries"],
)
async def test_a_heavy_record_is_decided_off_the_event_loop(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, heavy: Any
) -> None:
    started, release = threading.Event(), threading.Event()
    real = engine_module.decide  # type: ignore[attr-defined]

    def held(*args: Any) -> Any:
        started.set()
        assert release.wait(10), "decide() held the event loop: /healthz could not be served"
        return real(*args)

    monkeypatch.setattr(engine_module, "decide", held)
    body = heavy()
    result: dict[str, httpx.Response] = {}

    async def call() -> None:
        result["hook"] = await client.post(SERVICE, json=body)

    async with anyio.create_task_group() as group:
        group.start_soon(call)
        await anyio.to_thread.run_sync(started.wait, 10)
        health = await client.get("/healthz")  # answered while the record is being decided
        assert health.status_code == 200
        release.set()
    assert result["hook"].status_code == 200
    assert len(result["hook"].json()["cards"]) == 4  # the seed's four topics


async def test_a_small_record_is_decided_inline(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = engine_module.decide  # type: ignore[attr-defined]

    def spy(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(engine_module, "decide", spy)
    assert (await client.post(SERVICE, json=seed())).status_code == 200
    # A large record the rules hardly read (1,000 entries of a code no value set holds, as
    # most of a real chart is) is selected and decided inline: a thread hop would cost more.
    large = _padded(seed(), 1000, code="8867-4")  # heart rate
    assert (await client.post(SERVICE, json=large)).status_code == 200
    assert threads == [threading.main_thread().name] * 2


async def test_a_prefetch_key_past_the_entry_cap_is_cut_and_said_incomplete(tmp_path: Path) -> None:
    body = _padded(seed(), 50)
    async with app_client(make_settings(tmp_path, prefetch_max_entries=20)) as c:
        response = await c.post(SERVICE, json=body)
    assert response.status_code == 200
    extension = response.json()["extension"]
    assert extension["org.example.glucocorticoid-cds.missing-data"] == ["observations"]
    bone = next(
        card
        for card in response.json()["cards"]
        if card["source"]["topic"]["code"] == "bone-health"
    )
    assert "**Check bone density, screening results and body measurements" in bone["detail"]
    assert "not read in full, so this advice may be incomplete" in bone["detail"]


async def test_20000_orders_are_answered_without_stalling_the_loop(
    client: httpx.AsyncClient,
) -> None:
    """The attack from the issue: 20,000 MedicationRequests (about 7 MB) in one key."""
    body = seed()
    patient = f"Patient/{body['context']['patientId']}"
    body["prefetch"]["medications"]["entry"] = [
        {
            "resource": {
                "resourceType": "MedicationRequest",
                "id": f"flood-{i}",
                "status": "active",
                "intent": "order",
                "subject": {"reference": patient},
                "authoredOn": "2026-01-01",
                "medicationCodeableConcept": {
                    "coding": [
                        {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "312617"}
                    ]
                },
            }
        }
        for i in range(20_000)
    ]
    assert len(json.dumps(body)) > 5_000_000
    result: dict[str, httpx.Response] = {}

    async def call() -> None:
        result["hook"] = await client.post(SERVICE, json=body)

    answered_while_busy = 0
    async with anyio.create_task_group() as group:
        group.start_soon(call)
        while "hook" not in result:
            assert (await client.get("/healthz")).status_code == 200
            answered_while_busy += 1
            await anyio.sleep(0.05)
    assert result["hook"].status_code == 200
    assert answered_while_busy > 1  # the loop kept answering while the flood was decided
    extension = result["hook"].json()["extension"]
    assert "medications" in extension["org.example.glucocorticoid-cds.missing-data"]
