"""Patient ids and tokens never reach a log line, an error body or a metric label."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.app_client import LogCapture, app_client, make_settings
from tests.fake_fhir import BASE, FakeFHIR
from tests.requests import patient_view, steroid_prefetch

pytestmark = pytest.mark.anyio
PATIENT = "PHI-CANARY-PATIENT-7731"
TOKEN = "PHI-CANARY-TOKEN-9142"
SERVICE = "/cds-services/glucocorticoid-safety"


def auth() -> dict[str, Any]:
    return {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "cds",
    }


def leaks(text: str) -> list[str]:
    return [canary for canary in (PATIENT, TOKEN, "fhir.test") if canary in text]


async def test_canaries_never_leak_on_success_and_error_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fhir = FakeFHIR.from_prefetch(steroid_prefetch(PATIENT), fail={"Immunization": 500})
    bodies: list[str] = []
    with LogCapture() as logs:
        async with app_client(make_settings(tmp_path), fhir_transport=fhir.transport()) as client:
            ok = patient_view(PATIENT, fhirServer=BASE, fhirAuthorization=auth())
            del ok["prefetch"]
            success = await client.post(SERVICE, json=ok)
            assert success.status_code == 200
            assert success.json()["cards"]

            fhir.fail["Condition"] = 503
            precondition = await client.post(SERVICE, json=ok)
            assert precondition.status_code == 412
            bodies.append(precondition.text)

            invalid = patient_view(
                PATIENT, fhirServer=BASE, fhirAuthorization={**auth(), "token_type": "MAC"}
            )
            bad = await client.post(SERVICE, json=invalid)
            assert bad.status_code == 400
            bodies.append(bad.text)

            no_server = patient_view(PATIENT, fhirAuthorization=auth())
            missing = await client.post(SERVICE, json=no_server)
            assert missing.status_code == 400
            bodies.append(missing.text)

            async def broken(*_: Any, **__: Any) -> Any:
                raise RuntimeError(f"boom {PATIENT} {TOKEN}")

            monkeypatch.setattr("cds_service.engine.Engine.evaluate", broken)
            crash = await client.post(SERVICE, json=ok)
            assert crash.status_code == 500
            bodies.append(crash.text)

            feedback = await client.post(
                f"{SERVICE}/feedback",
                json={
                    "feedback": [
                        {
                            "card": PATIENT,
                            "outcome": "overridden",
                            "overrideReason": {"userComment": f"patient {PATIENT}"},
                            "outcomeTimestamp": "not a time",
                        }
                    ]
                },
            )
            assert feedback.status_code == 400
            bodies.append(feedback.text)
            bodies.append((await client.get("/metrics")).text)
    assert logs.lines, "the service logged nothing at all"
    for line in logs.lines:
        assert leaks(line) == [], line
    for body in bodies:
        assert leaks(body) == [], body


async def test_request_log_line_has_the_safe_fields(tmp_path: Path) -> None:
    with LogCapture() as logs:
        async with app_client(make_settings(tmp_path)) as client:
            response = await client.post(SERVICE, json=patient_view(PATIENT))
            assert response.status_code == 200
    answered = [line for line in logs.lines if '"http request"' in line and "{service_id}" in line]
    assert len(answered) == 1, "one log line per hook call"
    for key in (
        '"hook_instance"',
        '"service_id"',
        '"status"',
        '"duration_ms"',
        '"card_count"',
        '"prefetch_keys_provided"',
        '"prefetch_keys_fetched"',
        '"prefetch_keys_incomplete"',
        '"prefetch_keys_missing"',
    ):
        assert key in answered[0]
    assert all(leaks(line) == [] for line in logs.lines)


async def test_canaries_never_leak_when_reads_are_cut_short(tmp_path: Path) -> None:
    """Paging refused at a next link to another tenant, byte caps: logged as constant reasons
    and key names, never the URL (which holds the patient id) or the token."""
    fhir = FakeFHIR.from_prefetch(steroid_prefetch(PATIENT), page_size=1, max_page_size=1)

    async def handler(request: httpx.Request) -> httpx.Response:
        response = await fhir.handler(request)
        if not request.url.path.endswith("/Condition"):
            return response
        body = response.json()
        for link in body.get("link", []):
            link["url"] = link["url"].replace("/r4/", "/other-tenant/")
        return httpx.Response(response.status_code, json=body)

    body = patient_view(PATIENT, fhirServer=BASE, fhirAuthorization=auth())
    del body["prefetch"]
    settings = make_settings(tmp_path, fhir_max_response_bytes=2048)
    with LogCapture() as logs:
        async with app_client(settings, fhir_transport=httpx.MockTransport(handler)) as client:
            response = await client.post(SERVICE, json=body)
    assert response.status_code == 200
    assert (
        "conditions" in response.json()["extension"]["org.example.glucocorticoid-cds.missing-data"]
    )
    assert not any("other-tenant" in str(r.url) for r in fhir.requests)
    (line,) = [orjson.loads(x) for x in logs.lines if '"prefetch_keys_incomplete"' in x]
    assert "conditions" in line["prefetch_keys_incomplete"]
    assert "conditions" in line["prefetch_keys_fetched"]
    reasons = {orjson.loads(x).get("reason") for x in logs.lines if "fhir search incomplete" in x}
    assert "next link not allowed" in reasons
    for line in logs.lines:
        assert leaks(line) == [], line
        assert "other-tenant" not in line
    assert "other-tenant" not in response.text
    assert TOKEN not in response.text


def test_formatter_drops_arguments_and_exception_text() -> None:
    import logging

    from cds_service.logs import SafeJSONFormatter

    try:
        raise ValueError(f"input_value={PATIENT}")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed for %s", (PATIENT,), sys.exc_info()
        )
    record.__dict__["patient_id"] = PATIENT
    line = SafeJSONFormatter().format(record)
    assert PATIENT not in line
    assert "ValueError" in line


async def test_jwts_never_reach_logs_or_bodies(tmp_path: Path) -> None:
    from tests.jwt_client import SignedClient

    with SignedClient.start() as ehr, LogCapture() as logs:
        settings = make_settings(
            tmp_path, auth="required", clients_file=ehr.write_clients_file(tmp_path)
        )
        async with app_client(settings) as client:
            rejected = ehr.mint("http://test/cds-services/other", sub=PATIENT, tenant=TOKEN)
            accepted = ehr.mint(f"http://test{SERVICE}", sub=PATIENT)
            bad = await client.post(
                SERVICE, json=patient_view(PATIENT), headers={"Authorization": f"Bearer {rejected}"}
            )
            good = await client.post(
                SERVICE, json=patient_view(PATIENT), headers={"Authorization": f"Bearer {accepted}"}
            )
    assert bad.status_code == 401
    assert good.status_code == 200
    for line in logs.lines:
        assert rejected not in line
        assert accepted not in line
        assert rejected.split(".")[1] not in line  # not even the payload part
        assert leaks(line) == [], line
    assert leaks(bad.text) == []


async def test_unknown_service_id_never_becomes_a_metric_label(tmp_path: Path) -> None:
    async with app_client(make_settings(tmp_path)) as client:
        assert (
            await client.post(f"/cds-services/{PATIENT}", json=patient_view(PATIENT))
        ).status_code == 404
        metrics = (await client.get("/metrics")).text
    assert leaks(metrics) == []
    assert 'service="other"' in metrics
