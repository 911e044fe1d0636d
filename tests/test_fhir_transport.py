"""One FHIR GET (cds_service.fhir.transport): retry rule, status mapping, no chained errors,
the byte cap on a streamed body."""

from __future__ import annotations

import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import orjson
import pytest

from cds_service.fhir.errors import FHIRNotAllowed, FHIRRefused, FHIRUnavailable
from cds_service.fhir.transport import Fetched, get_json

pytestmark = pytest.mark.anyio

URL = "https://ehr.test/r4/Patient/PHI-CANARY-PATIENT-7731"
MB = 1024 * 1024
CHUNK = 64 * 1024


async def _fetch(
    handler,
    *,
    timeout_s: float = 0.5,
    budget_s: float = 1.5,
    url: str = URL,
    max_bytes: int = 20 * MB,
) -> Fetched:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        deadline = anyio.current_time() + budget_s
        return await get_json(
            http,
            url,
            token="tok",
            rtype="Patient",
            deadline=deadline,
            timeout_s=timeout_s,
            max_bytes=max_bytes,
        )


async def _get(handler, **kwargs: Any) -> dict[str, Any]:
    return (await _fetch(handler, **kwargs)).resource


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


class Streamed:
    """A 200 response whose body is ``total`` bytes of one JSON string, yielded in 64 KB chunks
    only as they are read: ``yielded`` counts what the client pulled."""

    def __init__(self, total: int, *, declare_length: bool = False) -> None:
        self.total = total
        self.declare_length = declare_length
        self.yielded = 0
        self.requests = 0

    async def body(self) -> AsyncIterator[bytes]:
        head = b'{"resourceType": "Patient", "id": "p", "text": "'
        yield head
        self.yielded += 1
        sent = len(head)
        while sent < self.total - 2:
            chunk = b"x" * min(CHUNK, self.total - 2 - sent)
            sent += len(chunk)
            self.yielded += 1
            yield chunk
        yield b'"}'

    def __call__(self, _request: httpx.Request) -> httpx.Response:
        self.requests += 1
        headers = {"Content-Length": str(self.total)} if self.declare_length else {}
        return httpx.Response(200, content=self.body(), headers=headers)


async def test_a_body_over_the_cap_stops_reading_and_is_not_retried() -> None:
    server = Streamed(5 * MB)
    tracemalloc.start()
    try:
        with pytest.raises(FHIRUnavailable) as caught:
            await _fetch(server, max_bytes=1 * MB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.kind == "response too large"
    assert str(caught.value) == "Patient fetch failed: response too large"
    assert caught.value.__context__ is None
    assert server.requests == 1
    # About 1 MB of the 5 MB was pulled (81 chunks in all): the body was never read whole.
    assert server.yielded <= 1 * MB // CHUNK + 2
    assert peak < 3 * MB, peak


async def test_a_declared_length_over_the_cap_reads_nothing() -> None:
    server = Streamed(200 * MB, declare_length=True)
    with pytest.raises(FHIRUnavailable) as caught:
        await _fetch(server, max_bytes=1 * MB)
    assert caught.value.kind == "response too large"
    assert server.yielded == 0


async def test_a_body_under_the_cap_is_read_and_counted() -> None:
    server = Streamed(900 * 1024)
    fetched = await _fetch(server, max_bytes=1 * MB)
    assert fetched.resource["id"] == "p"
    assert fetched.size == 900 * 1024


async def test_error_bodies_are_never_read() -> None:
    server = Streamed(5 * MB)

    def refused(request: httpx.Request) -> httpx.Response:
        response = server(request)
        return httpx.Response(404, stream=response.stream)

    with pytest.raises(FHIRRefused):
        await _fetch(refused, max_bytes=1 * MB)
    assert server.yielded == 0


async def test_gzip_counts_decoded_bytes() -> None:
    import gzip

    raw = orjson.dumps({"resourceType": "Patient", "id": "p", "text": "x" * (3 * MB)})
    packed = gzip.compress(raw)
    assert len(packed) < MB // 10

    def zipped(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=packed, headers={"Content-Encoding": "gzip"})

    with pytest.raises(FHIRUnavailable) as caught:
        await _fetch(zipped, max_bytes=1 * MB)
    assert caught.value.kind == "response too large"
