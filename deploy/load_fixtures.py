"""Load the synthetic fixture patients into a FHIR server (the compose stack's one-shot loader).

Standard library only, so it runs in a plain ``python:3.11-slim`` container:

    python deploy/load_fixtures.py --fhir-base http://fhir:8080/fhir --fixtures fixtures

It waits for ``<base>/metadata`` to answer 200, then for each fixture case (a directory holding
``request.json`` and/or ``fhir/*.json``) gathers every FHIR resource with an id (from the
request's prefetch and the mock-server files, looking inside Bundles) and posts them as one
transaction of ``PUT <type>/<id>`` entries, so the ids in the fixtures' requests stay valid.
Extra transaction Bundles (e.g. ``tests/data/fhir-data``) can be named as arguments; they are
posted as they are. Exits 1 if any post fails. All fixture data is synthetic.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

FHIR_JSON = "application/fhir+json"


def say(message: str, *, error: bool = False) -> None:
    """One progress line on stdout (stderr for problems); the loader's only output."""
    stream = sys.stderr if error else sys.stdout
    stream.write(message + "\n")
    stream.flush()


def _open(url: str, *, timeout: float, body: bytes | None = None) -> tuple[int, bytes]:
    """GET ``url`` (POST when ``body`` is given) and return the status and body."""
    if urlsplit(url).scheme not in {"http", "https"}:
        raise ValueError("only http(s) FHIR base URLs are supported")
    headers = {"Accept": FHIR_JSON}
    if body is not None:
        headers["Content-Type"] = FHIR_JSON
    method = "GET" if body is None else "POST"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for_server(base: str, deadline_s: float) -> bool:
    """Poll ``<base>/metadata`` until it answers 200 or ``deadline_s`` seconds have passed."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        try:
            status, _ = _open(f"{base}/metadata", timeout=10)
            if status == 200:
                return True
        except (OSError, ValueError):
            pass
        time.sleep(3)
    return False


def iter_resources(node: Any) -> Iterator[dict[str, Any]]:
    """Every resource with a ``resourceType`` and ``id`` in ``node``, looking inside Bundles."""
    if isinstance(node, list):
        for item in node:
            yield from iter_resources(item)
    elif isinstance(node, dict):
        kind = node.get("resourceType")
        if kind == "Bundle":
            for entry in node.get("entry") or []:
                if isinstance(entry, dict):
                    yield from iter_resources(entry.get("resource"))
        elif isinstance(kind, str):
            # An OperationOutcome in prefetch means "the EHR's fetch failed": not data.
            if kind != "OperationOutcome" and isinstance(node.get("id"), str):
                yield node
        else:
            for value in node.values():
                yield from iter_resources(value)


def case_resources(case_dir: Path) -> list[dict[str, Any]]:
    """The resources of one fixture case, deduplicated by type and id (last one wins)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    request = case_dir / "request.json"
    files = [request] if request.is_file() else []
    files += sorted((case_dir / "fhir").glob("*.json"))
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        if path == request:
            data = data.get("prefetch") or {}
        for resource in iter_resources(data):
            found[(resource["resourceType"], resource["id"])] = resource
    return list(found.values())


def transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A transaction Bundle that PUTs each resource at its own id."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


def post_bundle(base: str, bundle: dict[str, Any]) -> int:
    """POST a transaction Bundle to the server base; returns the HTTP status."""
    status, payload = _open(base, timeout=300, body=json.dumps(bundle).encode())
    if status >= 300:
        # Issue codes only: diagnostics can quote resource content.
        try:
            issues = [i.get("code") for i in json.loads(payload).get("issue", [])]
        except (ValueError, AttributeError):
            issues = []
        say(f"  server said {status}: issue codes {issues}", error=True)
    return status


def case_dirs(fixtures: Path) -> list[Path]:
    """Directories under ``fixtures`` that hold a ``request.json`` or a ``fhir/`` folder."""
    dirs = {p.parent for p in fixtures.rglob("request.json")}
    dirs |= {p.parent for p in fixtures.rglob("fhir") if p.is_dir()}
    return sorted(dirs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fhir-base", default=os.environ.get("FHIR_BASE", "http://fhir:8080/fhir"))
    parser.add_argument(
        "--fixtures", type=Path, default=Path(os.environ.get("FIXTURES_DIR", "fixtures"))
    )
    parser.add_argument("--wait-seconds", type=float, default=300.0)
    parser.add_argument("bundles", nargs="*", type=Path, help="extra transaction Bundles to post")
    args = parser.parse_args(argv)
    base = args.fhir_base.rstrip("/")

    say(f"waiting for {base}/metadata")
    if not wait_for_server(base, args.wait_seconds):
        say(f"FHIR server not ready after {args.wait_seconds:.0f} s", error=True)
        return 1

    failures = 0
    for case in case_dirs(args.fixtures):
        resources = case_resources(case)
        if not resources:
            continue
        status = post_bundle(base, transaction(resources))
        name = case.relative_to(args.fixtures)
        say(f"{name}: {len(resources)} resources -> HTTP {status}")
        failures += status >= 300
    for path in args.bundles:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            say(f"{path.name}: not a transaction Bundle, skipped", error=True)
            failures += 1
            continue
        status = post_bundle(base, bundle)
        say(f"{path.name}: {len(bundle.get('entry', []))} entries -> HTTP {status}")
        failures += status >= 300
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
