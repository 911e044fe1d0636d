"""facts: value-set roles matched once per concept, memoised per resource type by the service."""

from __future__ import annotations

from pathlib import Path

from cds_service.catalog import load_catalog
from cds_service.facts import RoleMap
from cds_service.topics import KINDS
from cds_service.valuesets import Coding

REPO = Path(__file__).resolve().parent.parent
SNOMED = "http://snomed.info/sct"


def test_role_matches_follow_the_role_set_not_a_stale_memo() -> None:
    catalog = load_catalog(REPO / "hooks", KINDS)
    service = catalog.services[0]
    role_map = service.role_map
    condition_roles = role_map.roles("Condition")
    dm = next(vs for role, vs in condition_roles if role == "myositis")
    code = next(iter(dm.concepts))
    found = [Coding(code[0], code[1], None)]

    full = role_map.matches("Condition", found, None)
    assert "myositis" in {role for role, _ in full}
    assert role_map.matches("Condition", found, None) is full  # memoised

    others = RoleMap({"Condition": tuple((r, vs) for r, vs in condition_roles if r != "myositis")})
    assert "myositis" not in {role for role, _ in others.matches("Condition", found, None)}
    assert RoleMap({}).matches("Condition", found, None) == ()
    assert role_map.matches("Condition", [Coding(SNOMED, "0", None)], None) == ()
    assert role_map.matches("Patient", found, None) == ()  # a type with no roles


def test_each_service_owns_its_role_memo() -> None:
    first, second = load_catalog(REPO / "hooks", KINDS), load_catalog(REPO / "hooks", KINDS)
    service = first.services[0]
    dm = next(vs for role, vs in service.role_map.roles("Condition") if role == "myositis")
    code = next(iter(dm.concepts))
    service.role_map.matches("Condition", [Coding(code[0], code[1], None)], None)
    assert second.services[0].role_map is not service.role_map
    assert len(second.services[0].role_map._memo) == 0
