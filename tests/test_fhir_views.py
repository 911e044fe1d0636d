"""Read views (cds_service.fhir.views) agree with the full R4B models on every field they read,
for every resource of every fixture and test data bundle."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cds_service.fhir import views
from cds_service.fhir.models import MODEL_BY_TYPE
from cds_service.fhir.quirks import repair_resource
from cds_service.fhir.views import VIEW_BY_TYPE, Resource

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(REPO / "fixtures").rglob("*.json"), *(REPO / "tests" / "data").rglob("*.json")])


def _resources(node: Any) -> Iterator[dict[str, Any]]:
    """Every resource of a type the rules read, wherever it sits in a JSON document."""
    if isinstance(node, dict):
        if node.get("resourceType") in VIEW_BY_TYPE:
            yield node
        for value in node.values():
            yield from _resources(value)
    elif isinstance(node, list):
        for value in node:
            yield from _resources(value)


def _compare(view: Any, full: Any, path: str) -> None:
    """Walk the view's fields; each must equal (value and type) the full model's."""
    if isinstance(view, BaseModel):
        assert full is not None, path
        for name in type(view).model_fields:
            _compare(getattr(view, name), getattr(full, name), f"{path}.{name}")
        if isinstance(view, Resource) and type(view) is not Resource:  # a typed view
            assert view.get_resource_type() == full.get_resource_type(), path
    elif isinstance(view, list):
        assert isinstance(full, list), path
        assert len(view) == len(full), path
        for i, (v, f) in enumerate(zip(view, full, strict=True)):
            _compare(v, f, f"{path}[{i}]")
    else:
        assert type(view) is type(full), (path, view, full)
        assert view == full, path


def _all_resources() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for source in SOURCES:
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        name = str(source.relative_to(REPO))
        found.extend((f"{name}#{i}", r) for i, r in enumerate(_resources(data)))
    return found


RESOURCES = _all_resources()
# Valid for the rules, invalid R4B in a field they never read: why each one is readable now.
VIEW_ONLY = {
    # The spec's draft MedicationRequest puts doseQuantity on Dosage itself (its STU3 place):
    # an unknown field to R4 and to the view, which ignores it; R4B rejects the whole order.
    "tests/data/cds-hooks-spec/request-order-sign-r4.COMPOSED.json#0",
}


def test_there_are_many_resources_of_every_type() -> None:
    types = {r["resourceType"] for _, r in RESOURCES}
    assert len(RESOURCES) > 5000
    assert types >= set(VIEW_BY_TYPE) - {"DiagnosticReport"}


def test_views_agree_with_full_models_on_every_field_read() -> None:
    both, view_only = 0, []
    for name, raw in RESOURCES:
        fixed = repair_resource(dict(raw))
        rtype = raw["resourceType"]
        try:
            full = MODEL_BY_TYPE[rtype].model_validate(fixed)
        except (ValidationError, ValueError, TypeError):
            full = None
        try:
            view = VIEW_BY_TYPE[rtype].model_validate(fixed)
        except ValidationError:
            assert full is None, f"{name}: a valid R4B {rtype} that its view rejects"
            continue
        if full is None:
            view_only.append(name)  # malformed only where the rules do not read
            continue
        _compare(view, full, name)
        both += 1
    assert both > 5000
    assert set(view_only) == VIEW_ONLY


# getattr(x, "name", None) on a view that lacks the field answers None where the full model
# gave a value: every FHIR field read that way must be declared by some view.
_GETATTR = re.compile(r"getattr\([^,()]+, \"([A-Za-z]+)\"")
NOT_FHIR = {"path", "close"}  # getattr on routes and stores, not on FHIR data


def test_every_field_read_by_name_is_declared_by_a_view() -> None:
    declared = {
        name
        for view in vars(views).values()
        if isinstance(view, type) and issubclass(view, BaseModel)
        for name in view.model_fields
    }
    read = {
        name
        for path in (REPO / "cds_service").rglob("*.py")
        for name in _GETATTR.findall(path.read_text(encoding="utf-8"))
    }
    assert len(read) > 15
    assert read - NOT_FHIR <= declared, sorted(read - NOT_FHIR - declared)
