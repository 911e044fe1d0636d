"""The ceiling: a FastAPI app that only reads the request body and parses it with orjson.

Run by the benchmark with the same uvicorn flags as the service, so the ratio of the two
latencies on the same body is the cost of everything the service does beyond parsing JSON.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request, Response

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

_EMPTY = b'{"cards":[]}'


@app.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@app.post("/cds-services/{service_id}")
async def call(service_id: str, request: Request) -> Response:  # noqa: ARG001 - route shape only
    body = await request.body()
    parsed = orjson.loads(body)
    if not isinstance(parsed, dict):
        return Response(b'{"error":"not an object"}', status_code=400)
    return Response(_EMPTY, media_type="application/json")
