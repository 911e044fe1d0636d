"""One FHIR GET: headers, time limit, byte cap, at most one retry, and each outcome mapped to a
FHIRError.

The token is an argument: it goes into this request's Authorization header and nowhere else.
Exceptions are raised outside ``except`` blocks on purpose: a chained httpx or JSON error
carries the URL (which holds the patient id) in its message.

The body is read as it streams in and only for a 2xx answer; reading stops at ``max_bytes``
(a declared Content-Length over it is refused before the first byte), so one response never
holds more than the cap in memory, whatever the server sends.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import anyio
import httpx
import orjson

from cds_service.fhir.errors import (
    BAD_QUERY,
    BUDGET,
    CONNECTION,
    INVALID,
    OUTCOME,
    TIMEOUT,
    TOO_LARGE,
    FHIRNotAllowed,
    FHIRRefused,
    FHIRUnavailable,
)

logger = logging.getLogger(__name__)

__all__ = ["Fetched", "get_json"]


class Fetched(NamedTuple):
    """A FHIR resource read and the bytes of JSON it took (decoded, as counted against the cap)."""

    resource: dict[str, Any]
    size: int


class _Retryable(Exception):
    """Internal: a GET failed in a way one retry may fix (5xx, timeout, connection error)."""

    def __init__(self, error: FHIRUnavailable) -> None:
        super().__init__()
        self.error = error


async def get_json(
    http: httpx.AsyncClient,
    url: str,
    *,
    token: str | None,
    rtype: str,
    deadline: float,
    timeout_s: float,
    max_bytes: int,
) -> Fetched:
    """GET ``url`` and return its FHIR resource (any type but OperationOutcome) as JSON.

    Each attempt takes at most ``timeout_s`` and ends by ``deadline`` (``anyio.current_time()``
    clock). A 5xx, timeout or connection error is retried once, only if a full ``timeout_s``
    is still left. Raises FHIRUnavailable (5xx, timeout, connection, not a FHIR resource, a body
    over ``max_bytes``, OperationOutcome, no budget), FHIRRefused (1xx, 3xx, 4xx) or
    FHIRNotAllowed (a URL httpx refuses to build); ``rtype`` is the resource type those errors
    name. A body over the cap is not retried: it would be as large again.
    """
    try:
        return await _get_once(
            http,
            url,
            token=token,
            rtype=rtype,
            limit=_limit(deadline, timeout_s),
            max_bytes=max_bytes,
        )
    except _Retryable as first:
        failure = first.error
    if deadline - anyio.current_time() < timeout_s:
        raise failure
    logger.info(
        "fhir fetch retry",
        extra={"fhir_resource_type": rtype, "fhir_status": failure.status},
    )
    try:
        return await _get_once(
            http,
            url,
            token=token,
            rtype=rtype,
            limit=_limit(deadline, timeout_s),
            max_bytes=max_bytes,
        )
    except _Retryable as second:
        failure = second.error
    raise failure


def _limit(deadline: float, timeout_s: float) -> float:
    return min(timeout_s, deadline - anyio.current_time())


async def _get_once(
    http: httpx.AsyncClient,
    url: str,
    *,
    token: str | None,
    rtype: str,
    limit: float,
    max_bytes: int,
) -> Fetched:
    if limit <= 0:
        raise FHIRUnavailable(rtype, kind=BUDGET)
    request = _build_request(http, url, token=token, rtype=rtype, limit=limit)
    status, content = await _send(http, request, rtype=rtype, limit=limit, max_bytes=max_bytes)
    return Fetched(_resource_of(status, content, rtype), len(content))


def _build_request(
    http: httpx.AsyncClient, url: str, *, token: str | None, rtype: str, limit: float
) -> httpx.Request:
    headers = {"Accept": "application/fhir+json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        request = http.build_request("GET", url, headers=headers, timeout=limit)
    except (httpx.InvalidURL, ValueError):  # e.g. control characters in an id
        request = None
    if request is None:
        raise FHIRNotAllowed(rtype, kind=BAD_QUERY)
    # Cookies a FHIR server set for an earlier caller must not ride along with this token.
    request.headers.pop("Cookie", None)
    return request


async def _send(
    http: httpx.AsyncClient, request: httpx.Request, *, rtype: str, limit: float, max_bytes: int
) -> tuple[int, bytearray]:
    """The status and, for a 2xx answer, the body (empty otherwise: it is never read)."""
    kind = TIMEOUT
    # httpx timeouts bound each socket operation; this scope bounds the whole exchange.
    with anyio.move_on_after(limit):
        try:
            response = await http.send(request, auth=None, follow_redirects=False, stream=True)
            try:
                status = response.status_code
                ok = 200 <= status < 300
                content = await _read_capped(response, rtype, max_bytes) if ok else bytearray()
            finally:
                await response.aclose()  # a body left unread closes the connection
            return status, content
        except httpx.TimeoutException:
            kind = TIMEOUT
        except httpx.HTTPError:  # transport and protocol errors; their text holds the URL
            kind = CONNECTION
    raise _Retryable(FHIRUnavailable(rtype, kind=kind))


async def _read_capped(response: httpx.Response, rtype: str, max_bytes: int) -> bytearray:
    """The decoded body, read chunk by chunk; FHIRUnavailable (not retried) past ``max_bytes``."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FHIRUnavailable(rtype, status=response.status_code, kind=TOO_LARGE)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        if len(body) + len(chunk) > max_bytes:
            raise FHIRUnavailable(rtype, status=response.status_code, kind=TOO_LARGE)
        body += chunk
    return body


def _resource_of(status: int, content: bytearray, rtype: str) -> dict[str, Any]:
    if status >= 500:
        raise _Retryable(FHIRUnavailable(rtype, status=status))
    if status >= 300 or status < 200:
        raise FHIRRefused(rtype, status=status)
    body = _json(content)
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FHIRUnavailable(rtype, status=status, kind=INVALID)
    if body["resourceType"] == "OperationOutcome":
        raise FHIRUnavailable(rtype, status=status, kind=OUTCOME)
    return body


def _json(content: bytearray) -> object:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
