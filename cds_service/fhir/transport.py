"""One FHIR GET: headers, time limit, at most one retry, and each outcome mapped to a FHIRError.

The token is an argument: it goes into this request's Authorization header and nowhere else.
Exceptions are raised outside ``except`` blocks on purpose: a chained httpx or JSON error
carries the URL (which holds the patient id) in its message.
"""

from __future__ import annotations

import logging
from typing import Any

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
    FHIRNotAllowed,
    FHIRRefused,
    FHIRUnavailable,
)

logger = logging.getLogger(__name__)

__all__ = ["get_json"]


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
) -> dict[str, Any]:
    """GET ``url`` and return its FHIR resource (any type but OperationOutcome) as JSON.

    Each attempt takes at most ``timeout_s`` and ends by ``deadline`` (``anyio.current_time()``
    clock). A 5xx, timeout or connection error is retried once, only if a full ``timeout_s``
    is still left. Raises FHIRUnavailable (5xx, timeout, connection, not a FHIR resource,
    OperationOutcome, no budget), FHIRRefused (1xx, 3xx, 4xx) or FHIRNotAllowed (a URL httpx
    refuses to build); ``rtype`` is the resource type those errors name.
    """
    try:
        return await _get_once(
            http, url, token=token, rtype=rtype, limit=_limit(deadline, timeout_s)
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
            http, url, token=token, rtype=rtype, limit=_limit(deadline, timeout_s)
        )
    except _Retryable as second:
        failure = second.error
    raise failure


def _limit(deadline: float, timeout_s: float) -> float:
    return min(timeout_s, deadline - anyio.current_time())


async def _get_once(
    http: httpx.AsyncClient, url: str, *, token: str | None, rtype: str, limit: float
) -> dict[str, Any]:
    if limit <= 0:
        raise FHIRUnavailable(rtype, kind=BUDGET)
    request = _build_request(http, url, token=token, rtype=rtype, limit=limit)
    response = await _send(http, request, rtype=rtype, limit=limit)
    return _resource_of(response, rtype)


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
    http: httpx.AsyncClient, request: httpx.Request, *, rtype: str, limit: float
) -> httpx.Response:
    kind = TIMEOUT
    # httpx timeouts bound each socket operation; this scope bounds the whole exchange.
    with anyio.move_on_after(limit):
        try:
            return await http.send(request, auth=None, follow_redirects=False)
        except httpx.TimeoutException:
            kind = TIMEOUT
        except httpx.HTTPError:  # transport and protocol errors; their text holds the URL
            kind = CONNECTION
    raise _Retryable(FHIRUnavailable(rtype, kind=kind))


def _resource_of(response: httpx.Response, rtype: str) -> dict[str, Any]:
    status = response.status_code
    if status >= 500:
        raise _Retryable(FHIRUnavailable(rtype, status=status))
    if status >= 300 or status < 200:
        raise FHIRRefused(rtype, status=status)
    body = _json(response.content)
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FHIRUnavailable(rtype, status=status, kind=INVALID)
    if body["resourceType"] == "OperationOutcome":
        raise FHIRUnavailable(rtype, status=status, kind=OUTCOME)
    return body


def _json(content: bytes) -> object:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
