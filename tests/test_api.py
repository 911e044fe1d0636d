"""HTTP behaviour of the service as an EHR sees it: discovery, hook calls, errors, CORS, headers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.cdshooks import CDSRequest
from tests.app_client import SPEC, app_client, make_settings
from tests.requests import patient_view, steroid_prefetch

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/glucocorticoid-safety"


def empty_paths(value: Any, path: str = "") -> list[str]:
    """JSON paths holding null or an empty string, list or object (CDS Hooks "Use of JSON")."""
    if value is None or value == "" or value == [] or value == {}:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empty_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in empty_paths(v, f"{path}[{i}]")]
    return []


def card_summaries(response: httpx.Response) -> list[str]:
    return sorted(card["summary"] for card in response.json()["cards"])


def assert_outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    assert "Traceback" not in response.text
    return dict(body)


@pytest.fixture
async def client(tmp_path: Path):
    async with app_client(make_settings(tmp_path)) as c:
        yield c


async def test_discovery_lists_the_service_with_prefetch(client: httpx.AsyncClient) -> None:
    response = await client.get("/cds-services")
    assert response.status_code == 200
    body = response.json()
    (service,) = [s for s in body["services"] if s["id"] == "glucocorticoid-safety"]
    assert service["hook"] == "patient-view"
    assert service["description"]
    assert service["title"]
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert all(isinstance(v, str) for v in service["prefetch"].values())
    assert empty_paths(body) == []


async def test_hook_call_returns_three_topics_without_empty_values(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(SERVICE, json=patient_view())
    assert response.status_code == 200, response.text
    body = response.json()
    topics = {card["source"]["topic"]["code"] for card in body["cards"]}
    assert topics == {"bone-health", "osteonecrosis", "infection-prevention"}
    assert empty_paths(body) == []
    for card in body["cards"]:
        assert len(card["summary"]) < 140
        assert card["uuid"]
        assert all(s["uuid"] for s in card.get("suggestions", []))
        assert card["selectionBehavior"] == "any"
        assert {r["code"] for r in card["overrideReasons"]} >= {"already-done", "patient-declined"}
        evidence = card["extension"]["org.example.glucocorticoid-cds.evidence"]
        assert "MedicationRequest/mr-pred" in evidence
        # The detail says what to do; the course list (drug, dose, dates, source record) is in
        # the explanation (cds-service explain, tests/test_explain_cards.py).
        assert "[MedicationRequest/mr-pred]" not in card["detail"]


async def test_no_steroids_gives_no_cards(client: httpx.AsyncClient) -> None:
    prefetch = steroid_prefetch()
    prefetch["medications"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    response = await client.post(SERVICE, json=patient_view(prefetch=prefetch))
    assert response.status_code == 200
    assert response.json()["cards"] == []


@pytest.mark.parametrize(
    "path",
    sorted(SPEC.glob("request-*.json")) + sorted((SPEC / "legacy").glob("request-*.json")),
    ids=lambda p: p.name,
)
async def test_spec_request_examples_never_5xx(client: httpx.AsyncClient, path: Path) -> None:
    body = json.loads(path.read_text())
    response = await client.post(SERVICE, json=body)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_outcome(response, response.status_code)


async def test_spec_patient_view_example_is_412_when_its_server_is_not_allowed(
    client: httpx.AsyncClient,
) -> None:
    body = json.loads((SPEC / "request-patient-view.json").read_text())
    response = await client.post(SERVICE, json=body)
    outcome = assert_outcome(response, 412)
    text = outcome["issue"][0]["diagnostics"]
    assert "conditions" in text
    assert "medications" in text
    assert "hooks.smarthealthit.org" not in response.text  # keys are named, URLs never


async def test_order_hook_sent_to_patient_view_service_is_400(client: httpx.AsyncClient) -> None:
    body = json.loads((SPEC / "request-order-sign-r4.COMPOSED.json").read_text())
    assert_outcome(await client.post(SERVICE, json=body), 400)
    # The caller's hook name is not echoed (it is free text a client controls).
    body["hook"] = "Jane-Doe-1970-<script>"
    response = await client.post(SERVICE, json=body)
    assert_outcome(response, 400)
    assert "Jane" not in response.text
    assert "script" not in response.text


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["context", "hook", "hookInstance"]),
        (
            {
                "hook": "patient-view",
                "hookInstance": "x",
                "context": {"patientId": "p", "userId": "Practitioner/1"},
                "fhirAuthorization": {
                    "access_token": "SECRET-TOKEN-1",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "s",
                    "subject": "c",
                },
            },
            ["body (fhirServer is required when fhirAuthorization is present)"],
        ),
        (
            {"hook": "patient-view", "hookInstance": "x", "context": {"userId": "Practitioner/1"}},
            ["context.patientId"],
        ),
        (
            {
                "hook": "patient-view",
                "hookInstance": "x",
                "context": {"patientId": "p"},
                "fhirServer": "http://fhir.test",
                "fhirAuthorization": {
                    "access_token": "SECRET-TOKEN-1",
                    "token_type": "MAC",
                    "expires_in": 1,
                    "scope": "s",
                    "subject": "c",
                },
            },
            ["fhirAuthorization.token_type"],
        ),
        ([1, 2], ["body"]),
    ],
)
async def test_malformed_requests_are_400_with_paths_never_values(
    client: httpx.AsyncClient, body: Any, fields: list[str]
) -> None:
    response = await client.post(SERVICE, json=body)
    outcome = assert_outcome(response, 400)
    assert "SECRET-TOKEN-1" not in response.text
    diagnostics = outcome["issue"][0]["diagnostics"]
    for field in fields:
        if field != "body":
            assert field in diagnostics


async def test_too_much_feedback_says_the_limit(client: httpx.AsyncClient) -> None:
    item = {"card": "c", "outcome": "accepted", "outcomeTimestamp": "2026-11-24T05:00:00Z"}
    response = await client.post(f"{SERVICE}/feedback", json={"feedback": [item] * 1001})
    outcome = assert_outcome(response, 400)
    assert outcome["issue"][0]["diagnostics"] == (
        "invalid or missing fields: feedback (at most 1000 items)"
    )


async def test_bearer_token_type_is_case_insensitive() -> None:
    request = CDSRequest.model_validate(
        patient_view(
            fhirServer="http://fhir.test",
            fhirAuthorization={
                "access_token": "t",
                "token_type": "bearer",
                "expires_in": 300,
                "scope": "s",
                "subject": "c",
            },
        )
    )
    assert request.fhirAuthorization is not None
    assert request.fhirAuthorization.token_type == "Bearer"


async def test_unknown_fields_and_extensions_are_ignored(client: httpx.AsyncClient) -> None:
    plain = await client.post(SERVICE, json=patient_view())
    body = patient_view(foo=1, extension={"com.example.x": {"y": 1}})
    body["context"]["com.example.foo"] = 1
    extended = await client.post(SERVICE, json=body)
    assert extended.status_code == 200
    assert card_summaries(extended) == card_summaries(plain)


async def test_unknown_service_is_404(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.post("/cds-services/nope", json=patient_view()), 404)
    assert_outcome(await client.post("/cds-services/nope/feedback", json={"feedback": []}), 404)


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    response = await client.get(SERVICE)
    assert_outcome(response, 405)
    assert_outcome(await client.delete("/cds-services"), 405)


async def test_body_too_large_is_413(tmp_path: Path) -> None:
    async with app_client(make_settings(tmp_path, max_body_bytes=2048)) as c:
        body = patient_view()
        body["prefetch"]["padding"] = "x" * 5000
        assert_outcome(await c.post(SERVICE, json=body), 413)


async def test_not_json_is_415_and_garbage_json_is_400(client: httpx.AsyncClient) -> None:
    assert_outcome(
        await client.post(
            SERVICE,
            content=b"hook=patient-view",
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        415,
    )
    assert_outcome(
        await client.post(
            SERVICE,
            content=b"{not json",
            headers={"content-type": "application/json; charset=utf-8"},
        ),
        400,
    )


async def test_deeply_nested_context_is_400(client: httpx.AsyncClient) -> None:
    nested: Any = "x"
    for _ in range(200):
        nested = {"a": nested}
    body = patient_view()
    body["context"]["deep"] = nested
    assert_outcome(await client.post(SERVICE, json=body), 400)


async def test_missing_required_data_without_server_is_412(client: httpx.AsyncClient) -> None:
    body = patient_view()
    del body["prefetch"]
    outcome = assert_outcome(await client.post(SERVICE, json=body), 412)
    assert "patient" in outcome["issue"][0]["diagnostics"]


async def test_unexpected_error_is_generic_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("PHI-CANARY-PATIENT-7731 leaked in a message")

    monkeypatch.setattr("cds_service.engine.Engine.evaluate", broken)
    response = await client.post(SERVICE, json=patient_view())
    outcome = assert_outcome(response, 500)
    assert outcome["issue"][0]["diagnostics"] == "internal error"
    assert "PHI-CANARY" not in response.text


async def test_failing_rule_is_isolated_and_named(tmp_path: Path) -> None:
    from cds_service.main import create_app
    from tests.app_client import NOW

    app = create_app(make_settings(tmp_path), clock=lambda: NOW)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        runtime = app.state.runtime
        service = runtime.catalog.find("glucocorticoid-safety")

        def boom(*_: Any) -> None:
            raise ValueError("rule bug")

        rules = tuple(
            dataclasses.replace(r, kind=dataclasses.replace(r.kind, evaluate=boom))
            if r.definition.id == "gc-osteonecrosis"
            else r
            for r in service.rules
        )
        runtime.catalog = dataclasses.replace(
            runtime.catalog, services=(dataclasses.replace(service, rules=rules),)
        )
        response = await c.post(SERVICE, json=patient_view())
    assert response.status_code == 200
    body = response.json()
    assert {c["source"]["topic"]["code"] for c in body["cards"]} == {
        "bone-health",
        "infection-prevention",
    }
    assert body["extension"]["org.example.glucocorticoid-cds.failed-rules"] == ["gc-osteonecrosis"]


async def test_cors_preflight_on_every_endpoint_without_auth(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, auth="required", clients_file=tmp_path / "clients.json")
    (tmp_path / "clients.json").write_text(
        json.dumps(
            {
                "clients": [
                    {
                        "iss": "https://ehr.test",
                        "jwks": json.loads((SPEC / "jwks-public.json").read_text()),
                        "algorithms": ["ES384"],
                    }
                ]
            }
        )
    )
    origin = "https://sandbox.cds-hooks.org"
    async with app_client(settings) as c:
        for path, method in [
            ("/cds-services", "GET"),
            (SERVICE, "POST"),
            (f"{SERVICE}/feedback", "POST"),
        ]:
            response = await c.options(
                path,
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )
            assert response.status_code == 200, path
            assert response.headers["access-control-allow-origin"] == origin
            assert "POST" in response.headers["access-control-allow-methods"]
            assert "authorization" in response.headers["access-control-allow-headers"].lower()
        denied = await c.get("/cds-services", headers={"Origin": origin})
        assert denied.status_code == 401
        assert denied.headers["access-control-allow-origin"] == origin


async def test_cors_headers_on_real_post(client: httpx.AsyncClient) -> None:
    response = await client.post(
        SERVICE, json=patient_view(), headers={"Origin": "https://sandbox.cds-hooks.org"}
    )
    assert response.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
    other = await client.post(
        SERVICE, json=patient_view(), headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers


async def test_security_headers_and_no_server_banner(client: httpx.AsyncClient) -> None:
    response = await client.get("/cds-services")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "server" not in response.headers


async def test_double_slash_from_sandbox_discovery_url_is_tolerated(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/cds-services//glucocorticoid-safety", json=patient_view())
    assert response.status_code == 200


async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["storage"] == "ok"
    await client.post(SERVICE, json=patient_view())
    metrics = (await client.get("/metrics")).text
    assert "cds_calls_total" in metrics
    assert 'topic="bone-health"' in metrics
    assert "pt-api-1" not in metrics


async def test_admin_stats_needs_the_admin_token(tmp_path: Path) -> None:
    async with app_client(make_settings(tmp_path, admin_token="adm-secret")) as c:
        assert_outcome(await c.get("/admin/stats"), 401)
        assert_outcome(await c.get("/admin/stats", headers={"Authorization": "Bearer wrong"}), 401)
        await c.post(SERVICE, json=patient_view())
        response = await c.get("/admin/stats", headers={"Authorization": "Bearer adm-secret"})
        assert response.status_code == 200
        for since in ("2026-01-01", "2026-01-01T00:00:00", "2026-01-01T00:00:00+02:00"):
            dated = await c.get(
                "/admin/stats",
                params={"since": since},
                headers={"Authorization": "Bearer adm-secret"},
            )
            assert dated.status_code == 200, since
        bad = await c.get(
            "/admin/stats",
            params={"since": "last week"},
            headers={"Authorization": "Bearer adm-secret"},
        )
        assert bad.status_code == 400
        rows = response.json()["rows"]
        assert {r["topic"] for r in rows} == {
            "bone-health",
            "osteonecrosis",
            "infection-prevention",
        }


async def test_private_network_access_preflight_is_answered_for_allowed_origins(
    client: httpx.AsyncClient,
) -> None:
    """Chromium sends this preflight when a public page (the sandbox) calls localhost."""
    headers = {
        "Origin": "https://sandbox.cds-hooks.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Private-Network": "true",
    }
    response = await client.options(SERVICE, headers=headers)
    assert response.status_code == 200
    assert response.headers["access-control-allow-private-network"] == "true"
    other = await client.options(SERVICE, headers={**headers, "Origin": "https://evil.example"})
    assert other.status_code == 400  # the browser stops there: no request follows
