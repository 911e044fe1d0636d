"""Async FHIR R4 reads and searches with the caller's token, bounded by one time budget per call."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import anyio
import httpx
import orjson

logger = logging.getLogger(__name__)

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

# Failure kinds: the only words besides the resource type and status that reach a message or log.
TIMEOUT: Final = "timeout"
CONNECTION: Final = "connection error"
INVALID: Final = "invalid response"
OUTCOME: Final = "OperationOutcome"
BUDGET: Final = "budget exhausted"
NOT_ALLOWED: Final = "not allowed"
BAD_AUTH: Final = "invalid token"
BAD_QUERY: Final = "invalid query"

_LOG_MESSAGES: Final = {
    TIMEOUT: "fhir fetch failed: timeout",
    CONNECTION: "fhir fetch failed: connection error",
    INVALID: "fhir fetch failed: invalid response",
    OUTCOME: "fhir fetch failed: OperationOutcome",
    BUDGET: "fhir fetch failed: budget exhausted",
    NOT_ALLOWED: "fhir fetch refused: server not allowed",
    BAD_AUTH: "fhir fetch refused: invalid token",
    BAD_QUERY: "fhir fetch refused: invalid query",
    "status": "fhir fetch failed: http status",
}

_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
# RFC 6750 b64token is stricter; any visible ASCII keeps header injection out and vendor tokens in.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_MAX_CONCURRENCY: Final = 8  # per call: enough for a prefetch set, gentle on the EHR


class FHIRError(Exception):
    """A FHIR fetch failed. The message holds the resource type and the status or failure kind.

    Never the URL (it holds the patient id), the body or the token. ``status`` is the HTTP status
    when there was a response, else None; ``kind`` is one of the module's failure kinds or "status".
    """

    def __init__(self, resource_type: str, *, status: int | None = None, kind: str = "status"):
        self.resource_type = resource_type
        self.status = status
        self.kind = kind
        detail = str(status) if kind == "status" else kind
        super().__init__(f"{resource_type} fetch failed: {detail}")


class FHIRUnavailable(FHIRError):
    """Timeout, connection error, 5xx, a body that is not a FHIR resource, or no budget left."""


class FHIRRefused(FHIRError):
    """The server answered 3xx (redirects are not followed) or 4xx (401, 403, 404, ...)."""


class FHIRNotAllowed(FHIRError):
    """Nothing was sent: server not allow-listed, a token for http://, or an unsafe URL."""


@dataclass(frozen=True)
class FHIRClientConfig:
    """Plain values from Settings; ``budget_s`` bounds a whole public call, ``timeout_s`` one GET."""

    allowed_prefixes: tuple[str, ...]
    allow_insecure: bool
    timeout_s: float
    budget_s: float
    max_pages: int
    max_entries: int


def _parse(url: str, resource_type: str) -> httpx.URL:
    # One parser (httpx's, the one that sends) for every check, so checks and requests agree.
    if any(ch <= " " or ch in "\\\x7f" for ch in url):
        raise FHIRNotAllowed(resource_type, kind=NOT_ALLOWED)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise FHIRNotAllowed(resource_type, kind=NOT_ALLOWED) from None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.userinfo:
        raise FHIRNotAllowed(resource_type, kind=NOT_ALLOWED)
    return parsed


def _origin(url: httpx.URL) -> tuple[str, str, int]:
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


def _has_dot_segment(path: str) -> bool:
    # httpx removes dot segments, so "Patient/../../admin" would leave the base path.
    return any(unquote(seg) in (".", "..") for seg in path.split("/"))


def join_url(base: str, relative: str, *, resource_type: str = "Resource") -> str:
    """Append ``relative`` ("Patient/123", "Condition?patient=123") to ``base``.

    Strips one trailing "/" from ``base`` and keeps its path (urljoin would drop "/r4" from
    "https://h/r4"); CDS Hooks item 22. An absolute ``relative`` (a Bundle next link) is returned
    as is, and must have the scheme, host and port of ``base``. Raises FHIRNotAllowed otherwise,
    or when ``relative`` has "." or ".." path segments.
    """
    base_url = _parse(base, resource_type)
    split = urlsplit(relative)
    if split.scheme or relative.startswith("//"):
        target = _parse(relative, resource_type)
        if _origin(target) != _origin(base_url) or _has_dot_segment(split.path):
            raise FHIRNotAllowed(resource_type, kind=NOT_ALLOWED)
        return relative
    if _has_dot_segment(split.path) or "\\" in relative or "#" in relative:
        raise FHIRNotAllowed(resource_type, kind=BAD_QUERY)
    root = base[:-1] if base.endswith("/") else base
    return f"{root}/{relative.lstrip('/')}"


def _prefix_matches(prefix: str, base: httpx.URL) -> bool:
    try:
        allowed = _parse(prefix, "Resource")
        explicit_port = urlsplit(prefix).port is not None
    except (FHIRNotAllowed, ValueError):
        return False  # a malformed allow-list entry allows nothing
    if (allowed.scheme, allowed.host) != (base.scheme, base.host):
        return False
    # A prefix written without a port allows any port on that host (loopback test servers and
    # the sandbox use arbitrary ports); a written port must match, default ports normalised.
    if explicit_port and _origin(allowed) != _origin(base):
        return False
    want = allowed.path.rstrip("/")
    have = base.path.rstrip("/")
    return have == want or have.startswith(want + "/")


def check_server(
    base: str, *, allowed_prefixes: Sequence[str], allow_insecure: bool, has_token: bool
) -> None:
    """Raise FHIRNotAllowed unless ``base`` may be queried; runs before any network I/O.

    ``base`` must be http(s) without user info, query or fragment, and match an allow-list prefix
    on URL boundaries: same scheme and host (so "http://127.0.0.1" does not allow
    "http://127.0.0.1.evil.com"), same port when the prefix names one, and a path equal to the
    prefix's path or below it ("/fhir" does not allow "/fhir-evil"). A token never goes to
    http:// unless ``allow_insecure`` (CDS Hooks item 23).
    """
    parsed = _parse(base, "Resource")
    split = urlsplit(base)
    if split.query or split.fragment or "?" in base or "#" in base or _has_dot_segment(split.path):
        raise FHIRNotAllowed("Resource", kind=NOT_ALLOWED)
    if has_token and parsed.scheme != "https" and not allow_insecure:
        raise FHIRNotAllowed("Resource", kind=NOT_ALLOWED)
    if not any(_prefix_matches(prefix, parsed) for prefix in allowed_prefixes):
        raise FHIRNotAllowed("Resource", kind=NOT_ALLOWED)


def _resource_type(query: str) -> str:
    head = re.split(r"[/?]", query.lstrip("/"), maxsplit=1)[0]
    return head if _RESOURCE_TYPE.fullmatch(head) else "Resource"


def _reference_type(ref: str) -> str:
    path = urlsplit(ref).path if urlsplit(ref).scheme else ref
    segments = path.strip("/").split("/")
    return _resource_type(segments[-2]) if len(segments) >= 2 else "Resource"


def _is_read(query: str) -> bool:
    """ "Type/id" or "Type/id/_history/vid"; anything else ("?", "$op") answers with a Bundle."""
    if "?" in query:
        return False
    segments = query.strip("/").split("/")
    if any(seg.startswith("$") for seg in segments):
        return False
    return len(segments) == 2 or (len(segments) == 4 and segments[2] == "_history")


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def _data_entries(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Entries minus OperationOutcomes (``search.mode == "outcome"``, CDS Hooks item 27)."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    kept: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        search = entry.get("search")
        if isinstance(search, dict) and search.get("mode") == "outcome":
            continue
        resource = entry.get("resource")
        if isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome":
            continue
        kept.append(entry)
    return kept


class _Retryable(Exception):
    """Internal: a GET failed in a way one retry may fix (5xx, timeout, connection error)."""

    def __init__(self, error: FHIRUnavailable) -> None:
        super().__init__()
        self.error = error


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
        rtype = resource_type if _RESOURCE_TYPE.fullmatch(resource_type) else "Resource"
        if bundle.get("resourceType") != "Bundle":
            return self._failed(FHIRUnavailable(rtype, kind=INVALID), None)
        if _next_link(bundle) is None:
            return self._merge(bundle, _data_entries(bundle), subsetted=False)
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
            _LOG_MESSAGES.get(error.kind, "fhir fetch failed"),
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
        entries = _data_entries(first)
        seen: set[str] = set()
        pages = 1
        next_url = _next_link(first)
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
            entries.extend(_data_entries(page))
            pages += 1
            next_url = _next_link(page)
        subsetted = next_url is not None or len(entries) > limits.max_entries
        if subsetted:
            logger.warning(
                "fhir search truncated at page or entry limit",
                extra={"fhir_resource_type": rtype},
            )
        return self._merge(first, entries[: limits.max_entries], subsetted=subsetted)

    @staticmethod
    def _merge(
        first: Mapping[str, Any], entries: list[dict[str, Any]], *, subsetted: bool
    ) -> dict[str, Any]:
        merged: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if isinstance(first.get("total"), int):
            merged["total"] = first["total"]
        if subsetted:
            # FHIR's marker for "not everything the query matches" (R4 Resource.meta, SUBSETTED).
            merged["meta"] = {"tag": [dict(_SUBSETTED)]}
        merged["entry"] = entries
        return merged

    async def _get(
        self, url: str, *, token: str | None, rtype: str, deadline: float
    ) -> dict[str, Any]:
        """One GET with at most one retry, if the budget still holds a full ``timeout_s``."""
        try:
            return await self._get_once(url, token=token, rtype=rtype, deadline=deadline)
        except _Retryable as first:
            failure = first.error
        if deadline - anyio.current_time() < self._config.timeout_s:
            raise failure
        logger.info(
            "fhir fetch retry",
            extra={"fhir_resource_type": rtype, "fhir_status": failure.status},
        )
        try:
            return await self._get_once(url, token=token, rtype=rtype, deadline=deadline)
        except _Retryable as second:
            failure = second.error
        raise failure

    async def _get_once(
        self, url: str, *, token: str | None, rtype: str, deadline: float
    ) -> dict[str, Any]:
        limit = min(self._config.timeout_s, deadline - anyio.current_time())
        if limit <= 0:
            raise FHIRUnavailable(rtype, kind=BUDGET)
        headers = {"Accept": "application/fhir+json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            request = self._http.build_request("GET", url, headers=headers, timeout=limit)
        except (httpx.InvalidURL, ValueError):  # e.g. control characters in an id
            request = None
        if request is None:
            raise FHIRNotAllowed(rtype, kind=BAD_QUERY)
        # Cookies a FHIR server set for an earlier caller must not ride along with this token.
        request.headers.pop("Cookie", None)
        kind: str | None = None
        response: httpx.Response | None = None
        # httpx timeouts bound each socket operation; this scope bounds the whole exchange.
        with anyio.move_on_after(limit):
            try:
                response = await self._http.send(request, auth=None, follow_redirects=False)
            except httpx.TimeoutException:
                kind = TIMEOUT
            except httpx.HTTPError:  # transport and protocol errors; their text holds the URL
                kind = CONNECTION
        if response is None:
            raise _Retryable(FHIRUnavailable(rtype, kind=kind or TIMEOUT))
        status = response.status_code
        if status >= 500:
            raise _Retryable(FHIRUnavailable(rtype, status=status))
        if status >= 300 or status < 200:
            raise FHIRRefused(rtype, status=status)
        body: object = None
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            raise FHIRUnavailable(rtype, status=status, kind=INVALID)
        if body["resourceType"] == "OperationOutcome":
            raise FHIRUnavailable(rtype, status=status, kind=OUTCOME)
        return body
