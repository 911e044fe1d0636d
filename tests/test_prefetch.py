"""prefetch.interpret: each kind of prefetch value, as the table in cds_service/prefetch.py says;
render_template: context values encoded so they keep their meaning in a FHIR URL."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import pytest

from cds_service.errors import MissingData
from cds_service.fhir.client import (
    FHIRClient,
    FHIRClientConfig,
    FHIRNotAllowed,
    FHIRRefused,
    FHIRUnavailable,
)
from cds_service.fhir.urls import join_url, with_count
from cds_service.prefetch import interpret, render_template, resolve

PATIENT = {"resourceType": "Patient", "id": "p"}
CONDITION = {"resourceType": "Condition", "id": "c"}
ERROR = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "x"}]}
WARNING = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "x"}]}
NEXT = [{"relation": "next", "url": "https://ehr.test/r4/Condition?page=2"}]


def bundle(*resources: Any, link: Any = None) -> dict[str, Any]:
    value: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    value["entry"] = [{"resource": r} for r in resources]
    if link is not None:
        value["link"] = link
    return value


@pytest.mark.parametrize(
    ("value", "state", "resources"),
    [
        (None, "null", []),
        (ERROR, "absent", []),
        ("<html>login</html>", "absent", []),
        ({"no": "resourceType"}, "absent", []),
        (bundle(ERROR), "absent", []),  # a Bundle of nothing but an error: the fetch failed
        (bundle(WARNING), "data", []),  # only a warning: an empty result
        (bundle(), "data", []),
        ({"response": {"status": "200 OK"}, "resource": PATIENT}, "data", [PATIENT]),
        (PATIENT, "data", [PATIENT]),
        (bundle(CONDITION, ERROR, {"no": "type"}), "data", [CONDITION]),
        ({**bundle(), "entry": ["junk", {"resource": CONDITION}]}, "data", [CONDITION]),
    ],
)
def test_each_kind_of_value(value: Any, state: str, resources: list[dict[str, Any]]) -> None:
    got_state, got_resources, to_page = interpret(value)
    assert (got_state, got_resources, to_page) == (state, resources, None)


def test_bundle_with_a_next_link_is_returned_for_paging() -> None:
    value = bundle(CONDITION, link=NEXT)
    state, resources, to_page = interpret(value)
    assert (state, resources) == ("data", [CONDITION])
    assert to_page == value
    assert resources[0] is CONDITION, "JSON dicts are read, not copied"


@pytest.mark.parametrize(
    "link",
    [
        [{"relation": "self", "url": "https://ehr.test/r4/Condition"}],
        [{"relation": "next", "url": ""}],
        [{"relation": "next"}],
        "next",
    ],
)
def test_no_usable_next_link_means_nothing_to_page(link: Any) -> None:
    assert interpret(bundle(CONDITION, link=link))[2] is None


# -- rendering for fetching (finding 5: patientId went into search URLs unescaped) ---------------

BASE = "https://ehr.test/r4"
HOSTILE = ["p1,VICTIM&_count=1000", "p1#frag", "p 1", "p1|x$y\\z", "p1&patient=VICTIM", "p1?x=1"]


@pytest.mark.parametrize("patient_id", HOSTILE)
def test_a_search_value_keeps_its_meaning(patient_id: str) -> None:
    rendered = render_template("Condition?patient={{context.patientId}}", {"patientId": patient_id})
    assert rendered is not None
    url = httpx.URL(join_url(BASE, with_count(rendered, 100), resource_type="Condition"))
    assert url.path == "/r4/Condition"
    assert url.fragment == ""
    # One patient parameter, the page size the service chose, nothing else.
    assert [name for name, _ in url.params.multi_items()] == ["patient", "_count"]
    assert url.params["_count"] == "100"
    # What the server reads, after FHIR unescaping, is the id as sent: never an OR of two ids.
    value = url.params["patient"]
    assert re.sub(r"\\(.)", r"\1", value) == patient_id
    assert not re.search(r"(?<!\\)[,|$]", value)


@pytest.mark.parametrize("patient_id", [*HOSTILE, "p1/../../admin"])
def test_a_path_value_stays_one_segment(patient_id: str) -> None:
    rendered = render_template("Patient/{{context.patientId}}", {"patientId": patient_id})
    assert rendered is not None
    assert rendered.count("/") == 1
    assert "?" not in rendered
    assert "#" not in rendered


def test_an_id_with_encoded_slashes_cannot_climb_out_of_the_base() -> None:
    rendered = render_template("Patient/{{context.patientId}}", {"patientId": "x/../../admin"})
    assert rendered is not None
    with pytest.raises(FHIRNotAllowed):
        join_url(BASE, rendered, resource_type="Patient")


def test_plain_ids_and_user_tokens_are_unchanged() -> None:
    context = {"patientId": "pt-1.A_b~c", "userId": "Practitioner/dr-9"}
    assert render_template("Patient/{{context.patientId}}", context) == "Patient/pt-1.A_b~c"
    assert (
        render_template("Condition?patient={{context.patientId}}&x={{userPractitionerId}}", context)
        == "Condition?patient=pt-1.A_b~c&x=dr-9"
    )


@pytest.mark.anyio
async def test_fetched_searches_send_the_id_as_one_value() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "/Patient/" in request.url.path:
            return httpx.Response(404, json={"resourceType": "OperationOutcome"})
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})

    config = FHIRClientConfig(
        allowed_prefixes=(BASE,),
        allow_insecure=False,
        timeout_s=1.0,
        budget_s=2.0,
        max_pages=5,
        max_entries=100,
        page_size=100,
        max_concurrency=16,
        max_response_bytes=1024 * 1024,
    )
    templates = {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "meds": "MedicationRequest?patient={{context.patientId}}&_count=20",
    }
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        result = await resolve(
            templates,
            frozenset(),
            {"patientId": "p1,VICTIM&_count=1000"},
            None,
            fhir_server=BASE,
            token="tok",
            fetcher=FHIRClient(http, config),
        )
    searches = [r for r in seen if r.url.params]
    assert len(searches) == 2
    for request in searches:
        assert request.url.params.get_list("patient") == ["p1\\,VICTIM&_count=1000"]
        assert request.url.params.get_list("_count") in (["100"], ["20"])
    (read,) = [r for r in seen if not r.url.params]
    assert read.url.raw_path == b"/r4/Patient/p1%2CVICTIM%26_count%3D1000"
    assert result.missing == ["patient"]


# -- PrefetchResult.incomplete: partial data is said to be partial in every case ------------------

SUBSETTED = {"tag": [{"code": "SUBSETTED"}]}
ORDER = {
    "resourceType": "MedicationRequest",
    "id": "mr1",
    "medicationReference": {"reference": "Medication/m1"},
}
MEDICATION = {"resourceType": "Medication", "id": "m1"}


class CannedFetcher:
    """A prefetch.Fetcher answering from dicts: key -> value, reference -> value."""

    def __init__(
        self,
        fetched: Mapping[str, object] | None = None,
        completed: object = None,
        refs: Mapping[str, object] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self.fetched = fetched or {}
        self.completed = completed
        self.refs = refs or {}
        self.delay_s = delay_s
        self.ref_reads: list[str] = []

    async def fetch_all(self, base: str, queries: Any, *, token: str | None) -> dict[str, object]:
        await anyio.sleep(self.delay_s)
        return {key: self.fetched.get(key) for key in queries}

    async def complete_bundle(
        self, base: str, bundle: dict[str, Any], *, token: str | None, resource_type: str
    ) -> object:
        return self.completed

    async def read_references(
        self, base: str, refs: Any, *, token: str | None
    ) -> dict[str, object]:
        self.ref_reads.extend(refs)
        return {ref: self.refs.get(ref) for ref in refs}


TEMPLATES = {
    "conditions": "Condition?patient={{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}",
}
CONTEXT = {"patientId": "p1"}


async def _resolve(prefetch: dict[str, Any] | None, fetcher: Any, **kwargs: Any) -> Any:
    return await resolve(
        TEMPLATES,
        frozenset(kwargs.pop("needs", ())),
        CONTEXT,
        prefetch,
        fhir_server=kwargs.pop("fhir_server", BASE),
        token=None,
        fetcher=fetcher,
        **kwargs,
    )


@pytest.mark.anyio
async def test_provided_bundle_marked_subsetted_is_incomplete() -> None:
    prefetch = {"conditions": {**bundle(CONDITION), "meta": SUBSETTED}, "medications": bundle()}
    result = await _resolve(prefetch, CannedFetcher())
    assert result.provided == ["conditions", "medications"]
    assert result.incomplete == ["conditions"]


@pytest.mark.anyio
async def test_provided_bundle_with_next_link_and_no_server_is_incomplete() -> None:
    prefetch = {"conditions": bundle(CONDITION, link=NEXT), "medications": bundle()}
    result = await _resolve(prefetch, None, fhir_server=None)
    assert result.incomplete == ["conditions"]
    assert result.entries["conditions"] == [CONDITION]


@pytest.mark.anyio
async def test_a_cut_completion_keeps_the_pages_read_and_is_incomplete() -> None:
    second = {"resourceType": "Condition", "id": "c2"}
    completed = {**bundle(CONDITION, second), "meta": SUBSETTED}
    prefetch = {"conditions": bundle(CONDITION, link=NEXT), "medications": bundle()}
    result = await _resolve(prefetch, CannedFetcher(completed=completed))
    assert result.entries["conditions"] == [CONDITION, second]
    assert result.incomplete == ["conditions"]


@pytest.mark.anyio
async def test_a_fetched_key_cut_short_is_fetched_and_incomplete() -> None:
    fetched = {"conditions": {**bundle(CONDITION), "meta": SUBSETTED}, "medications": bundle()}
    result = await _resolve(None, CannedFetcher(fetched))
    assert result.fetched == ["conditions", "medications"]
    assert result.incomplete == ["conditions"]
    assert result.missing == []


@pytest.mark.anyio
async def test_a_fetch_that_failed_is_missing_and_412_when_needed() -> None:
    fetched: dict[str, object] = {
        "conditions": FHIRUnavailable("Condition", kind="response too large"),
        "medications": bundle(),
    }
    result = await _resolve(None, CannedFetcher(fetched))
    assert result.missing == ["conditions"]
    with pytest.raises(MissingData):
        await _resolve(None, CannedFetcher(fetched), needs={"conditions"})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("refs", "incomplete"),
    [
        ({"Medication/m1": MEDICATION}, []),
        ({"Medication/m1": FHIRRefused("Medication", status=404)}, ["medications"]),
        ({"Medication/m1": {"resourceType": "Medication", "id": "other"}}, ["medications"]),
    ],
    ids=["read", "not-found", "wrong-resource"],
)
async def test_an_unreadable_medication_reference_makes_its_key_incomplete(
    refs: dict[str, object], incomplete: list[str]
) -> None:
    fetcher = CannedFetcher(refs=refs)
    prefetch = {"conditions": bundle(), "medications": bundle(ORDER)}
    result = await _resolve(prefetch, fetcher)
    assert fetcher.ref_reads == ["Medication/m1"]
    assert result.incomplete == incomplete


@pytest.mark.anyio
async def test_a_medication_reference_without_a_server_or_budget_is_incomplete() -> None:
    prefetch = {"conditions": bundle(), "medications": bundle(ORDER)}
    offline = await _resolve(prefetch, None, fhir_server=None)
    assert offline.incomplete == ["medications"]
    slow = CannedFetcher({"conditions": bundle()}, refs={"Medication/m1": MEDICATION}, delay_s=0.2)
    late = await _resolve({"medications": bundle(ORDER)}, slow, budget_s=0.1)
    assert slow.ref_reads == []  # no budget left for the reads
    assert late.incomplete == ["medications"]
    included = await _resolve(
        {"conditions": bundle(), "medications": bundle(ORDER, MEDICATION)}, None
    )
    assert included.incomplete == []
