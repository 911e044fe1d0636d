"""Read a JSON request body safely: media type, size limit, parse, bounded nesting."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from cds_service.errors import BodyTooLarge, InvalidRequest, UnsupportedMediaType
from cds_service.fhir.extract import nesting_exceeds

JSON_MEDIA_TYPES = frozenset({"application/json", "application/fhir+json"})


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_json(request: Request, *, max_bytes: int) -> Any:
    """The parsed body; 415 for a non-JSON media type, 413 past ``max_bytes``, 400 if unparseable."""
    if _media_type(request) not in JSON_MEDIA_TYPES:
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"request body larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"request body larger than {max_bytes} bytes")
        chunks.append(chunk)
    try:
        # orjson refuses nesting deeper than 1024 levels, which bounds the parse itself.
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise InvalidRequest("request body is not valid JSON") from None


def check_depth(value: Any, limit: int, where: str) -> None:
    """400 when ``value`` nests deeper than ``limit`` levels."""
    if nesting_exceeds(value, limit):
        raise InvalidRequest(f"{where} is nested too deeply")
