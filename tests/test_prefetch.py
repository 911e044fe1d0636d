"""prefetch.interpret: each kind of prefetch value, as the table in cds_service/prefetch.py says."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.prefetch import interpret

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
