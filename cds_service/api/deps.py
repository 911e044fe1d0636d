"""The per-process Runtime (catalog, engine, HTTP client, store, verifier, metrics) and its
dependency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import httpx
from fastapi import Depends, Request
from redis.asyncio import Redis

from cds_service.api.auth import JWTVerifier
from cds_service.api.card_log import CardLog
from cds_service.api.snooze_bus import SnoozeBus
from cds_service.catalog import Catalog
from cds_service.engine import Engine
from cds_service.fhir.client import FHIRClient
from cds_service.metrics import Metrics
from cds_service.settings import Settings
from cds_service.store.base import FeedbackStore


@dataclass
class Runtime:
    settings: Settings
    catalog: Catalog
    http: httpx.AsyncClient
    fhir: FHIRClient
    store: FeedbackStore | None
    verifier: JWTVerifier | None
    metrics: Metrics
    clock: Callable[[], datetime]
    engine: Engine
    card_log: CardLog | None = None
    redis: Redis | None = None  # shared replay cache and snooze invalidation (CDS_REDIS_URL)
    snooze_bus: SnoozeBus | None = None


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI would run a plain def dependency in a worker thread on every request.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
