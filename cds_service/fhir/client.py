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
from dataclasses import dataclass, field
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
    TOO_LARGE,
    FHIRError,
    FHIRNotAllowed,
    FHIRRefused,
    FHIRUnavailable,
)
from cds_service.fhir.references import is_resource_type, parse_reference
from cds_service.fhir.transport import Fetched, get_json
from cds_service.fhir.urls import check_server, join_url, with_count

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

# Why a search stopped before its last page (the ``reason`` of the "fhir search incomplete" log
# line); a failed page gives its failure kind (cds_service.fhir.errors) instead.
PAGE_LIMIT: Final = "page limit"
ENTRY_LIMIT: Final = "entry limit"
NEXT_NOT_ALLOWED: Final = "next link not allowed"
NEXT_LOOP: Final = "next link loop"


@dataclass(frozen=True)
class FHIRClientConfig:
    """Plain values from Settings; ``budget_s`` bounds a whole public call, ``timeout_s`` one GET.

    ``page_size`` is the ``_count`` of every search (unless its query names one);
    ``max_concurrency`` the GETs one public call has in flight at once; ``max_response_bytes``
    the JSON read for one key: a read, or all pages of one search together.
    """

    allowed_prefixes: tuple[str, ...]
    allow_insecure: bool
    timeout_s: float
    budget_s: float
    max_pages: int
    max_entries: int
    page_size: int
    max_concurrency: int
    max_response_bytes: int


@dataclass
class _Search:
    """The pages of one search read so far; kept outside the task so that a search cut by the
    budget still returns what it read (SUBSETTED) instead of nothing."""

    first: dict[str, Any] | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    size: int = 0  # bytes of JSON read from the server (a prefetched first page counts 0)

    def add(self, page: dict[str, Any], size: int = 0) -> None:
        if self.first is None:
            self.first = page
        self.entries.extend(data_entries(page))
        self.pages += 1
        self.size += size


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

        All keys start at once (up to ``max_concurrency``) under one deadline of ``budget_s``. A
        read returns the resource; a search (sent with ``_count``) returns one searchset Bundle
        with the entries of up to ``max_pages`` pages. When paging stops before the last page (a
        limit, the budget, a failed page, a next link outside ``base``, a link loop) the pages
        read come back with ``meta.tag`` SUBSETTED. A key whose read or first page fails maps to
        its FHIRError; the others are still returned.
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

        async def job(search: _Search) -> dict[str, Any]:
            search.add(bundle)
            return await self._page(base, search, token=token, rtype=rtype, deadline=deadline)

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
        jobs: dict[str, Callable[[_Search], Awaitable[dict[str, Any]]]] = {}
        types: dict[str, str] = {}
        for ref in unique:
            types[ref] = rtype = _reference_type(ref)
            jobs[ref] = partial(self._read_job, base, ref, rtype, token=token, deadline=deadline)
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
        jobs: Mapping[str, Callable[[_Search], Awaitable[dict[str, Any]]]],
        types: Mapping[str, str],
        deadline: float,
        *,
        log_keys: bool,
    ) -> dict[str, dict[str, Any] | FHIRError]:
        results: dict[str, dict[str, Any] | FHIRError] = {}
        limiter = anyio.CapacityLimiter(self._config.max_concurrency)

        async def run(key: str) -> None:
            error: FHIRError | None = None
            search = _Search()
            logged_key = key if log_keys else None
            with anyio.CancelScope(deadline=deadline) as scope:
                try:
                    async with limiter:
                        results[key] = await jobs[key](search)
                except FHIRError as exc:
                    error = exc
            if scope.cancelled_caught:
                if search.first is not None:  # pages were read: keep them, say so
                    results[key] = self._incomplete(search, logged_key, types[key], BUDGET)
                    return
                error = FHIRUnavailable(types[key], kind=BUDGET)
            if error is not None:
                results[key] = self._failed(error, logged_key, types[key])

        async with anyio.create_task_group() as group:
            for key in jobs:
                group.start_soon(run, key)
        return {key: results[key] for key in jobs}

    async def _fetch_query(
        self, base: str, query: str, search: _Search, *, token: str | None, deadline: float
    ) -> dict[str, Any]:
        rtype = _resource_type(query)
        if _is_read(query):
            return await self._read(base, query, token=token, rtype=rtype, deadline=deadline)
        url = join_url(base, with_count(query, self._config.page_size), resource_type=rtype)
        first, size = await self._get(url, token=token, rtype=rtype, deadline=deadline)
        if first.get("resourceType") != "Bundle":
            raise FHIRUnavailable(rtype, status=200, kind=INVALID)
        search.add(first, size)
        return await self._page(base, search, token=token, rtype=rtype, deadline=deadline)

    async def _read_job(
        self,
        base: str,
        ref: str,
        rtype: str,
        _search: _Search,
        *,
        token: str | None,
        deadline: float,
    ) -> dict[str, Any]:
        return await self._read(base, ref, token=token, rtype=rtype, deadline=deadline)

    async def _read(
        self, base: str, ref: str, *, token: str | None, rtype: str, deadline: float
    ) -> dict[str, Any]:
        path = urlsplit(ref).path if urlsplit(ref).scheme else ref
        if "?" in ref or path.strip("/").count("/") < 1 or rtype == "Resource":
            raise FHIRNotAllowed(rtype, kind=BAD_QUERY)
        url = join_url(base, ref, resource_type=rtype)
        resource, _ = await self._get(url, token=token, rtype=rtype, deadline=deadline)
        if resource.get("resourceType") != rtype:
            raise FHIRUnavailable(rtype, status=200, kind=INVALID)
        return resource

    async def _page(
        self,
        base: str,
        search: _Search,
        *,
        token: str | None,
        rtype: str,
        deadline: float,
    ) -> dict[str, Any]:
        """Follow ``Bundle.link[next]`` from the first page in ``search`` within max_pages and
        max_entries, to links under ``base`` only. Stopping before the last page for any reason
        returns the pages read, SUBSETTED."""
        limits = self._config
        seen: set[str] = set()
        stop: str | None = None
        next_url = next_link(search.first or {})
        while next_url is not None:
            if search.pages >= limits.max_pages:
                stop = PAGE_LIMIT
                break
            if len(search.entries) >= limits.max_entries:
                stop = ENTRY_LIMIT
                break
            try:
                url = join_url(base, next_url, resource_type=rtype)
            except FHIRNotAllowed:
                stop = NEXT_NOT_ALLOWED  # the token stays on the server the search started on
                break
            if url in seen:
                stop = NEXT_LOOP
                break
            seen.add(url)
            left = limits.max_response_bytes - search.size
            if left <= 0:
                stop = TOO_LARGE
                break
            try:
                page, size = await self._get(
                    url, token=token, rtype=rtype, deadline=deadline, max_bytes=left
                )
            except FHIRError as exc:
                stop = exc.kind
                break
            if page.get("resourceType") != "Bundle":
                stop = INVALID
                break
            search.add(page, size)
            next_url = next_link(page)
        if stop is None and len(search.entries) > limits.max_entries:
            stop = ENTRY_LIMIT
        if stop is not None:
            return self._incomplete(search, None, rtype, stop)
        return merge_pages(search.first or {}, search.entries, subsetted=False)

    def _incomplete(
        self, search: _Search, key: str | None, rtype: str, reason: str
    ) -> dict[str, Any]:
        """The pages in ``search`` as one SUBSETTED Bundle, logged with ``reason`` (no URL)."""
        logger.warning(
            "fhir search incomplete",
            extra={"fhir_resource_type": rtype, "reason": reason, "prefetch_key": key},
        )
        entries = search.entries[: self._config.max_entries]
        return merge_pages(search.first or {}, entries, subsetted=True)

    async def _get(
        self,
        url: str,
        *,
        token: str | None,
        rtype: str,
        deadline: float,
        max_bytes: int | None = None,
    ) -> Fetched:
        return await get_json(
            self._http,
            url,
            token=token,
            rtype=rtype,
            deadline=deadline,
            timeout_s=self._config.timeout_s,
            max_bytes=self._config.max_response_bytes if max_bytes is None else max_bytes,
        )
