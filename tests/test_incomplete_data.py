"""A card says when data it judges from could not be read in full (patient-data integrity):
the paragraph names the data in plain words, only on cards whose rule reads that key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.catalog import EXPOSURE_TYPES, load_catalog, resource_types
from cds_service.topics import KINDS
from tests.app_client import FIXTURES, REPO, app_client, make_settings
from tests.content_support import edit, hooks_copy

__all__ = ["hooks_copy"]  # the fixture, imported for pytest

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/glucocorticoid-safety"
SEED = FIXTURES / "glucocorticoid-safety" / "seed-dermatomyositis" / "request.json"
PARAGRAPH = "not read in full, so this advice may be incomplete"


@pytest.mark.parametrize(
    ("template", "types"),
    [
        ("Patient/{{context.patientId}}", {"Patient"}),
        ("Condition?patient={{context.patientId}}", {"Condition"}),
        (
            "MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication",
            {"MedicationRequest", "Medication"},
        ),
    ],
)
def test_resource_types_of_a_prefetch_query(template: str, types: set[str]) -> None:
    assert resource_types(template) == types


def test_each_rule_reads_the_keys_of_its_roles_and_of_the_exposure() -> None:
    service = load_catalog(REPO / "hooks", KINDS).find("glucocorticoid-safety")
    assert service is not None
    rules = {r.definition.topic: r for r in service.rules}
    bone = set(service.keys_read(rules["bone-health"]))
    infection = set(service.keys_read(rules["infection-prevention"]))
    exposure = {"patient", "medications", "statements", "administrations", "dispenses"}
    assert exposure <= bone & infection
    assert {"conditions", "observations", "procedures"} <= bone
    assert {"immunizations", "allergies"} <= infection
    assert not {"immunizations", "allergies"} & bone
    assert "Patient" in EXPOSURE_TYPES


def seed() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(SEED.read_text())
    return body


@pytest.fixture
async def client(tmp_path: Path):
    async with app_client(make_settings(tmp_path)) as c:
        yield c


def details(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {c["source"]["topic"]["code"]: c.get("detail", "") for c in response.json()["cards"]}


async def test_a_complete_record_adds_no_paragraph(client: httpx.AsyncClient) -> None:
    assert all(
        PARAGRAPH not in d for d in details(await client.post(SERVICE, json=seed())).values()
    )


async def test_an_unpaged_bundle_is_named_on_the_cards_that_read_it(
    client: httpx.AsyncClient,
) -> None:
    body = seed()
    body["prefetch"]["immunizations"]["link"] = [
        {"relation": "next", "url": "http://fhir.test/Immunization?page=2"}
    ]
    response = await client.post(SERVICE, json=body)
    by_topic = details(response)
    assert f"**Check immunizations in the chart:** {PARAGRAPH}" in by_topic["infection-prevention"]
    assert PARAGRAPH not in by_topic["bone-health"]
    assert PARAGRAPH not in by_topic["osteonecrosis"]
    extension = response.json()["extension"]
    assert extension["org.example.glucocorticoid-cds.missing-data"] == ["immunizations"]


async def test_a_missing_medication_key_is_named_on_every_card(client: httpx.AsyncClient) -> None:
    body = seed()
    del body["prefetch"]["dispenses"]
    del body["prefetch"]["allergies"]
    by_topic = details(await client.post(SERVICE, json=body))
    assert f"**Check medication dispenses in the chart:** {PARAGRAPH}" in by_topic["bone-health"]
    assert f"**Check medication dispenses in the chart:** {PARAGRAPH}" in by_topic["osteonecrosis"]
    assert (
        f"**Check medication dispenses, allergies in the chart:** {PARAGRAPH}"
        in by_topic["infection-prevention"]
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('allergies = "allergies"\n', "", "one label for each prefetch key"),
        (
            "**Check {data} in the chart:**",
            "**Check {data} {when} in the chart:**",
            "placeholder {data}",
        ),
    ],
)
def test_content_needs_a_label_for_every_key(
    hooks_copy: Path, old: str, new: str, message: str
) -> None:
    from cds_service.errors import ContentError

    edit(hooks_copy / "glucocorticoid-safety" / "service.toml", lambda t: t.replace(old, new))
    with pytest.raises(ContentError, match=message):
        load_catalog(hooks_copy, KINDS)


async def test_another_patients_unknown_medication_does_not_make_a_key_partial(
    client: httpx.AsyncClient,
) -> None:
    """Found by the binding property test: a foreign order naming a Medication the prefetch
    does not hold made 'medications' incomplete on the patient's own cards."""
    body = seed()
    foreign = {
        "resourceType": "MedicationRequest",
        "id": "foreign-ref",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/someone-else"},
        "medicationReference": {"reference": "Medication/not-in-prefetch"},
    }
    body["prefetch"]["medications"]["entry"].append({"resource": foreign})
    response = await client.post(SERVICE, json=body)
    assert response.status_code == 200
    assert "org.example.glucocorticoid-cds.missing-data" not in response.json().get("extension", {})
    assert all(PARAGRAPH not in d for d in details(response).values())


def suggestion_labels(response: httpx.Response, topic: str) -> list[str]:
    card = next(c for c in response.json()["cards"] if c["source"]["topic"]["code"] == topic)
    return [s["label"] for s in card.get("suggestions", [])]


@pytest.mark.parametrize("unread", ["allergies", "labs"])
async def test_tmp_smx_is_not_offered_when_allergies_or_kidney_results_could_not_be_read(
    client: httpx.AsyncClient, unread: str
) -> None:
    """A one-click sulfonamide order needs the allergies (and its dose the kidney results):
    when they could not be read the button is held back and the card says why; the screening
    orders keep theirs."""
    complete = await client.post(SERVICE, json=seed())
    assert any("TMP-SMX" in label for label in suggestion_labels(complete, "infection-prevention"))
    body = seed()
    del body["prefetch"][unread]
    response = await client.post(SERVICE, json=body)
    labels = suggestion_labels(response, "infection-prevention")
    assert not any("TMP-SMX" in label for label in labels)
    assert any("interferon" in label.lower() for label in labels)
    detail = details(response)["infection-prevention"]
    assert "before ordering:** not read in full, so these have no button: Start TMP-SMX" in detail
