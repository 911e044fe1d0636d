"""facts: value-set roles matched once per concept, memoised per role set."""

from __future__ import annotations

from pathlib import Path

from cds_service.catalog import load_catalog
from cds_service.facts import _role_matches
from cds_service.valuesets import Coding

REPO = Path(__file__).resolve().parent.parent
SNOMED = "http://snomed.info/sct"


def test_role_matches_follow_the_role_set_not_a_stale_memo() -> None:
    catalog = load_catalog(REPO / "hooks")
    service = catalog.services[0]
    condition_roles = service.roles_by_type["Condition"]
    dm = next(vs for role, vs in condition_roles if role == "myositis")
    code = next(iter(dm.concepts))
    found = [Coding(code[0], code[1], None)]

    full = _role_matches(condition_roles, found, None)
    assert "myositis" in {role for role, _ in full}
    assert _role_matches(condition_roles, found, None) is full  # memoised

    others = tuple((role, vs) for role, vs in condition_roles if role != "myositis")
    assert "myositis" not in {role for role, _ in _role_matches(others, found, None)}
    assert _role_matches((), found, None) == ()
    assert _role_matches(condition_roles, [Coding(SNOMED, "0", None)], None) == ()
