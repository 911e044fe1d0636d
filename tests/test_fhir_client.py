"""FHIRClient against httpx.MockTransport: status mapping, budget, paging, token and URL safety."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.fhir.client import (
    FHIRClient,
    FHIRClientConfig,
    FHIRError,
    FHIRNotAllowed,
    FHIRRefused,
    FHIRUnavailable,
    check_server,
    join_url,
)
from cds_service.fhir.urls import with_count
from cds_service.logs import SafeJSONFormatter
from cds_service.settings import Settings

pytestmark = pytest.mark.anyio

BASE = "https://ehr.test/r4"
TOKEN = "PHI-CANARY-TOKEN-9142"
PATIENT_ID = "PHI-CANARY-PATIENT-7731"

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def config(**overrides: Any) -> FHIRClientConfig:
    values: dict[str, Any] = {
        "allowed_prefixes": ("https://ehr.test", "http://127.0.0.1"),
        "allow_insecure": False,
        "timeout_s": 0.5,
        "budget_s": 1.5,
        "max_pages": 10,
        "max_entries": 5000,
        "page_size": 100,
        "max_concurrency": 16,
        "max_response_bytes": 20 * 1024 * 1024,
    }
    values.update(overrides)
    return FHIRClientConfig(**values)


def fhir(body: Any, status: int = 200, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, json=body, **kwargs)


def patient(pid: str = PATIENT_ID) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid}


def searchset(
    ids: list[str], next_url: str | None = None, rtype: str = "Condition"
) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"resource": {"resourceType": rtype, "id": i}, "search": {"mode": "match"}} for i in ids
        ],
    }
    if next_url is not None:
        bundle["link"] = [{"relation": "next", "url": next_url}]
    return bundle


class FakeServer:
    """Records every request; answers with ``handler`` (sync or async)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self.handler(request)
        if not isinstance(result, httpx.Response):
            result = await result
        return result


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., tuple[FHIRClient, FakeServer]]]:
    opened: list[httpx.AsyncClient] = []

    def make(
        handler: Handler, *, follow_redirects: bool = False, **overrides: Any
    ) -> tuple[FHIRClient, FakeServer]:
        server = FakeServer(handler)
        http = httpx.AsyncClient(
            transport=httpx.MockTransport(server), follow_redirects=follow_redirects
        )
        opened.append(http)
        return FHIRClient(http, config(**overrides)), server

    yield make
    for http in opened:
        await http.aclose()


def ids_of(bundle: dict[str, Any] | FHIRError) -> list[str]:
    assert isinstance(bundle, dict), bundle
    return [entry["resource"]["id"] for entry in bundle["entry"]]


# -- status and body mapping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, FHIRRefused), (403, FHIRRefused), (404, FHIRRefused), (410, FHIRRefused)],
)
async def test_4xx_is_refused_without_retry(make_client, status, error_type) -> None:
    client, server = make_client(lambda _r: fhir({"resourceType": "OperationOutcome"}, status))
    result = await client.fetch_all(BASE, {"patient": f"Patient/{PATIENT_ID}"}, token=TOKEN)
    error = result["patient"]
    assert isinstance(error, error_type)
    assert (error.resource_type, error.status) == ("Patient", status)
    assert str(error) == f"Patient fetch failed: {status}"
    assert len(server.requests) == 1


async def test_500_then_success_is_retried_once(make_client) -> None:
    answers = iter([fhir({}, 500), fhir(patient())])
    client, server = make_client(lambda _r: next(answers))
    result = await client.fetch_all(BASE, {"patient": f"Patient/{PATIENT_ID}"}, token=None)
    assert result["patient"] == patient()
    assert len(server.requests) == 2


async def test_503_twice_is_unavailable(make_client) -> None:
    client, server = make_client(lambda _r: fhir({}, 503))
    result = await client.fetch_all(BASE, {"patient": f"Patient/{PATIENT_ID}"}, token=None)
    error = result["patient"]
    assert isinstance(error, FHIRUnavailable)
    assert error.status == 503
    assert str(error) == "Patient fetch failed: 503"
    assert len(server.requests) == 2


async def test_no_retry_when_budget_cannot_hold_another_timeout(make_client) -> None:
    client, server = make_client(lambda _r: fhir({}, 503), timeout_s=1.0, budget_s=1.5)

    async def slow_503(_r: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.6)
        return fhir({}, 503)

    server.handler = slow_503
    result = await client.fetch_all(BASE, {"patient": "Patient/1"}, token=None)
    assert isinstance(result["patient"], FHIRUnavailable)
    assert len(server.requests) == 1


async def test_timeout_is_unavailable(make_client) -> None:
    async def hang(_r: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return fhir(patient())

    client, server = make_client(hang, timeout_s=0.2, budget_s=1.0)
    start = time.monotonic()
    result = await client.fetch_all(BASE, {"patient": "Patient/1"}, token=None)
    elapsed = time.monotonic() - start
    error = result["patient"]
    assert isinstance(error, FHIRUnavailable)
    assert error.status is None
    assert str(error) == "Patient fetch failed: timeout"
    assert len(server.requests) == 2  # one retry: 0.8 s of budget left after the first 0.2 s
    assert elapsed < 0.8


async def test_transport_timeout_and_connection_error(make_client) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Patient/1"):
            raise httpx.ReadTimeout("read timed out", request=request)
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    client, server = make_client(boom)
    result = await client.fetch_all(
        BASE, {"patient": "Patient/1", "conditions": "Condition?patient=1"}, token=TOKEN
    )
    assert str(result["patient"]) == "Patient fetch failed: timeout"
    assert str(result["conditions"]) == "Condition fetch failed: connection error"
    assert isinstance(result["conditions"], FHIRUnavailable)
    assert result["conditions"].__cause__ is None
    assert result["conditions"].__context__ is None
    assert len(server.requests) == 4


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(200, content=b"{not json"), "invalid response"),
        (
            httpx.Response(
                200,
                content=b"<html><body>Apache Tomcat Error</body></html>",
                headers={"Content-Type": "text/html"},
            ),
            "invalid response",
        ),
        (fhir(["not", "an", "object"]), "invalid response"),
        (fhir({"id": "no-resource-type"}), "invalid response"),
        (fhir({"resourceType": "Observation", "id": "wrong-type"}), "invalid response"),
        (fhir({"resourceType": "OperationOutcome", "issue": []}), "OperationOutcome"),
    ],
)
async def test_bad_bodies_are_unavailable(make_client, response, kind) -> None:
    client, server = make_client(lambda _r: response)
    result = await client.fetch_all(BASE, {"patient": "Patient/1"}, token=None)
    error = result["patient"]
    assert isinstance(error, FHIRUnavailable)
    assert error.status == 200
    assert str(error) == f"Patient fetch failed: {kind}"
    assert len(server.requests) == 1  # a bad 200 body is not retried


async def test_search_must_answer_a_bundle(make_client) -> None:
    client, _ = make_client(lambda _r: fhir(patient()))
    result = await client.fetch_all(BASE, {"c": "Condition?patient=1"}, token=None)
    assert isinstance(result["c"], FHIRUnavailable)


async def test_outcome_entries_are_dropped(make_client) -> None:
    bundle = searchset(["c1", "c2"])
    bundle["entry"].append(
        {
            "resource": {"resourceType": "OperationOutcome", "issue": []},
            "search": {"mode": "outcome"},
        }
    )
    bundle["total"] = 2
    client, _ = make_client(lambda _r: fhir(bundle))
    result = await client.fetch_all(BASE, {"c": "Condition?patient=1"}, token=None)
    assert ids_of(result["c"]) == ["c1", "c2"]
    assert result["c"]["total"] == 2
    assert "meta" not in result["c"]


async def test_operations_and_history_reads(make_client) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("$everything"):
            return fhir(searchset(["e1"], rtype="Observation"))
        return fhir(patient("1"))

    client, _ = make_client(handler)
    result = await client.fetch_all(
        BASE, {"all": "Patient/1/$everything", "v": "Patient/1/_history/2"}, token=None
    )
    assert ids_of(result["all"]) == ["e1"]
    assert result["v"] == patient("1")


@pytest.mark.parametrize("query", ["Patient/a\x00b", "Patient/../../admin", "Patient/1#x"])
async def test_unsafe_queries_are_not_sent(make_client, query) -> None:
    client, server = make_client(lambda _r: fhir(patient()))
    result = await client.fetch_all(BASE, {"p": query}, token=None)
    assert isinstance(result["p"], FHIRNotAllowed)
    assert result["p"].resource_type == "Patient"
    assert server.requests == []


# -- concurrency and budget ------------------------------------------------------------------------


async def test_queries_run_concurrently(make_client) -> None:
    delay = 0.3

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(delay)
        return fhir(searchset([request.url.path.rsplit("/", 1)[-1]]))

    client, server = make_client(slow, timeout_s=1.0, budget_s=3.0)
    queries = {f"k{i}": f"Type{chr(65 + i)}?patient=1" for i in range(5)}
    start = time.monotonic()
    result = await client.fetch_all(BASE, queries, token=None)
    elapsed = time.monotonic() - start
    assert all(isinstance(v, dict) for v in result.values())
    assert len(server.requests) == 5
    assert elapsed < 2 * delay, elapsed


async def test_every_key_is_in_flight_at_once_up_to_max_concurrency(make_client) -> None:
    in_flight = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.1)
        in_flight -= 1
        return fhir(searchset([]))

    queries = {f"k{i}": f"Condition?patient=1&k={i}" for i in range(11)}
    client, _ = make_client(slow, max_concurrency=16)
    await client.fetch_all(BASE, queries, token=None)
    assert peak == 11  # a fallback costs one round trip (plus paging), not two
    peak = 0
    client, _ = make_client(slow, max_concurrency=3)
    await client.fetch_all(BASE, queries, token=None)
    assert peak == 3


def test_default_limits_cover_the_bundled_services() -> None:
    from cds_service.catalog import load_catalog
    from cds_service.topics import KINDS

    fields = Settings.model_fields
    catalog = load_catalog(Path(__file__).resolve().parents[1] / "hooks", KINDS)
    widest = max(len(service.definition.prefetch) for service in catalog.services)
    assert fields["fhir_max_concurrency"].default >= widest
    # With a server that honours _count, the entry cap is the one that binds, not the page cap.
    pages, size = fields["fhir_max_pages"].default, fields["fhir_page_size"].default
    assert pages * size >= fields["fhir_max_entries"].default
    assert size >= 100


async def test_hung_server_ends_at_the_budget(make_client) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        if "Patient" in request.url.path:
            return fhir(patient("1"))
        await asyncio.sleep(30)
        return fhir(searchset([]))

    # timeout_s > budget_s: only the overall deadline can stop the hung search.
    client, _ = make_client(hang, timeout_s=5.0, budget_s=0.4)
    start = time.monotonic()
    result = await client.fetch_all(
        BASE, {"patient": "Patient/1", "obs": "Observation?patient=1"}, token=None
    )
    elapsed = time.monotonic() - start
    assert result["patient"] == patient("1")  # the finished key is still returned
    error = result["obs"]
    assert isinstance(error, FHIRUnavailable)
    assert str(error) == "Observation fetch failed: budget exhausted"
    assert 0.35 < elapsed < 0.9, elapsed


async def test_budget_spans_pages(make_client) -> None:
    async def slow_pages(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.15)
        page = int(request.url.params.get("page", "1"))
        return fhir(searchset([f"o{page}"], f"{BASE}/Observation?page={page + 1}"))

    client, _ = make_client(slow_pages, timeout_s=0.5, budget_s=0.5)
    start = time.monotonic()
    result = await client.fetch_all(BASE, {"obs": "Observation?patient=1"}, token=None)
    assert time.monotonic() - start < 0.9
    # The pages read before the budget ran out are kept, marked as not the whole result.
    assert ids_of(result["obs"])[:2] == ["o1", "o2"]
    assert result["obs"]["meta"]["tag"][0]["code"] == "SUBSETTED"


async def test_budget_cut_in_the_middle_of_a_page_keeps_the_pages_read(make_client) -> None:
    async def second_page_hangs(request: httpx.Request) -> httpx.Response:
        if "page" in request.url.params:
            await asyncio.sleep(30)
        return fhir(searchset(["o1"], f"{BASE}/Observation?page=2"))

    # timeout_s > budget_s: only the call's deadline can stop the hung page.
    client, _ = make_client(second_page_hangs, timeout_s=5.0, budget_s=0.3)
    result = await client.fetch_all(BASE, {"obs": "Observation?patient=1"}, token=None)
    assert ids_of(result["obs"]) == ["o1"]
    assert result["obs"]["meta"]["tag"][0]["code"] == "SUBSETTED"


# -- paging ----------------------------------------------------------------------------------------


async def test_every_search_sends_count_and_a_template_count_wins(make_client) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Patient/1"):
            return fhir(patient("1"))
        return fhir(searchset([]))

    client, server = make_client(handler, page_size=150)
    await client.fetch_all(
        BASE,
        {
            "p": "Patient/1",
            "c": "Condition?patient=1",
            "m": "MedicationRequest?patient=1&_count=5",
            "e": "Patient/1/$everything",
        },
        token=None,
    )
    counts = {
        r.url.path.rsplit("/", 1)[-1]: r.url.params.get_list("_count") for r in server.requests
    }
    assert counts == {
        "1": [],
        "Condition": ["150"],
        "MedicationRequest": ["5"],
        "$everything": ["150"],
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Condition?patient=1", "Condition?patient=1&_count=100"),
        ("Condition?patient=1&", "Condition?patient=1&_count=100"),
        ("Condition?", "Condition?_count=100"),
        ("Condition", "Condition?_count=100"),
        ("Condition?_count=5&patient=1", "Condition?_count=5&patient=1"),
        ("Condition?patient=1&_count=", "Condition?patient=1&_count="),
        # an encoded "_count=" inside a value is data, not a parameter
        ("Condition?patient=x%26_count%3D1", "Condition?patient=x%26_count%3D1&_count=100"),
    ],
)
def test_with_count(query, expected) -> None:
    assert with_count(query, 100) == expected


def paged(pages: int, rtype: str = "Condition", base: str = BASE) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        next_url = f"{base}/{rtype}?patient=1&page={page + 1}" if page < pages else None
        return fhir(searchset([f"p{page}a", f"p{page}b"], next_url, rtype))

    return handler


async def test_three_pages_are_merged(make_client) -> None:
    client, server = make_client(paged(3))
    result = await client.fetch_all(BASE, {"c": "Condition?patient=1"}, token=TOKEN)
    assert ids_of(result["c"]) == ["p1a", "p1b", "p2a", "p2b", "p3a", "p3b"]
    bundle = result["c"]
    assert isinstance(bundle, dict)
    assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "searchset")
    assert "link" not in bundle
    assert "meta" not in bundle
    assert len(server.requests) == 3
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in server.requests)


async def test_max_pages_caps_and_marks_subsetted(make_client) -> None:
    client, server = make_client(paged(5), max_pages=2)
    result = await client.fetch_all(BASE, {"c": "Condition?patient=1"}, token=None)
    assert ids_of(result["c"]) == ["p1a", "p1b", "p2a", "p2b"]
    assert result["c"]["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert len(server.requests) == 2


async def test_max_entries_caps(make_client) -> None:
    client, server = make_client(paged(5), max_entries=3)
    result = await client.fetch_all(BASE, {"c": "Condition?patient=1"}, token=None)
    assert ids_of(result["c"]) == ["p1a", "p1b", "p2a"]
    assert result["c"]["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "next_base",
    [
        "https://evil.test/r4",
        "http://ehr.test/r4",
        "https://ehr.test:8443/r4",
        "https://ehr.test.evil.com/r4",
        "https://ehr.test/other-tenant",  # same origin, another path: finding 4
        "https://ehr.test/r42",  # a prefix of the path, not on a segment boundary
        "https://ehr.test",
        "https://ehr.test/r4%2F..%2Fother-tenant",
    ],
)
async def test_next_link_outside_the_base_is_refused(make_client, next_base, caplog) -> None:
    client, server = make_client(paged(3, base=next_base))
    result = await client.fetch_all(BASE, {"c": "Condition?patient=1"}, token=TOKEN)
    # Paging stops at the link: the first page is kept, marked incomplete, and nothing is sent.
    assert ids_of(result["c"]) == ["p1a", "p1b"]
    assert result["c"]["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert len(server.requests) == 1
    assert all(r.url.path.startswith("/r4/") for r in server.requests)
    (record,) = [r for r in caplog.records if r.getMessage() == "fhir search incomplete"]
    assert record.__dict__["reason"] == "next link not allowed"
    assert next_base not in SafeJSONFormatter().format(record)


async def test_self_referencing_next_link_stops(make_client) -> None:
    bundle = searchset(["c1"], f"{BASE}/Condition?patient=1")
    client, server = make_client(lambda _r: fhir(bundle))
    result = await client.fetch_all(BASE, {"c": "Condition?patient=1"}, token=None)
    assert ids_of(result["c"]) == ["c1", "c1"]
    assert result["c"]["meta"]["tag"][0]["code"] == "SUBSETTED"  # a loop: no telling what is left
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "failure",
    [
        fhir({"resourceType": "OperationOutcome"}, 500),
        fhir({"resourceType": "OperationOutcome"}, 404),
        fhir(patient()),  # not a Bundle
        httpx.Response(200, content=b"{not json"),
    ],
    ids=["5xx", "4xx", "not-a-bundle", "not-json"],
)
async def test_a_failed_later_page_keeps_the_pages_read(
    make_client, failure: httpx.Response, caplog
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        if page == 3:
            return failure
        return fhir(searchset([f"p{page}"], f"{BASE}/Condition?patient=1&page={page + 1}"))

    client, _ = make_client(handler)
    result = await client.fetch_all(BASE, {"c": "Condition?patient=1"}, token=TOKEN)
    assert ids_of(result["c"]) == ["p1", "p2"]
    assert result["c"]["meta"]["tag"][0]["code"] == "SUBSETTED"
    (record,) = [r for r in caplog.records if r.getMessage() == "fhir search incomplete"]
    assert record.__dict__["prefetch_key"] is None  # paging does not know the key
    assert TOKEN not in SafeJSONFormatter().format(record)


def padded(page: int, size: int) -> dict[str, Any]:
    bundle = searchset([f"p{page}"], f"{BASE}/Condition?patient=1&page={page + 1}")
    bundle["entry"][0]["resource"]["note"] = [{"text": "x" * size}]
    return bundle


async def test_byte_cap_counts_all_pages_of_a_key(make_client, caplog) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return fhir(padded(int(request.url.params.get("page", "1")), 4000))

    client, server = make_client(handler, max_response_bytes=10_000)
    result = await client.fetch_all(BASE, {"c": "Condition?patient=1"}, token=None)
    # Two pages of ~4 KB fit in 10 KB; the third would not: paging stops, the key is incomplete.
    assert ids_of(result["c"]) == ["p1", "p2"]
    assert result["c"]["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert len(server.requests) == 3
    (record,) = [r for r in caplog.records if r.getMessage() == "fhir search incomplete"]
    assert record.__dict__["reason"] == "response too large"


async def test_a_first_page_over_the_byte_cap_is_an_error(make_client) -> None:
    client, server = make_client(lambda _r: fhir(padded(1, 20_000)), max_response_bytes=10_000)
    result = await client.fetch_all(BASE, {"c": "Condition?patient=1"}, token=None)
    assert isinstance(result["c"], FHIRUnavailable)
    assert str(result["c"]) == "Condition fetch failed: response too large"
    assert len(server.requests) == 1  # not retried: it would be as large again


async def test_a_failed_first_page_is_an_error(make_client) -> None:
    client, _ = make_client(lambda _r: fhir({"resourceType": "OperationOutcome"}, 404))
    result = await client.fetch_all(BASE, {"c": "Condition?patient=1"}, token=None)
    assert isinstance(result["c"], FHIRRefused)


async def test_complete_bundle_follows_a_prefetched_next_link(make_client) -> None:
    client, server = make_client(paged(3))
    prefetched = searchset(["p1a", "p1b"], f"{BASE}/Condition?patient=1&page=2")
    result = await client.complete_bundle(BASE, prefetched, token=TOKEN, resource_type="Condition")
    assert ids_of(result) == ["p1a", "p1b", "p2a", "p2b", "p3a", "p3b"]
    assert [r.url.params["page"] for r in server.requests] == ["2", "3"]


async def test_complete_bundle_without_next_link_does_no_io(make_client) -> None:
    client, server = make_client(paged(3))
    prefetched = searchset(["x"])
    result = await client.complete_bundle(
        "https://not-allowed.test", prefetched, token=None, resource_type="Condition"
    )
    assert ids_of(result) == ["x"]
    assert server.requests == []


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.test/r4/Condition?page=2", "https://ehr.test/other-tenant/Condition?page=2"],
)
async def test_complete_bundle_refuses_foreign_next_link(make_client, next_url) -> None:
    client, server = make_client(paged(3))
    prefetched = searchset(["x"], next_url)
    result = await client.complete_bundle(BASE, prefetched, token=TOKEN, resource_type="Condition")
    assert ids_of(result) == ["x"]
    assert result["meta"]["tag"][0]["code"] == "SUBSETTED"
    assert server.requests == []


async def test_read_references_dedupes_and_runs_concurrently(make_client) -> None:
    async def med(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.2)
        mid = request.url.path.rsplit("/", 1)[-1]
        if mid == "gone":
            return fhir({}, 404)
        return fhir({"resourceType": "Medication", "id": mid})

    client, server = make_client(med)
    refs = ["Medication/m1", "Medication/m2", "Medication/m1", "Medication/gone", "#contained"]
    start = time.monotonic()
    result = await client.read_references(BASE, refs, token=TOKEN)
    assert time.monotonic() - start < 0.4
    assert list(result) == ["Medication/m1", "Medication/m2", "Medication/gone", "#contained"]
    assert result["Medication/m1"] == {"resourceType": "Medication", "id": "m1"}
    assert isinstance(result["Medication/gone"], FHIRRefused)
    assert isinstance(result["#contained"], FHIRNotAllowed)
    assert sorted(r.url.path for r in server.requests) == [
        "/r4/Medication/gone",
        "/r4/Medication/m1",
        "/r4/Medication/m2",
    ]


async def test_complete_bundle_rejects_a_non_bundle(make_client) -> None:
    client, server = make_client(paged(3))
    result = await client.complete_bundle(
        BASE, {"resourceType": "OperationOutcome"}, token=None, resource_type="Condition"
    )
    assert isinstance(result, FHIRUnavailable)
    assert server.requests == []


# -- token handling --------------------------------------------------------------------------------


async def test_token_header_sent_exactly_when_given(make_client) -> None:
    client, server = make_client(lambda _r: fhir(patient()))
    await client.fetch_all(BASE, {"p": "Patient/1"}, token=TOKEN)
    await client.fetch_all("http://127.0.0.1:9999/fhir", {"p": "Patient/1"}, token=None)
    with_token, without = server.requests
    assert with_token.headers["Authorization"] == f"Bearer {TOKEN}"
    assert with_token.headers["Accept"] == "application/fhir+json"
    assert "Authorization" not in without.headers
    assert without.headers["Accept"] == "application/fhir+json"
    assert TOKEN not in repr(vars(client))


async def test_token_never_in_logs_or_errors(make_client, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="cds_service.fhir")
    calls = iter(range(100))

    def mixed(request: httpx.Request) -> httpx.Response:
        n = next(calls)
        if n % 3 == 0:
            raise httpx.ConnectError(f"{request.url} {request.headers}", request=request)
        return fhir({"resourceType": "OperationOutcome", "issue": [{"diagnostics": TOKEN}]}, 500)

    client, _ = make_client(mixed)
    result = await client.fetch_all(
        BASE,
        {"patient": f"Patient/{PATIENT_ID}", "c": f"Condition?patient={PATIENT_ID}"},
        token=TOKEN,
    )
    refs = await client.read_references(BASE, [f"Medication/{PATIENT_ID}"], token=TOKEN)
    errors = [*result.values(), *refs.values()]
    assert all(isinstance(e, FHIRError) for e in errors)
    # httpx itself logs URLs at INFO; logs.configure_logging() raises it to WARNING.
    records = [r for r in caplog.records if r.name.startswith("cds_service.fhir.")]
    formatter = SafeJSONFormatter()
    logged = "\n".join(
        [formatter.format(r) for r in records]
        + [r.getMessage() for r in records]
        + [repr(vars(r)) for r in records]
    )
    assert len(records) >= 3
    assert {r.name for r in records} >= {"cds_service.fhir.client", "cds_service.fhir.transport"}
    for text in [logged, *map(str, errors), *map(repr, errors)]:
        assert TOKEN not in text
        assert PATIENT_ID not in text
        assert "ehr.test" not in text


async def test_token_with_control_characters_is_not_sent(make_client) -> None:
    client, server = make_client(lambda _r: fhir(patient()))
    result = await client.fetch_all(BASE, {"p": "Patient/1"}, token="abc\r\nX-Evil: 1")
    assert isinstance(result["p"], FHIRNotAllowed)
    assert "abc" not in str(result["p"])
    assert server.requests == []


async def test_token_to_http_refused_unless_insecure_allowed(make_client) -> None:
    client, server = make_client(lambda _r: fhir(patient()))
    result = await client.fetch_all("http://127.0.0.1:8090/fhir", {"p": "Patient/1"}, token=TOKEN)
    assert isinstance(result["p"], FHIRNotAllowed)
    assert server.requests == []

    client, server = make_client(lambda _r: fhir(patient()), allow_insecure=True)
    result = await client.fetch_all("http://127.0.0.1:8090/fhir", {"p": "Patient/1"}, token=TOKEN)
    assert result["p"] == patient()
    assert server.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_not_allowed_server_gets_no_request(make_client) -> None:
    client, server = make_client(lambda _r: fhir(patient()))
    result = await client.fetch_all(
        "https://ehr.test.evil.com/r4", {"p": "Patient/1", "c": "Condition?x=1"}, token=TOKEN
    )
    assert all(isinstance(v, FHIRNotAllowed) for v in result.values())
    assert server.requests == []


async def test_redirects_are_not_followed(make_client) -> None:
    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://evil.test/steal"})

    client, server = make_client(redirect, follow_redirects=True)
    result = await client.fetch_all(BASE, {"p": "Patient/1"}, token=TOKEN)
    error = result["p"]
    assert isinstance(error, FHIRRefused)
    assert error.status == 302
    assert [r.url.host for r in server.requests] == ["ehr.test"]


async def test_server_cookies_are_not_sent_back(make_client) -> None:
    client, server = make_client(
        lambda _r: fhir(patient(), headers={"Set-Cookie": "session=abc; Path=/"})
    )
    await client.fetch_all(BASE, {"p": "Patient/1"}, token=None)
    await client.fetch_all(BASE, {"p": "Patient/1"}, token=None)
    assert all("Cookie" not in r.headers for r in server.requests)


# -- URL joining and allow-list --------------------------------------------------------------------


@pytest.mark.parametrize("base", ["http://mock/r4/", "http://mock/r4"])
async def test_base_path_is_kept(make_client, base) -> None:
    client, server = make_client(lambda _r: fhir(patient("123")), allowed_prefixes=("http://mock",))
    await client.fetch_all(base, {"p": "Patient/123"}, token=None)
    assert server.requests[0].url.raw_path == b"/r4/Patient/123"


@pytest.mark.parametrize(
    ("base", "relative", "expected"),
    [
        ("https://h/r4/", "Patient/123", "https://h/r4/Patient/123"),
        ("https://h/r4", "Patient/123", "https://h/r4/Patient/123"),
        ("https://h/r4/tenant/", "/Patient/1", "https://h/r4/tenant/Patient/1"),
        ("https://h", "Patient/1", "https://h/Patient/1"),
        ("https://h/", "Condition?patient=1", "https://h/Condition?patient=1"),
        (
            "https://h/fhir",
            "Observation?patient=1&code=http://loinc.org|38265-5",
            "https://h/fhir/Observation?patient=1&code=http://loinc.org|38265-5",
        ),
        (
            "https://h/fhir",
            "https://h/fhir/Observation?page=2",
            "https://h/fhir/Observation?page=2",
        ),
        (
            "https://h:443/fhir",
            "https://h/fhir/Observation?page=2",
            "https://h/fhir/Observation?page=2",
        ),
        (  # HAPI's paging links sit on the base itself
            "https://h/fhir/",
            "https://h/fhir?_getpages=abc&_getpagesoffset=20",
            "https://h/fhir?_getpages=abc&_getpagesoffset=20",
        ),
        ("https://H/fhir", "https://h/fhir/Patient/1", "https://h/fhir/Patient/1"),
    ],
)
def test_join_url(base, relative, expected) -> None:
    assert join_url(base, relative) == expected
    assert "//" not in expected.split("?", 1)[0].split("://", 1)[1]


@pytest.mark.parametrize(
    "relative",
    [
        "https://other/fhir/Observation?page=2",
        "http://h/fhir/Observation?page=2",
        "https://h:8443/fhir/Observation",
        "https://h/other-tenant/fhir/Observation?page=2",
        "https://h/fhir2/Observation?page=2",
        "https://h/Observation?page=2",
        "https://h/fhir%2F..%2Fother/Observation",
        "https://h/fhir/%2e%2e/other/Observation",
        "//other/fhir/Patient/1",
        "Patient/../../admin",
        "Patient/%2e%2e/x",
        "ftp://h/fhir/Patient/1",
    ],
)
def test_join_url_refuses(relative) -> None:
    with pytest.raises(FHIRNotAllowed):
        join_url("https://h/fhir", relative)


@pytest.mark.parametrize(
    ("base", "prefixes", "allowed"),
    [
        ("http://127.0.0.1:8090/fhir", ["http://127.0.0.1"], True),
        ("http://127.0.0.1.evil.com/fhir", ["http://127.0.0.1"], False),
        ("http://127.0.0.1@evil.com/fhir", ["http://127.0.0.1"], False),
        ("http://127.0.0.1\\@evil.com/fhir", ["http://127.0.0.1"], False),
        ("https://127.0.0.1/fhir", ["http://127.0.0.1"], False),
        ("https://ehr.test/fhir", ["https://ehr.test/fhir"], True),
        ("https://ehr.test/fhir/", ["https://ehr.test/fhir/"], True),
        ("https://ehr.test/fhir/tenant1", ["https://ehr.test/fhir"], True),
        ("https://ehr.test/fhir-evil", ["https://ehr.test/fhir"], False),
        ("https://ehr.test/other", ["https://ehr.test/fhir"], False),
        ("https://EHR.test/fhir", ["https://ehr.test"], True),
        ("https://ehr.test:8443/fhir", ["https://ehr.test:443"], False),
        ("https://ehr.test:443/fhir", ["https://ehr.test:443"], True),
        ("https://ehr.test/fhir", ["https://ehr.test:443"], True),
        ("https://ehr.test:8443/fhir", ["https://ehr.test:8443/fhir"], True),
        ("https://ehr.test/fhir?x=1", ["https://ehr.test"], False),
        ("https://ehr.test/fhir#x", ["https://ehr.test"], False),
        ("https://ehr.test/fhir/../admin", ["https://ehr.test/fhir"], False),
        ("ftp://ehr.test/fhir", ["ftp://ehr.test"], False),
        ("https://ehr.test/fhir", [], False),
        ("https://ehr.test/fhir", ["not a url"], False),
        ("not a url", ["https://ehr.test"], False),
    ],
)
def test_check_server_boundaries(base, prefixes, allowed) -> None:
    def check() -> None:
        check_server(base, allowed_prefixes=prefixes, allow_insecure=True, has_token=True)

    if allowed:
        check()
    else:
        with pytest.raises(FHIRNotAllowed):
            check()


def test_check_server_http_token_needs_allow_insecure() -> None:
    prefixes = ["http://localhost"]
    check_server(
        "http://localhost:8080/fhir",
        allowed_prefixes=prefixes,
        allow_insecure=False,
        has_token=False,
    )
    check_server(
        "http://localhost:8080/fhir", allowed_prefixes=prefixes, allow_insecure=True, has_token=True
    )
    with pytest.raises(FHIRNotAllowed):
        check_server(
            "http://localhost:8080/fhir",
            allowed_prefixes=prefixes,
            allow_insecure=False,
            has_token=True,
        )
