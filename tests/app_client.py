"""Build the app for tests: own settings, SQLite in tmp_path, pinned clock, mock FHIR transport."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from cds_service.logs import SafeJSONFormatter
from cds_service.main import create_app
from cds_service.metrics import Metrics
from cds_service.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "tests" / "data" / "cds-hooks-spec"
FIXTURES = REPO / "fixtures"
NOW = datetime.fromisoformat("2026-11-24T10:00:00+04:00")


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": SecretStr(f"sqlite:///{tmp_path}/cds.db"),
        "auth": "off",
        "cors_origins": ["https://sandbox.cds-hooks.org"],
        "fhir_servers": ["http://fhir.test"],
        "allow_insecure_fhir": True,
        "strict_response_check": True,
        "patient_key_secret": SecretStr("test-secret"),
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def app_client(
    settings: Settings,
    *,
    fhir_transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
    metrics: Metrics | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        settings, fhir_transport=fhir_transport, clock=clock, metrics=metrics or Metrics()
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://test",
        ) as client,
    ):
        yield client


class LogCapture(logging.Handler):
    """Collects every record formatted by the production formatter (what would reach the logs)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(SafeJSONFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def __enter__(self) -> LogCapture:
        root = logging.getLogger()
        self._level = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._level)
