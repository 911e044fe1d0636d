"""Property: other patients' resources mixed into a record never change its cards (hypothesis).

Each example takes a golden case and adds copies of resources from any golden case (its own
included) that belong to another patient, by every reference form, some with an invalid field,
some keeping the original id, at any position of any Bundle key. The cards (topics, summaries,
indicators, details, suggestions, evidence) must equal those of the case alone.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.catalog import Catalog, load_catalog
from cds_service.cdshooks import CDSRequest
from cds_service.engine import Engine, HookCall
from cds_service.patient_binding import PATIENT_LINK
from cds_service.topics import KINDS

REPO = Path(__file__).resolve().parents[1]
CASES = sorted(p.parent for p in (REPO / "fixtures").glob("*/*/expected.json"))
SETTINGS = settings(max_examples=150, deadline=None)
FORMS = ("relative", "absolute", "versioned", "urn-unresolved", "no-link")


@cache
def catalog() -> Catalog:
    return load_catalog(REPO / "hooks", KINDS)


@cache
def load(case: Path) -> tuple[str, dict[str, Any]]:
    now = json.loads((case / "expected.json").read_text())["now"]
    return now, json.loads((case / "request.json").read_text())


def _resources(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        return [e["resource"] for e in value.get("entry", [])]
    return [value] if isinstance(value, dict) else []


@cache
def pool() -> tuple[str, ...]:
    """Every patient-linked resource of every golden case, as JSON (copied on use)."""
    found: list[str] = []
    for case in CASES:
        for value in load(case)[1].get("prefetch", {}).values():
            found.extend(
                json.dumps(r) for r in _resources(value) if r.get("resourceType") in PATIENT_LINK
            )
    return tuple(found)


def cards(case: Path, body: dict[str, Any]) -> list[dict[str, Any]]:
    now, _ = load(case)
    service = catalog().find(case.parent.name)
    assert service is not None
    call = HookCall.of(CDSRequest.model_validate(body), service, datetime.fromisoformat(now))
    evaluation = anyio.run(Engine().evaluate, call)
    out = []
    for card in evaluation.response["cards"]:
        card = {k: v for k, v in card.items() if k != "uuid"}
        card["suggestions"] = [
            {k: v for k, v in s.items() if k != "uuid"} for s in card.get("suggestions", [])
        ]
        out.append(card)
    return sorted(out, key=lambda c: c["source"]["topic"]["code"])


@cache
def own_cards(case: Path) -> str:
    return json.dumps(cards(case, load(case)[1]), sort_keys=True)


def _link(form: str, other: str) -> dict[str, str] | None:
    return {
        "relative": {"reference": f"Patient/{other}"},
        "absolute": {"reference": f"https://ehr.example.org/fhir/Patient/{other}"},
        "versioned": {"reference": f"Patient/{other}/_history/2"},
        "urn-unresolved": {"reference": "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"},
        "no-link": None,
    }[form]


@st.composite
def mixed(draw: st.DrawFn) -> tuple[Path, dict[str, Any], int]:
    case = draw(st.sampled_from(CASES))
    body = copy.deepcopy(load(case)[1])
    patient = body["context"]["patientId"]
    others = [f"{patient}-2", "pt-seed-dm", "someone-else", patient.upper(), f"x{patient}"]
    keys = [k for k, v in body["prefetch"].items() if isinstance(v, dict) and "entry" in v]
    keys += [k for k, v in body["prefetch"].items() if _resources(v) == [] and v is not None]
    added = 0
    for i in range(draw(st.integers(1, 8))):
        resource = json.loads(draw(st.sampled_from(pool())))
        other = draw(st.sampled_from([o for o in others if o != patient]))
        link = _link(draw(st.sampled_from(FORMS)), other)
        field = PATIENT_LINK[resource["resourceType"]]
        resource.pop(field, None)
        if link is not None:
            resource[field] = link
        if not draw(st.booleans()):
            resource["id"] = f"{resource['id']}-copy-{i}"  # else it keeps the patient's own id
        if draw(st.booleans()):
            resource["status"] = 7  # unreadable as well: still not the patient's
        bundle = body["prefetch"][draw(st.sampled_from(sorted(set(keys))))]
        bundle.setdefault("entry", [])
        position = draw(st.integers(0, len(bundle["entry"])))
        bundle["entry"].insert(position, {"resource": resource})
        added += 1
    return case, body, added


@SETTINGS
@given(mixed())
def test_foreign_resources_never_change_the_cards(
    example: tuple[Path, dict[str, Any], int],
) -> None:
    case, body, added = example
    assert added > 0
    assert json.dumps(cards(case, body), sort_keys=True) == own_cards(case), case.name
