"""Prefetch semantics in one place: sort out each declared key, fetch what is missing.

| ``prefetch[key]``                          | meaning                 | action                        |
|--------------------------------------------|-------------------------|-------------------------------|
| absent                                     | not provided            | fetch from ``fhirServer``     |
| ``null``                                   | the client has no data  | empty; never fetched again    |
| OperationOutcome, or a Bundle of errors    | the client's fetch failed | same as absent              |
| not a FHIR resource (e.g. an HTML string)  | garbage                 | same as absent                |
| ``{"resource": {...}}`` (pre-1.0 wrapper)  | data                    | unwrapped                     |
| a resource or a Bundle                     | data                    | used; ``next`` links followed |

Keys a rule ``needs`` that end up neither provided nor fetched raise ``MissingData`` (HTTP 412);
other missing keys are reported so the response can say what could not be judged.

A key is *incomplete* (``PrefetchResult.incomplete``; it may also be provided or fetched) when
its data is known to be partial: a provided Bundle marked SUBSETTED, or whose next pages could
not all be read; a fetched search cut short (page, entry or byte cap, budget, a failed page, a
next link off the server; the client marks it SUBSETTED); or a medication-use resource whose
``Medication/<id>`` reference could be read neither from the data nor from the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeGuard
from urllib.parse import quote

import anyio

from cds_service.cdshooks import PREFETCH_TOKEN as TOKEN
from cds_service.cdshooks import USER_TOKENS
from cds_service.errors import MissingData
from cds_service.fhir.bundles import is_subsetted, next_link
from cds_service.fhir.quirks import unwrap_prefetch_value
from cds_service.fhir.references import parse_reference

MEDICATION_REFS_KEY = "_medication-references"


class Fetcher(Protocol):
    """What prefetch needs from the FHIR client (cds_service.fhir.client.FHIRClient)."""

    async def fetch_all(
        self, base: str, queries: Mapping[str, str], *, token: str | None
    ) -> Mapping[str, object]: ...

    async def complete_bundle(
        self, base: str, bundle: dict[str, Any], *, token: str | None, resource_type: str
    ) -> object: ...

    async def read_references(
        self, base: str, refs: Sequence[str], *, token: str | None
    ) -> Mapping[str, object]: ...


@dataclass
class PrefetchResult:
    """Raw resources per key and where each key came from (keys only: no data in logs)."""

    entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    provided: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    null: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # partial data (module docstring)

    def mark_incomplete(self, key: str) -> None:
        if key not in self.incomplete:
            self.incomplete.append(key)


# FHIR search escapes (https://hl7.org/fhir/R4/search.html#escaping): in a parameter value a bare
# "," is an OR, "|" splits system and code, "$" a composite. Escaped, a value means itself.
_SEARCH_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", "|": "\\|", "$": "\\$"})


def _encode(value: str, *, in_query: bool) -> str:
    """``value`` as one path segment, or (``in_query``) as one search parameter value: FHIR
    escapes first, then every character but the unreserved ones percent-encoded, so "&", "=",
    "#", "/", "?" and spaces cannot add a parameter, a fragment or a path segment."""
    if in_query:
        value = value.translate(_SEARCH_ESCAPES)
    return quote(value, safe="")


def render_template(template: str, context: Mapping[str, Any]) -> str | None:
    """Fill ``{{context.x}}`` and user tokens; None when a token cannot be resolved.

    Each value is encoded for where it stands (:func:`_encode`): a ``patientId`` of
    ``p1,VICTIM&_count=1000`` stays one patient id, ``patient=p1%5C%2CVICTIM%26_count%3D1000``,
    which no server reads as a second patient or a second parameter.
    """
    user_id = context.get("userId")
    user_type, _, user_bare = user_id.partition("/") if isinstance(user_id, str) else ("", "", "")
    failed = False
    query_at = template.find("?") if "?" in template else len(template)

    def substitute(match: re.Match[str]) -> str:
        nonlocal failed
        name = match.group(1)
        value: Any = None
        if name.startswith("context."):
            value = context.get(name.removeprefix("context."))
        elif name in USER_TOKENS and USER_TOKENS[name] == user_type:
            value = user_bare
        if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
            failed = True
            return ""
        return _encode(str(value), in_query=match.start() > query_at)

    rendered = TOKEN.sub(substitute, template)
    return None if failed else rendered


def _is_error_outcome(resource: Mapping[str, Any]) -> bool:
    return resource.get("resourceType") == "OperationOutcome"


def _is_resource(value: object) -> TypeGuard[Mapping[str, Any]]:
    # Raw JSON is dicts: a plain isinstance, not an ABC check, on every entry of a large record.
    return isinstance(value, dict) and isinstance(value.get("resourceType"), str)


def interpret(value: Any) -> tuple[str, list[dict[str, Any]], dict[str, Any] | None]:
    """Classify one prefetch value: ("null" | "absent" | "data", resources, bundle to page).

    "absent" covers anything that is not data: not a FHIR resource, an OperationOutcome, or a
    Bundle of nothing but error outcomes. The bundle to page is returned only when it has a
    next link (the FHIR client follows the same link, :func:`cds_service.fhir.bundles.next_link`).
    """
    if value is None:
        return "null", [], None
    value = unwrap_prefetch_value(value)
    if not _is_resource(value) or _is_error_outcome(value):
        return "absent", [], None
    if value["resourceType"] != "Bundle":
        return "data", [dict(value)], None
    resources, outcomes = _bundle_resources(value)
    if outcomes and not resources and _has_error_issue(value):
        return "absent", [], None
    return "data", resources, dict(value) if next_link(value) is not None else None


def _bundle_resources(bundle: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The entries' resources minus OperationOutcomes, and how many OperationOutcomes there were."""
    resources: list[dict[str, Any]] = []
    outcomes = 0
    for entry in bundle.get("entry") or ():
        # _is_resource and _is_error_outcome inlined: this runs on every entry of a record.
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            continue
        if rtype == "OperationOutcome":
            outcomes += 1
            continue
        resources.append(resource)  # read-only from here on: kept as it is, not copied
    return resources, outcomes


def _has_error_issue(bundle: Mapping[str, Any]) -> bool:
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping) and _is_error_outcome(resource):
            for issue in resource.get("issue") or ():
                if isinstance(issue, Mapping) and issue.get("severity") in ("error", "fatal"):
                    return True
    return False


Owns = Callable[[Mapping[str, Any]], bool]


def _missing_medication_refs(
    entries: Mapping[str, list[dict[str, Any]]], owns: Owns | None = None
) -> dict[str, set[str]]:
    """Relative ``Medication/<id>`` references no entry resolves -> the keys that hold them.
    Only entries ``owns`` accepts (the context patient's) count: another patient's entry is
    never read, so its unknown Medication neither makes a key partial nor is fetched."""
    present = {
        f"Medication/{r.get('id')}"
        for resources in entries.values()
        for r in resources
        if r.get("resourceType") == "Medication"
    }
    wanted: dict[str, set[str]] = {}
    for key, resources in entries.items():
        for r in resources:
            ref = r.get("medicationReference")
            target = ref.get("reference") if isinstance(ref, dict) else None
            if not isinstance(target, str) or (owns is not None and not owns(r)):
                continue
            parsed = parse_reference(target)
            # Relative references only: an absolute one may name another server than fhirServer.
            if (
                parsed
                and parsed.base is None
                and parsed.resource_type == "Medication"
                and parsed.relative not in present
            ):
                wanted.setdefault(parsed.relative, set()).add(key)
    return wanted


async def resolve(
    templates: Mapping[str, str],
    needs: frozenset[str],
    context: Mapping[str, Any],
    prefetch: Mapping[str, Any] | None,
    *,
    fhir_server: str | None,
    token: str | None,
    fetcher: Fetcher | None,
    budget_s: float = 1.5,
    max_entries: int | None = None,
    owns: Owns | None = None,
) -> PrefetchResult:
    """Gather the data for every declared key; raise MissingData when a needed key is lost.

    Missing keys and the remaining pages of prefetched Bundles are fetched concurrently; the
    Medications those resources reference are read afterwards, within what is left of
    ``budget_s`` (the whole fetch phase never takes much longer than one budget). A prefetched
    key with more than ``max_entries`` resources keeps the first ones and is incomplete.
    """
    started = anyio.current_time()
    result = PrefetchResult()
    prefetch = prefetch or {}
    absent: dict[str, str] = {}
    to_page: dict[str, dict[str, Any]] = {}
    for key, template in templates.items():
        state, resources, bundle = (
            interpret(prefetch[key]) if key in prefetch else ("absent", [], None)
        )
        if state == "null":
            result.null.append(key)
            result.entries[key] = []
        elif state == "data":
            result.provided.append(key)
            result.entries[key] = resources
            if max_entries is not None and len(resources) > max_entries:
                result.entries[key] = resources[:max_entries]
                result.mark_incomplete(key)  # cut here: never paged further
            elif bundle is not None:
                to_page[key] = bundle
            elif is_subsetted(unwrap_prefetch_value(prefetch[key])):
                result.mark_incomplete(key)  # the client says it sent part of the data
        else:
            query = render_template(template, context)
            if query is not None:
                absent[key] = query
            else:
                result.missing.append(key)

    if fetcher is not None and fhir_server:
        await _fetch_missing(result, absent, to_page, fetcher, fhir_server, token)
        deadline = started + budget_s
        await _read_medications(result, fetcher, fhir_server, token, deadline, owns)
    else:
        result.missing.extend(absent)
        for key in to_page:
            result.mark_incomplete(key)
    # A medication-use resource whose Medication is unknown names no drug: its key is partial.
    for keys in _missing_medication_refs(result.entries, owns).values():
        for key in sorted(keys):
            result.mark_incomplete(key)

    # The request's log line carries the provided and fetched keys (api/routes.py).
    lost = sorted(set(result.missing) & needs)
    if lost:
        raise MissingData(lost)
    return result


async def _fetch_missing(
    result: PrefetchResult,
    absent: Mapping[str, str],
    to_page: Mapping[str, dict[str, Any]],
    fetcher: Fetcher,
    fhir_server: str,
    token: str | None,
) -> None:
    completed: dict[str, object] = {}
    fetched: Mapping[str, object] = {}

    async def fetch_absent() -> None:
        nonlocal fetched
        fetched = await fetcher.fetch_all(fhir_server, absent, token=token)

    async def complete(key: str, bundle: dict[str, Any]) -> None:
        rtype = _bundle_type(result.entries[key])
        completed[key] = await fetcher.complete_bundle(
            fhir_server, bundle, token=token, resource_type=rtype
        )

    if absent or to_page:
        async with anyio.create_task_group() as group:
            if absent:
                group.start_soon(fetch_absent)
            for key, bundle in to_page.items():
                group.start_soon(complete, key, bundle)
    for key in absent:
        value = fetched.get(key)
        state, resources, _ = interpret(value)
        if state == "data":
            result.fetched.append(key)
            result.entries[key] = resources
            if is_subsetted(value):
                result.mark_incomplete(key)
        else:
            result.missing.append(key)
    for key in to_page:
        state, resources, _ = interpret(completed.get(key))
        if state == "data":
            result.entries[key] = resources  # the pages read, complete or not
        if state != "data" or is_subsetted(completed.get(key)):
            result.mark_incomplete(key)


async def _read_medications(
    result: PrefetchResult,
    fetcher: Fetcher,
    fhir_server: str,
    token: str | None,
    deadline: float,
    owns: Owns | None = None,
) -> None:
    """Read the Medications the entries reference but do not hold, by ``deadline``
    (``anyio.current_time()``; the clock is read only when there is something to read)."""
    refs = sorted(_missing_medication_refs(result.entries, owns))
    if not refs:
        return
    remaining = deadline - anyio.current_time()
    if remaining <= 0:
        return
    with anyio.move_on_after(remaining):
        read = await fetcher.read_references(fhir_server, refs, token=token)
        result.entries[MEDICATION_REFS_KEY] = [
            dict(value)
            for value in read.values()
            if isinstance(value, Mapping) and value.get("resourceType") == "Medication"
        ]


def _bundle_type(resources: Sequence[Mapping[str, Any]]) -> str:
    for resource in resources:
        rtype = resource.get("resourceType")
        if isinstance(rtype, str):
            return rtype
    return "Bundle"
