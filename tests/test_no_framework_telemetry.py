"""FastAPI's own OpenTelemetry instrumentation stays off (cds_service.main): with OpenTelemetry
configured for the process it would trace every request, with paths, bodies and errors, outside
the service's PHI-safe log line and metrics. Each case runs in a process of its own, since a
tracer provider is set once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def probe(which: str) -> dict[str, Any]:
    proc = subprocess.run(  # noqa: S603 - this interpreter, a fixed module
        [sys.executable, "-m", "tests.telemetry_probe", which],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_a_plain_fastapi_app_traces_requests_once_opentelemetry_is_configured() -> None:
    # The control: the probe sees the framework's spans (so the next test can fail).
    result = probe("plain")
    assert result["status"] == 200
    assert result["spans"], "the recording tracer saw no span: the probe does not work"


def test_the_service_starts_no_framework_span_with_opentelemetry_configured() -> None:
    result = probe("service")
    assert result["status"] == 200
    assert result["spans"] == []
