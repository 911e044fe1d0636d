"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


pytest_plugins = ["tests.fhir_server", "tests.db"]
