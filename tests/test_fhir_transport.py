"""One FHIR GET (cds_service.fhir.transport): retry rule, status mapping, no chained errors."""

from __future__ import annotations

import anyio
import httpx
import pytest

from cds_service.fhir.errors import FHIRNotAllowed, FHIRRefused, FHIRUnavailable
from cds_service.fhir.transport import get_json

pytestmark = pytest.mark.anyio

URL = "https://ehr.test/r4/Patient/PHI-CANARY-PATIENT-7731"


async def _get(handler, *, timeout_s: float = 0.5, budget_s: float = 1.5, url: str = URL):
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        deadline = anyio.current_time() + budget_s
        return await get_json(
            http, url, token="tok", rtype="Patient", deadline=deadline, timeout_s=timeout_s
        )


async def test_5xx_is_retried_once_when_a_full_timeout_is_left() -> None:
    calls: list[httpx.Request] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(503)
        return httpx.Response(200, json={"resourceType": "Patient", "id": "p"})

    assert await _get(flaky) == {"resourceType": "Patient", "id": "p"}
    assert len(calls) == 2
    assert calls[1].headers["Authorization"] == "Bearer tok"


async def test_no_retry_without_a_full_timeout_left() -> None:
    calls: list[httpx.Request] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(502)

    with pytest.raises(FHIRUnavailable) as caught:
        await _get(down, timeout_s=2.0, budget_s=1.5)
    assert len(calls) == 1
    assert caught.value.status == 502


async def test_errors_carry_no_chained_exception_with_the_url() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(str(request.url), request=request)

    with pytest.raises(FHIRUnavailable) as caught:
        await _get(broken)
    assert caught.value.kind == "connection error"
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None

    with pytest.raises(FHIRUnavailable) as invalid:
        await _get(lambda _r: httpx.Response(200, content=b"<html>"))
    assert invalid.value.kind == "invalid response"
    assert invalid.value.__context__ is None


@pytest.mark.parametrize(("status", "error"), [(302, FHIRRefused), (404, FHIRRefused)])
async def test_3xx_and_4xx_are_refused(status: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        await _get(lambda _r: httpx.Response(status, json={"resourceType": "OperationOutcome"}))


async def test_operation_outcome_with_200_is_unavailable() -> None:
    with pytest.raises(FHIRUnavailable) as caught:
        await _get(lambda _r: httpx.Response(200, json={"resourceType": "OperationOutcome"}))
    assert caught.value.kind == "OperationOutcome"


async def test_no_budget_sends_nothing() -> None:
    calls: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"resourceType": "Patient"})

    with pytest.raises(FHIRUnavailable) as caught:
        await _get(record, budget_s=0.0)
    assert caught.value.kind == "budget exhausted"
    assert calls == []


async def test_unbuildable_url_is_not_allowed() -> None:
    with pytest.raises(FHIRNotAllowed):
        await _get(lambda _r: httpx.Response(200), url="https://ehr.test/r4/Patient/\x00")
