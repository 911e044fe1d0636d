"""An in-memory FHIR server for httpx.MockTransport: reads, searches by patient, paging."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

BASE = "http://fhir.test/r4"


@dataclass
class FakeFHIR:
    resources: list[dict[str, Any]]
    page_size: int = 50  # when the search names no _count
    max_page_size: int = 1000  # the most a _count gets (sekmet-fhir: default 20, max 1000)
    delay_s: float = 0.0
    fail: dict[str, int] = field(default_factory=dict)  # resource type -> HTTP status
    requests: list[httpx.Request] = field(default_factory=list)

    @classmethod
    def from_prefetch(cls, prefetch: dict[str, Any], **kwargs: Any) -> FakeFHIR:
        found: list[dict[str, Any]] = []
        for value in prefetch.values():
            if isinstance(value, dict) and value.get("resourceType") == "Bundle":
                found.extend(e["resource"] for e in value.get("entry", []))
            elif isinstance(value, dict):
                found.append(value)
        return cls(found, **kwargs)

    def of_type(self, rtype: str) -> Iterable[dict[str, Any]]:
        return (r for r in self.resources if r.get("resourceType") == rtype)

    async def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.delay_s:
            await anyio.sleep(self.delay_s)
        path = request.url.path.removeprefix("/r4/").strip("/")
        parts = path.split("/")
        rtype = parts[0]
        if rtype in self.fail:
            return httpx.Response(
                self.fail[rtype], json={"resourceType": "OperationOutcome", "issue": []}
            )
        if len(parts) == 2:
            for resource in self.of_type(rtype):
                if resource.get("id") == parts[1]:
                    return httpx.Response(200, json=resource)
            return httpx.Response(404, json={"resourceType": "OperationOutcome", "issue": []})
        patient = request.url.params.get("patient")
        matches = [r for r in self.of_type(rtype) if _subject(r) == f"Patient/{patient}"]
        include = request.url.params.get("_include")
        if include and include.endswith(":medication"):
            wanted = {
                r.get("medicationReference", {}).get("reference")
                for r in matches
                if "medicationReference" in r
            }
            matches += [
                m for m in self.of_type("Medication") if f"Medication/{m.get('id')}" in wanted
            ]
        offset = int(request.url.params.get("_offset", "0"))
        size = min(int(request.url.params.get("_count", self.page_size)), self.max_page_size)
        page = matches[offset : offset + size]
        bundle: dict[str, Any] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "entry": [{"resource": r} for r in page],
        }
        if offset + size < len(matches):
            nxt = request.url.copy_set_param("_offset", str(offset + size))
            bundle["link"] = [{"relation": "next", "url": str(nxt)}]
        return httpx.Response(200, json=bundle)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


def _subject(resource: dict[str, Any]) -> str | None:
    for name in ("subject", "patient"):
        ref = resource.get(name)
        if isinstance(ref, dict):
            value = ref.get("reference")
            return value if isinstance(value, str) else None
    return None
