"""Shared HTTP pieces of the routes: JSON responses, OpenAPI schemas, authentication, lookup."""

from __future__ import annotations

import hmac
from typing import Any, TypeVar

import orjson
from fastapi import Request, Response
from pydantic import BaseModel, ValidationError

from cds_service.api.auth import audience_for
from cds_service.api.body import read_json
from cds_service.api.deps import Runtime
from cds_service.catalog import Service
from cds_service.cdshooks import OperationOutcome, validation_paths
from cds_service.errors import InvalidRequest, Unauthorized, UnknownService
from cds_service.tenancy import ANONYMOUS, ClientIdentity

M = TypeVar("M", bound=BaseModel)

# Routes read raw bodies (size limits, media types, field-path-only errors), so the request and
# response schemas are declared for the OpenAPI document here.
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OperationOutcome, "description": text}
    for status, text in {
        400: "Malformed request (field paths only)",
        401: "Missing or invalid JWT",
        404: "Unknown service",
        412: "Required data could not be obtained",
        413: "Body too large",
        415: "Not JSON",
        500: "Internal error",
    }.items()
}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace ``$ref``s into ``$defs`` by their targets (the request models have no cycles)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def request_body(model: type[Any]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema, schema.get("$defs", {}))}},
        }
    }


def json_response(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


async def read_model(request: Request, model: type[M], *, max_bytes: int) -> M:
    """The JSON body validated as ``model``: 415/413/400 as read_json, 400 with field paths."""
    body = await read_json(request, max_bytes=max_bytes)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest(validation_paths(exc)) from None


async def authenticate(request: Request, runtime: Runtime) -> ClientIdentity:
    """Verify the EHR's JWT per CDS_AUTH (off | optional | required): who called, the scope of
    what it stores and reads (docs/tenancy.md). ANONYMOUS when no token is checked."""
    mode = runtime.settings.auth
    header = request.headers.get("authorization")
    if mode == "off" or (mode == "optional" and header is None):
        return ANONYMOUS
    if runtime.verifier is None:
        raise Unauthorized()
    audience = audience_for(runtime.settings.public_url, str(request.url))
    try:
        verified = await runtime.verifier.verify(header, audience)
    except Unauthorized:
        runtime.metrics.observe_jwt_rejection("invalid")
        raise
    return ClientIdentity(iss=verified.iss, tenant=verified.tenant or "")


def bearer_matches(authorization_header: str | None, token: str) -> bool:
    """Whether the header is ``Bearer <token>``, compared in constant time (an operator token
    such as ``CDS_METRICS_TOKEN``, not a JWT)."""
    expected = f"Bearer {token}".encode()
    return hmac.compare_digest((authorization_header or "").encode(), expected)


def find_service(runtime: Runtime, service_id: str) -> Service:
    service = runtime.catalog.find(service_id)
    if service is None:
        raise UnknownService("no such CDS service")
    return service
