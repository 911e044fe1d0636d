"""prefetch.interpret: each kind of prefetch value, as the table in cds_service/prefetch.py says;
render_template: context values encoded so they keep their meaning in a FHIR URL."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from cds_service.fhir.client import FHIRClient, FHIRClientConfig, FHIRNotAllowed
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
