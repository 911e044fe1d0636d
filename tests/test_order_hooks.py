"""Order hooks through HTTP: golden cases in fixtures/glucocorticoid-orders, spec and sandbox
shapes, live-vaccine delete actions, focus vs context drafts, no repeat from select to sign."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.catalog import build_service, load_catalog
from cds_service.errors import ContentError
from cds_service.main import create_app
from cds_service.metrics import Metrics
from cds_service.topics import KINDS
from tests.app_client import FIXTURES, NOW, REPO, SPEC, app_client, make_settings

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/glucocorticoid-orders"
CASES_DIR = FIXTURES / "glucocorticoid-orders"
CASES = sorted(p.parent for p in CASES_DIR.glob("*/expected.json"))
EXT = "org.example.glucocorticoid-cds"


def load_case(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    case = CASES_DIR / name
    return json.loads((case / "request.json").read_text()), json.loads(
        (case / "expected.json").read_text()
    )


def suggestion_keys() -> dict[tuple[str, str], str]:
    """(topic, suggestion label) -> suggestion key, from the service content."""
    service = load_catalog(REPO / "hooks", KINDS).find("glucocorticoid-orders")
    assert service is not None
    return {
        (rule.definition.topic, spec.label): key
        for rule in service.rules
        for key, spec in rule.definition.suggestions.items()
    }


def by_topic(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    topics = {c["source"]["topic"]["code"]: c for c in cards}
    assert len(topics) == len(cards), "one card per topic"
    return topics


def empty_paths(value: Any, path: str = "") -> list[str]:
    if value is None or value == "" or value == [] or value == {}:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empty_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in empty_paths(v, f"{path}[{i}]")]
    return []


def draft_refs(body: dict[str, Any]) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in body["context"]["draftOrders"]["entry"]
    }


@pytest.fixture
async def client(tmp_path: Path):
    async with app_client(make_settings(tmp_path)) as c:
        yield c


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_discovery_lists_both_order_hooks_each_under_its_own_id(
    client: httpx.AsyncClient,
) -> None:
    services = (await client.get("/cds-services")).json()["services"]
    ids = [s["id"] for s in services]
    assert len(ids) == len(set(ids)), "ids in a discovery document are unique"
    by_id = {s["id"]: s["hook"] for s in services}
    assert by_id["glucocorticoid-order-select"] == "order-select"
    assert by_id["glucocorticoid-order-sign"] == "order-sign"
    entry = next(s for s in services if s["id"] == "glucocorticoid-order-sign")
    assert entry["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert "draftOrders" not in json.dumps(entry["prefetch"])  # no prefetch token for drafts


@pytest.mark.parametrize(
    "service_id",
    ["glucocorticoid-orders", "glucocorticoid-order-select", "glucocorticoid-order-sign"],
)
async def test_every_id_of_the_order_service_answers(
    client: httpx.AsyncClient, service_id: str
) -> None:
    body, _ = load_case("pjp-prednisone-40mg-8-weeks")
    response = await client.post(f"/cds-services/{service_id}", json=body)
    assert response.status_code == 200
    assert by_topic(response)
    feedback = await client.post(f"/cds-services/{service_id}/feedback", json={"feedback": [
        {"card": response.json()["cards"][0]["uuid"], "outcome": "overridden",
         "outcomeTimestamp": "2026-11-24T10:00:00Z"}]})  # fmt: skip
    assert feedback.status_code == 200


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
async def test_golden_case_over_http(case: Path, client: httpx.AsyncClient) -> None:
    body, expected = load_case(case.name)
    assert datetime.fromisoformat(expected["now"]) == NOW
    response = await client.post(SERVICE, json=body)
    topics = by_topic(response)
    assert empty_paths(response.json()) == ([] if topics else [".cards"])  # {"cards": []}
    keys = suggestion_keys()
    assert set(topics) == set(expected["cards"]), case.name
    assert not set(expected["absent_topics"]) & set(topics)
    for topic, want in expected["cards"].items():
        card = topics[topic]
        assert card["indicator"] == want["indicator"], topic
        assert len(card["summary"]) < 140
        got = {keys[(topic, s["label"])] for s in card.get("suggestions", [])}
        assert set(want.get("suggestions", [])) <= got, topic
        assert not set(want.get("absent_suggestions", [])) & got, topic
        assert set(want.get("evidence_includes", [])) <= set(card["extension"][f"{EXT}.evidence"])


def check_resource(resource: dict[str, Any], patient: str) -> None:
    """A suggested resource an EHR can accept: R4 type, draft, intent, subject, code, dosage."""
    assert resource["status"] == "draft"
    assert resource["intent"] in ("order", "proposal", "plan")
    assert resource["subject"] == {"reference": f"Patient/{patient}"}
    if resource["resourceType"] == "MedicationRequest":
        assert resource["medicationCodeableConcept"]
        assert resource["dosageInstruction"][0]["text"]
    else:
        assert resource["resourceType"] == "ServiceRequest"
        assert resource["code"]["coding"] or resource["code"]["text"]


async def test_pjp_suggestion_is_a_ready_tmp_smx_prescription(client: httpx.AsyncClient) -> None:
    body, _ = load_case("pjp-prednisone-40mg-8-weeks")
    card = by_topic(await client.post(SERVICE, json=body))["infection-prevention"]
    assert card["selectionBehavior"] == "any"
    recommended = [s for s in card["suggestions"] if s.get("isRecommended")]
    assert len(recommended) == 1
    (action,) = recommended[0]["actions"]
    assert action["type"] == "create"
    resource = action["resource"]
    check_resource(resource, "pt-ord-pjp")
    (coding,) = resource["medicationCodeableConcept"]["coding"]
    assert (coding["system"], coding["code"]) == (
        "http://www.nlm.nih.gov/research/umls/rxnorm",
        "198335",
    )
    dosage = resource["dosageInstruction"][0]
    assert dosage["timing"]["repeat"] == {"frequency": 1, "period": 1, "periodUnit": "d"}
    assert dosage["doseAndRate"][0]["doseQuantity"]["value"] == 1
    assert dosage["doseAndRate"][0]["doseQuantity"]["code"] == "{tbl}"
    concepts = [
        a["resource"].get("code") or a["resource"]["medicationCodeableConcept"]
        for s in card["suggestions"]
        for a in s["actions"]
    ]
    codes = {c["code"] for concept in concepts for c in concept.get("coding", [])}
    assert {"198335", "71773-6", "5195-3", "16933-4", "22322-2"} <= codes
    # One PJP button (TMP-SMX); the alternatives are named in the detail with their doses.
    assert "dapsone 100 mg daily (check G6PD)" in card["detail"]
    assert "atovaquone 1,500 mg daily with food" in card["detail"]
    for suggestion in card["suggestions"]:
        for a in suggestion["actions"]:
            check_resource(a["resource"], "pt-ord-pjp")


async def test_bone_health_dxa_order_codes(client: httpx.AsyncClient) -> None:
    body, _ = load_case("bone-prednisone-10mg-6-months")
    card = by_topic(await client.post(SERVICE, json=body))["bone-health"]
    (suggestion,) = card["suggestions"]
    resource = suggestion["actions"][0]["resource"]
    check_resource(resource, "pt-ord-bone")
    assert {(c["system"], c["code"]) for c in resource["code"]["coding"]} == {
        ("http://snomed.info/sct", "312681000"),
        ("http://www.ama-assn.org/go/cpt", "77085"),
    }
    assert "6 months" in card["detail"]


@pytest.mark.parametrize(
    ("case", "target"),
    [
        ("live-vaccine-mmr-on-prednisone-30mg", "MedicationRequest/draft-mmr"),
        ("live-vaccine-varicella-with-steroid-draft", "ServiceRequest/draft-varicella"),
    ],
)
async def test_live_vaccine_is_critical_with_a_delete_action(
    client: httpx.AsyncClient, case: str, target: str
) -> None:
    body, _ = load_case(case)
    card = by_topic(await client.post(SERVICE, json=body))["live-vaccine-safety"]
    assert card["indicator"] == "critical"
    remove = next(s for s in card["suggestions"] if s.get("isRecommended"))
    assert remove["actions"] == [
        {
            "type": "delete",
            "description": remove["actions"][0]["description"],
            "resourceId": target,
        }
    ]
    assert target in draft_refs(body)


async def test_live_zoster_suggests_the_recombinant_vaccine(client: httpx.AsyncClient) -> None:
    body, _ = load_case("live-vaccine-mmr-on-prednisone-30mg")
    resource = body["context"]["draftOrders"]["entry"][0]["resource"]
    resource["id"] = "draft-zvl"
    resource["medicationCodeableConcept"] = {
        "coding": [
            {"system": "http://hl7.org/fhir/sid/cvx", "code": "121", "display": "zoster live"}
        ]
    }
    body["context"]["selections"] = ["MedicationRequest/draft-zvl"]
    card = by_topic(await client.post(SERVICE, json=body))["live-vaccine-safety"]
    resources = [a.get("resource") for s in card["suggestions"] for a in s["actions"]]
    created = [r for r in resources if r]
    assert [c["code"] for r in created for c in r["medicationCodeableConcept"]["coding"]] == ["187"]
    assert any(
        a.get("resourceId") == "MedicationRequest/draft-zvl"
        for s in card["suggestions"]
        for a in s["actions"]
    )


async def test_no_live_vaccine_card_below_the_dose_or_duration(client: httpx.AsyncClient) -> None:
    body, _ = load_case("live-vaccine-mmr-on-prednisone-30mg")
    order = body["prefetch"]["medications"]["entry"][0]["resource"]
    order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["start"] = "2026-11-15"
    order["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["end"] = "2026-11-24"
    order["authoredOn"] = "2026-11-15"  # 10 days at 30 mg ending today: below 14 days
    assert by_topic(await client.post(SERVICE, json=body)) == {}


async def test_inactive_vaccine_draft_is_not_flagged(client: httpx.AsyncClient) -> None:
    body, _ = load_case("live-vaccine-mmr-on-prednisone-30mg")
    resource = body["context"]["draftOrders"]["entry"][0]["resource"]
    resource["medicationCodeableConcept"] = {
        "coding": [
            {
                "system": "http://hl7.org/fhir/sid/cvx",
                "code": "187",
                "display": "zoster recombinant",
            }
        ]
    }
    assert by_topic(await client.post(SERVICE, json=body)) == {}


async def test_order_select_then_sign_does_not_repeat_topics(tmp_path: Path) -> None:
    clock = Clock(NOW)
    select, _ = load_case("pjp-tmp-smx-in-same-draft")
    async with app_client(make_settings(tmp_path), clock=clock) as c:
        first = by_topic(await c.post(SERVICE, json=select))
        assert set(first) == {"infection-prevention", "osteonecrosis"}
        # The sandbox re-fires order-select on every edit: it keeps showing its advice.
        again = by_topic(await c.post(SERVICE, json=select))
        assert set(again) == set(first)
        sign = copy.deepcopy(select)
        sign["hook"] = "order-sign"
        sign["hookInstance"] = "0e7f2c6a-0000-4000-8000-0000000000ff"
        del sign["context"]["selections"]
        clock.now = NOW + timedelta(minutes=5)
        response = await c.post(SERVICE, json=sign)
        assert by_topic(response) == {}
        assert response.json()["extension"][f"{EXT}.repeated-topics"] == [
            "infection-prevention",
            "osteonecrosis",
        ]
        # Past the repeat window (30 minutes in service.toml) the advice comes back.
        clock.now = NOW + timedelta(minutes=45)
        assert set(by_topic(await c.post(SERVICE, json=sign))) == set(first)


async def test_repeat_is_per_ordered_content_and_patient(tmp_path: Path) -> None:
    select, _ = load_case("pjp-prednisone-40mg-8-weeks")
    select = copy.deepcopy(select)
    select["hook"] = "order-select"
    select["context"]["selections"] = ["MedicationRequest/draft-pred-40"]
    async with app_client(make_settings(tmp_path)) as c:
        assert by_topic(await c.post(SERVICE, json=select))
        sign = copy.deepcopy(select)
        sign["hook"] = "order-sign"
        del sign["context"]["selections"]
        # Judged by what is ordered, not by the draft's id (the sandbox names every draft
        # request-123): the same order under another id is a repeat ...
        renamed = copy.deepcopy(sign)
        renamed["context"]["draftOrders"]["entry"][0]["resource"]["id"] = "draft-pred-new"
        assert by_topic(await c.post(SERVICE, json=renamed)) == {}
        # ... and a changed order (3 tablets a day instead of 2) is judged again.
        other_order = copy.deepcopy(sign)
        dose = other_order["context"]["draftOrders"]["entry"][0]["resource"]["dosageInstruction"]
        dose[0]["doseAndRate"][0]["doseQuantity"]["value"] = 3
        dose[0]["text"] = "3 tablet(s) by mouth daily for 56 days"
        assert set(by_topic(await c.post(SERVICE, json=other_order))) == {
            "infection-prevention",
            "osteonecrosis",
        }
        # The same order for another patient (their own record and drafts): shown again.
        other_patient = json.loads(
            json.dumps(sign).replace('"Patient/pt-ord-pjp"', '"Patient/pt-ord-other"')
        )
        other_patient["context"]["patientId"] = "pt-ord-other"
        other_patient["prefetch"]["patient"]["id"] = "pt-ord-other"
        assert by_topic(await c.post(SERVICE, json=other_patient))
        # Signing the order that was selected, with other orders added since: not repeated.
        extra = {
            "resourceType": "MedicationRequest",
            "id": "draft-other",
            "status": "draft",
            "subject": {"reference": "Patient/pt-ord-pjp"},
            "medicationCodeableConcept": {"text": "omeprazole 20 mg capsule"},
        }
        sign["context"]["draftOrders"]["entry"].append({"resource": extra})
        assert by_topic(await c.post(SERVICE, json=sign)) == {}


async def test_critical_live_vaccine_card_is_never_suppressed(tmp_path: Path) -> None:
    body, _ = load_case("live-vaccine-varicella-with-steroid-draft")
    async with app_client(make_settings(tmp_path)) as c:
        for _ in range(2):
            topics = by_topic(await c.post(SERVICE, json=body))
            assert topics["live-vaccine-safety"]["indicator"] == "critical"


async def test_store_outage_shows_the_card_again(tmp_path: Path) -> None:
    sign, _ = load_case("pjp-prednisone-40mg-8-weeks")
    app = create_app(make_settings(tmp_path), clock=lambda: NOW, metrics=Metrics())
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        assert by_topic(await c.post(SERVICE, json=sign))

        def broken(*_: Any) -> frozenset[tuple[str, str]]:
            raise RuntimeError("database down")

        app.state.runtime.store.recent_cards = broken
        assert set(by_topic(await c.post(SERVICE, json=sign))) == {
            "infection-prevention",
            "osteonecrosis",
        }


Mutate = Callable[[dict[str, Any]], None]


def _no_type(body: dict[str, Any]) -> None:
    body["context"]["draftOrders"].pop("type", None)


def _missing_selection(body: dict[str, Any]) -> None:
    body["hook"] = "order-select"
    body["context"]["selections"] = ["MedicationRequest/not-in-bundle"]


def _dstu2_sign(body: dict[str, Any]) -> None:
    body["hook"] = "order-sign"
    body["context"].pop("selections")


@pytest.mark.parametrize(
    ("case", "mutate", "topics"),
    [
        ("spec-order-select-example", _no_type, set()),
        ("pjp-prednisone-40mg-8-weeks", _missing_selection, set()),
        ("dstu2-medication-order", _dstu2_sign, set()),
        ("spec-order-sign-prednisone", _no_type, {"infection-prevention", "osteonecrosis"}),
    ],
)
async def test_client_shapes_never_500(
    client: httpx.AsyncClient, case: str, mutate: Mutate, topics: set[str]
) -> None:
    body, _ = load_case(case)
    mutate(body)
    assert set(by_topic(await client.post(SERVICE, json=body))) == topics


async def test_order_sign_with_an_active_entry_is_200(client: httpx.AsyncClient) -> None:
    body, _ = load_case("spec-order-sign-prednisone")
    for entry in body["context"]["draftOrders"]["entry"]:
        entry["resource"]["status"] = "active"
    assert (await client.post(SERVICE, json=body)).status_code == 200


async def test_spec_order_examples_need_no_data_and_get_no_card(
    client: httpx.AsyncClient,
) -> None:
    """The spec examples draft amoxicillin and a nutrition order: no rule can act on them, so
    their missing data (their fhirServer is not allowed here) is not an error."""
    for name in ("request-order-select-r4.COMPOSED.json", "request-order-sign-r4.COMPOSED.json"):
        body = json.loads((SPEC / name).read_text())
        response = await client.post(SERVICE, json=body)
        assert response.status_code == 200, response.text
        assert response.json()["cards"] == []


async def test_patient_view_is_400_on_the_order_service(client: httpx.AsyncClient) -> None:
    body, _ = load_case("pjp-prednisone-40mg-8-weeks")
    body["hook"] = "patient-view"
    assert (await client.post(SERVICE, json=body)).status_code == 400


def test_cli_evaluate_runs_order_hooks() -> None:
    request = CASES_DIR / "live-vaccine-mmr-on-prednisone-30mg" / "request.json"
    result = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "cds_service", "evaluate", str(request), "--now", NOW.isoformat()],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (card,) = json.loads(result.stdout)["cards"]
    assert card["indicator"] == "critical"
    actions = [a for s in card["suggestions"] for a in s["actions"]]
    assert {"type": "delete", "resourceId": "MedicationRequest/draft-mmr"}.items() <= actions[
        0
    ].items()


def test_content_refuses_a_delete_action_with_a_resource() -> None:
    path = REPO / "hooks" / "glucocorticoid-orders" / "service.toml"
    data = tomllib.loads(path.read_text())
    rule = next(r for r in data["rule"] if r["id"] == "gc-order-live-vaccine")
    rule["suggestions"]["remove"]["actions"][0]["resource"] = {"resourceType": "MedicationRequest"}
    catalog = load_catalog(REPO / "hooks", KINDS)
    with pytest.raises(ContentError, match="delete takes no resource"):
        build_service(data, "glucocorticoid-orders", catalog.valuesets, catalog.thresholds, KINDS)


async def test_no_412_when_no_rule_can_act_on_the_drafts(client: httpx.AsyncClient) -> None:
    """Only an antibiotic drafted and no prefetch: nothing is required, nothing to say."""
    body, _ = load_case("pjp-prednisone-40mg-8-weeks")
    body = copy.deepcopy(body)
    body.pop("prefetch", None)
    body.pop("fhirServer", None)
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "723",
                "display": "amoxicillin",
            }
        ],
        "text": "amoxicillin 500 mg capsule",
    }
    response = await client.post(SERVICE, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["cards"] == []
    # The same call with the glucocorticoid drafted still needs the record: 412.
    steroid, _ = load_case("pjp-prednisone-40mg-8-weeks")
    steroid = copy.deepcopy(steroid)
    steroid.pop("prefetch", None)
    steroid.pop("fhirServer", None)
    assert (await client.post(SERVICE, json=steroid)).status_code == 412
