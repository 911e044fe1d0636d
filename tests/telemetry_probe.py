"""Run in a process of its own (tests/test_no_framework_telemetry.py): a recording OpenTelemetry
tracer provider is installed for the process, as an operator's OpenTelemetry set-up would, one
app answers the seed hook call, and the spans started are printed as JSON lines.

    python -m tests.telemetry_probe service|plain
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry import trace

from cds_service.main import create_app
from tests.app_client import FIXTURES, make_settings

started: list[dict[str, Any]] = []


class RecordingTracer(trace.Tracer):
    """Records the name and attributes of every span asked for; starts none."""

    def start_span(self, name: str, *args: Any, **kwargs: Any) -> trace.Span:
        started.append({"name": name, "attributes": sorted(kwargs.get("attributes") or {})})
        return trace.INVALID_SPAN

    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.start_span(name, *args, **kwargs)
        return trace.use_span(trace.INVALID_SPAN)


class RecordingProvider(trace.TracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        return RecordingTracer()


def plain_app() -> FastAPI:
    """A FastAPI app with the framework's defaults: the control (its spans show the probe works)."""
    app = FastAPI()

    @app.post("/cds-services/{service_id}")
    async def call(service_id: str) -> dict[str, str]:
        return {"service": service_id}

    return app


async def main(which: str) -> None:
    trace.set_tracer_provider(RecordingProvider())
    app = plain_app() if which == "plain" else create_app(make_settings(Path(tempfile.mkdtemp())))
    body = (
        FIXTURES / "glucocorticoid-safety" / "seed-dermatomyositis" / "request.json"
    ).read_bytes()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        response = await client.post(
            "/cds-services/glucocorticoid-safety",
            content=body,
            headers={"content-type": "application/json"},
        )
    sys.stdout.write(json.dumps({"status": response.status_code, "spans": started}) + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
