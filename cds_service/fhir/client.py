"""Async FHIR R4 reads and searches with the caller's token, bounded by one time budget per call.

This module runs the calls (concurrency, budget, paging, logging of failures). The pieces it
uses each have their own module: :mod:`~cds_service.fhir.errors` (exception tree),
:mod:`~cds_service.fhir.urls` (which URLs may be called), :mod:`~cds_service.fhir.transport`
(one GET and its retry), :mod:`~cds_service.fhir.bundles` (pages of a searchset).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final
from urllib.parse import urlsplit

import anyio
import httpx

from cds_service.fhir.bundles import data_entries, merge_pages, next_link
from cds_service.fhir.errors import (
    BAD_AUTH,
    BAD_QUERY,
    BUDGET,
    INVALID,
    LOG_MESSAGES,
    FHIRError,
    FHIRNotAllowed,
    FHIRRefused,
    FHIRUnavailable,
)
from cds_service.fhir.references import is_resource_type, parse_reference
from cds_service.fhir.transport import get_json
from cds_service.fhir.urls import check_server, join_url

logger = logging.getLogger(__name__)

# The names callers import from here; the exceptions and URL checks live in their own modules.
__all__ = [
    "FHIRClient",
    "FHIRClientConfig",
    "FHIRError",
    "FHIRNotAllowed",
    "FHIRRefused",
    "FHIRUnavailable",
    "check_server",
    "join_url",
]

# RFC 6750 b64token is stricter; any visible ASCII keeps header injection out and vendor tokens in.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_MAX_CONCURRENCY: Final = 8  # per call: enough for a prefetch set, gentle on the EHR


@dataclass(frozen=True)
class FHIRClientConfig:
    """Plain values from Settings; ``budget_s`` bounds a whole public call, ``timeout_s`` one GET."""

    allowed_prefixes: tuple[str, ...]
    allow_insecure: bool
    timeout_s: float
    budget_s: float
    max_pages: int
    max_entries: int


def _resource_type(query: str) -> str:
    head = re.split(r"[/?]", query.lstrip("/"), maxsplit=1)[0]
    return head if is_resource_type(head) else "Resource"


def _reference_type(ref: str) -> str:
    parsed = parse_reference(ref)
    return parsed.resource_type if parsed is not None else "Resource"


def _is_read(query: str) -> bool:
    """ "Type/id" or "Type/id/_history/vid"; anything else ("?", "$op") answers with a Bundle."""
    if "?" in query:
        return False
    segments = query.strip("/").split("/")
    if any(seg.startswith("$") for seg in segments):
        return False
    return len(segments) == 2 or (len(segments) == 4 and segments[2] == "_history")


class FHIRClient:
    """Reads and searches on a CDS client's FHIR server (``fhirServer``), one call at a time.

    The token is an argument of each call: it is never stored, cached, logged or put in an error.
    The public methods never raise FHIRError; they return it in place of the resource.
    """

    def __init__(self, http: httpx.AsyncClient, config: FHIRClientConfig) -> None:
        self._http = http  # shared, holds no credentials; redirects are refused per request
        self._config = config

    async def fetch_all(
        self, base: str, queries: Mapping[str, str], *, token: str | None
    ) -> dict[str, dict[str, Any] | FHIRError]:
        """Run every query in ``queries`` (key -> "Patient/123" or "Condition?patient=123").

        All keys run concurrently under one deadline of ``budget_s``. A read returns the resource;
        a search returns one searchset Bundle with the entries of up to ``max_pages`` pages
        (``meta.tag`` SUBSETTED when a limit cut it short). A key that fails or runs out of
        budget maps to its FHIRError; the others are still returned.
        """
        deadline = anyio.current_time() + self._config.budget_s
        refusal = self._refusal(base, token)
        if refusal is not None:
            return {
                key: self._failed(refusal, key, _resource_type(q)) for key, q in queries.items()
            }
        jobs = {
            key: partial(self._fetch_query, base, query, token=token, deadline=deadline)
            for key, query in queries.items()
        }
        types = {key: _resource_type(query) for key, query in queries.items()}
        return await self._run_all(jobs, types, deadline, log_keys=True)

    async def complete_bundle(
        self, base: str, bundle: dict[str, Any], *, token: str | None, resource_type: str
    ) -> dict[str, Any] | FHIRError:
        """Follow the next links of a prefetched searchset ``bundle`` and return the merged Bundle.

        The prefetched page counts as the first of ``max_pages``. Without a next link the bundle
        comes back merged as is (OperationOutcome entries dropped), with no network I/O.
        """
        deadline = anyio.current_time() + self._config.budget_s
        rtype = resource_type if is_resource_type(resource_type) else "Resource"
        if bundle.get("resourceType") != "Bundle":
            return self._failed(FHIRUnavailable(rtype, kind=INVALID), None)
        if next_link(bundle) is None:
            return merge_pages(bundle, data_entries(bundle), subsetted=False)
        refusal = self._refusal(base, token)
        if refusal is not None:
            return self._failed(refusal, None, rtype)

        async def job() -> dict[str, Any]:
            return await self._page(base, bundle, token=token, rtype=rtype, deadline=deadline)

        results = await self._run_all({"bundle": job}, {"bundle": rtype}, deadline, log_keys=False)
        return results["bundle"]

    async def read_references(
        self, base: str, refs: Sequence[str], *, token: str | None
    ) -> dict[str, dict[str, Any] | FHIRError]:
        """Read each reference ("Medication/m1") once, concurrently, within ``budget_s``.

        Keys are the references as given. A reference that is not "Type/id" (or an absolute URL
        on the same server) maps to FHIRNotAllowed.
        """
        deadline = anyio.current_time() + self._config.budget_s
        unique = list(dict.fromkeys(refs))
        refusal = self._refusal(base, token)
        if refusal is not None:
            return {ref: self._failed(refusal, None, _resource_type(ref)) for ref in unique}
        jobs: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {}
        types: dict[str, str] = {}
        for ref in unique:
            types[ref] = rtype = _reference_type(ref)
            jobs[ref] = partial(self._read, base, ref, token=token, rtype=rtype, deadline=deadline)
        # Reference keys hold resource ids: they are not logged.
        return await self._run_all(jobs, types, deadline, log_keys=False)

    # -- internals -------------------------------------------------------------------------------

    def _refusal(self, base: str, token: str | None) -> FHIRError | None:
        if token is not None and not _TOKEN.fullmatch(token):
            return FHIRNotAllowed("Resource", kind=BAD_AUTH)
        try:
            check_server(
                base,
                allowed_prefixes=self._config.allowed_prefixes,
                allow_insecure=self._config.allow_insecure,
                has_token=token is not None,
            )
        except FHIRNotAllowed as exc:
            return exc.with_traceback(None)
        return None

    @staticmethod
    def _failed(error: FHIRError, key: str | None, resource_type: str | None = None) -> FHIRError:
        if resource_type is not None and resource_type != error.resource_type:
            error = type(error)(resource_type, status=error.status, kind=error.kind)
        level = (
            logging.INFO
            if isinstance(error, FHIRRefused) and error.status == 404
            else logging.WARNING
        )
        logger.log(
            level,
            LOG_MESSAGES.get(error.kind, "fhir fetch failed"),
            extra={
                "fhir_resource_type": error.resource_type,
                "fhir_status": error.status,
                "prefetch_key": key,
            },
        )
        # Drop frames: their locals hold the token and the URL.
        return error.with_traceback(None)

    async def _run_all(
        self,
        jobs: Mapping[str, Callable[[], Awaitable[dict[str, Any]]]],
        types: Mapping[str, str],
        deadline: float,
        *,
        log_keys: bool,
    ) -> dict[str, dict[str, Any] | FHIRError]:
        results: dict[str, dict[str, Any] | FHIRError] = {}
        limiter = anyio.CapacityLimiter(_MAX_CONCURRENCY)

        async def run(key: str) -> None:
            error: FHIRError | None = None
            with anyio.CancelScope(deadline=deadline) as scope:
                try:
                    async with limiter:
                        results[key] = await jobs[key]()
                except FHIRError as exc:
                    error = exc
            if scope.cancelled_caught:
                error = FHIRUnavailable(types[key], kind=BUDGET)
            if error is not None:
                results[key] = self._failed(error, key if log_keys else None, types[key])

        async with anyio.create_task_group() as group:
            for key in jobs:
                group.start_soon(run, key)
        return {key: results[key] for key in jobs}

    async def _fetch_query(
        self, base: str, query: str, *, token: str | None, deadline: float
    ) -> dict[str, Any]:
        rtype = _resource_type(query)
        if _is_read(query):
            return await self._read(base, query, token=token, rtype=rtype, deadline=deadline)
        url = join_url(base, query, resource_type=rtype)
        first = await self._get(url, token=token, rtype=rtype, deadline=deadline)
        if first.get("resourceType") != "Bundle":
            raise FHIRUnavailable(rtype, status=200, kind=INVALID)
        return await self._page(base, first, token=token, rtype=rtype, deadline=deadline)

    async def _read(
        self, base: str, ref: str, *, token: str | None, rtype: str, deadline: float
    ) -> dict[str, Any]:
        path = urlsplit(ref).path if urlsplit(ref).scheme else ref
        if "?" in ref or path.strip("/").count("/") < 1 or rtype == "Resource":
            raise FHIRNotAllowed(rtype, kind=BAD_QUERY)
        url = join_url(base, ref, resource_type=rtype)
        resource = await self._get(url, token=token, rtype=rtype, deadline=deadline)
        if resource.get("resourceType") != rtype:
            raise FHIRUnavailable(rtype, status=200, kind=INVALID)
        return resource

    async def _page(
        self,
        base: str,
        first: dict[str, Any],
        *,
        token: str | None,
        rtype: str,
        deadline: float,
    ) -> dict[str, Any]:
        """Follow ``Bundle.link[next]`` from ``first`` within max_pages and max_entries."""
        limits = self._config
        entries = data_entries(first)
        seen: set[str] = set()
        pages = 1
        next_url = next_link(first)
        while (
            next_url is not None and pages < limits.max_pages and len(entries) < limits.max_entries
        ):
            url = join_url(base, next_url, resource_type=rtype)  # next links stay on the server
            if url in seen:
                next_url = None  # a server looping its own links: stop, what we have is complete
                break
            seen.add(url)
            page = await self._get(url, token=token, rtype=rtype, deadline=deadline)
            if page.get("resourceType") != "Bundle":
                raise FHIRUnavailable(rtype, status=200, kind=INVALID)
            entries.extend(data_entries(page))
            pages += 1
            next_url = next_link(page)
        subsetted = next_url is not None or len(entries) > limits.max_entries
        if subsetted:
            logger.warning(
                "fhir search truncated at page or entry limit",
                extra={"fhir_resource_type": rtype},
            )
        return merge_pages(first, entries[: limits.max_entries], subsetted=subsetted)

    async def _get(
        self, url: str, *, token: str | None, rtype: str, deadline: float
    ) -> dict[str, Any]:
        return await get_json(
            self._http,
            url,
            token=token,
            rtype=rtype,
            deadline=deadline,
            timeout_s=self._config.timeout_s,
        )
