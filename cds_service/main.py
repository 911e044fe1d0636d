"""create_app(): lifespan (catalog, HTTP client, store, verifier), middleware, error handlers."""

from __future__ import annotations

import gc
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.telemetry import TelemetryConfig
from redis.asyncio import Redis
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cds_service import __version__
from cds_service.api import feedback
from cds_service.api.auth import JWTVerifier
from cds_service.api.card_log import CardLog
from cds_service.api.deps import Runtime
from cds_service.api.http import json_response
from cds_service.api.large_bodies import LargeBodyGate
from cds_service.api.redis_link import connect as connect_redis
from cds_service.api.redis_replay import RedisReplayCache
from cds_service.api.replay import MemoryReplayCache, ReplayCache
from cds_service.api.routes import router
from cds_service.api.snooze_bus import SnoozeBus
from cds_service.api.trusted_clients import load_clients
from cds_service.catalog import load_catalog
from cds_service.cdshooks import describe_errors
from cds_service.decide import DecideOptions
from cds_service.engine import Engine
from cds_service.errors import (
    CDSError,
    InvalidRequest,
    MethodNotAllowed,
    ReplayCacheUnavailable,
    StorageUnavailable,
    UnknownService,
    operation_outcome,
)
from cds_service.fhir.client import FHIRClient, FHIRClientConfig
from cds_service.gather import GatherOptions
from cds_service.logs import quiet_noisy_loggers
from cds_service.metrics import Metrics
from cds_service.preview.routes import preview_router
from cds_service.settings import Settings, get_settings
from cds_service.store.base import FeedbackStore, StoreError
from cds_service.store.connect import migrate
from cds_service.store.sql import SQLFeedbackStore
from cds_service.topics import KINDS

logger = logging.getLogger(__name__)

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
# /docs and /redoc (only with CDS_OPENAPI) are HTML pages that load Swagger UI and ReDoc from
# FastAPI's default CDN with inline bootstrap code: under "default-src 'none'" a browser shows a
# blank page. They get a CSP that allows just that; the API itself keeps the strict one.
DOCS_PATHS = frozenset({"/docs", "/redoc"})
DOCS_CSP = (
    b"default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    b"font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    b"https://cdn.redoc.ly; connect-src 'self'; worker-src blob:; frame-ancestors 'none'"
)
DOCS_SECURITY_HEADERS = [
    (name, DOCS_CSP if name == b"content-security-policy" else value)
    for name, value in SECURITY_HEADERS
]
_SLASHES = re.compile(r"/{2,}")
GC_THRESHOLDS = (20_000, 20, 20)  # gen0 allocations, gen1 and gen2 collection ratios
NO_FRAMEWORK_TELEMETRY: TelemetryConfig = {  # tests/test_no_framework_telemetry.py
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
}


class EdgeMiddleware:
    """Collapse doubled slashes (the sandbox builds ``…/cds-services//id`` from a trailing
    slash), add security headers, and log each request in one line: its route template, status
    and duration, plus the safe fields a route left in ``request.state.log_fields``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "//" in scope["path"]:
            scope = dict(scope)
            scope["path"] = _SLASHES.sub("/", scope["path"])
            scope["raw_path"] = scope["path"].encode()
        started = time.perf_counter()
        status_holder: dict[str, int] = {}
        security = DOCS_SECURITY_HEADERS if scope["path"] in DOCS_PATHS else SECURITY_HEADERS

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"server"]
                # A route that set its own CSP (the preview page) keeps it.
                own = {h[0].lower() for h in headers}
                added = [h for h in security if h[0] not in own]
                message = {**message, "headers": headers + added}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if logger.isEnabledFor(logging.INFO):
                route = scope.get("route")
                fields = (scope.get("state") or {}).get("log_fields") or {}
                logger.info(
                    "http request",
                    extra={
                        **fields,
                        "route": getattr(route, "path", "unmatched"),
                        "method": scope.get("method"),
                        "status": status_holder.get("status", 500),
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )


def _error_response(error: CDSError) -> Response:
    response = json_response(operation_outcome(error), error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, StorageUnavailable | ReplayCacheUnavailable):
        response.headers["Retry-After"] = str(error.retry_after_s)
    return response


async def _cds_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, CDSError)  # noqa: S101 - registered for CDSError only
    if exc.status >= 500:
        logger.error("request failed", extra={"error_code": exc.code, "status": exc.status})
    return _error_response(exc)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    if exc.status_code == 404:
        return _error_response(UnknownService("no such endpoint"))
    if exc.status_code == 405:
        response = _error_response(MethodNotAllowed("method not allowed on this endpoint"))
        if exc.headers and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    error = CDSError("request failed")
    error.status = exc.status_code  # type: ignore[misc]
    return _error_response(error)


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    # FastAPI's default 422 body echoes the input (tokens included): report field paths only.
    return _error_response(InvalidRequest(describe_errors(exc.errors())))


async def _unexpected(_: Request, exc: Exception) -> Response:
    logger.error("unhandled error", exc_info=exc, extra={"error_type": type(exc).__name__})
    return _error_response(CDSError("internal error"))


PREVIEW_NEEDS_AUTH_OFF = (
    "CDS_PREVIEW=true needs CDS_AUTH=off: the try-it page cannot sign EHR JWTs, and it shows "
    "patient data, so it is for a local trial only (`make run`), never beside authenticated hooks"
)


def check_preview_allowed(settings: Settings) -> None:
    """Refuse to build an app that would serve the preview beside authenticated hooks."""
    if settings.preview and settings.auth != "off":
        raise RuntimeError(PREVIEW_NEEDS_AUTH_OFF)


def _build_store(settings: Settings) -> FeedbackStore:
    """The feedback store, migrated when CDS_MIGRATE_ON_START is true.

    Migrating needs the database: when it is down the start fails (StoreError), fast and loud,
    rather than serving on a schema nobody checked; the orchestrator's restarts are the retry.
    With migrations off the database is not needed to start: hook calls work, issued cards
    queue, feedback gets 503 until it answers (see api/card_log.py).
    """
    url = settings.database_url.get_secret_value()
    if settings.migrate_on_start:
        migrate(url)
    store = SQLFeedbackStore(url, store_user_comments=settings.store_user_comments)
    # Retention: records older than CDS_RETENTION_DAYS go at every start (and `cds-service purge`).
    try:
        purged = store.purge(datetime.now(tz=UTC) - timedelta(days=settings.retention_days))
    except StoreError:
        logger.warning(
            "retention purge skipped: feedback store unavailable", extra={"component": "store"}
        )
        return store
    if purged:
        logger.info("old feedback records purged", extra={"count": purged, "component": "store"})
    return store


def _replay_cache(settings: Settings, redis: Redis | None) -> ReplayCache:
    """The jti cache: in Redis when configured (shared by every replica), else in memory."""
    if redis is None:
        return MemoryReplayCache(
            max_per_issuer=settings.replay_max_per_issuer, leeway_s=settings.jwt_leeway_s
        )
    return RedisReplayCache(
        redis,
        prefix=settings.redis_key_prefix,
        max_per_issuer=settings.replay_max_per_issuer,
        leeway_s=settings.jwt_leeway_s,
        max_exp_ahead_s=settings.jwt_max_exp_ahead_s,
    )


def create_app(
    settings: Settings | None = None,
    *,
    fhir_transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], datetime] | None = None,
    metrics: Metrics | None = None,
) -> FastAPI:
    """Build the app; nothing is created at import time (tests pass their own settings)."""
    settings = settings or get_settings()
    check_preview_allowed(settings)
    quiet_noisy_loggers()  # also when embedded or tested without configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalog = load_catalog(settings.hooks_dir, KINDS)  # ContentError stops startup
        app_metrics = metrics or Metrics()
        app_metrics.restrict_ids(
            [i for s in catalog.services for i in s.ids]
            + [h for s in catalog.services for h in s.definition.hooks]
            + [r.definition.id for s in catalog.services for r in s.rules]
            + [r.definition.topic for s in catalog.services for r in s.rules]
        )
        store = _build_store(settings)
        redis = (
            connect_redis(settings.redis_url.get_secret_value(), settings.redis_timeout_s)
            if settings.redis_url is not None
            else None
        )
        bus = (
            SnoozeBus(redis, settings.redis_key_prefix, lambda scope: card_log.invalidate(scope))
            if redis is not None
            else None
        )
        card_log = CardLog(
            store,
            app_metrics,
            max_pending=settings.card_queue_size,
            flush_interval_s=settings.card_flush_interval_s,
            retry_max_s=settings.store_retry_max_s,
            publish=bus.publish if bus is not None else None,
        )
        async with httpx.AsyncClient(
            transport=fhir_transport,
            follow_redirects=False,
            headers={"User-Agent": f"cds-service/{__version__}"},
        ) as http:
            verifier = None
            if settings.auth != "off":
                if settings.clients_file is None:
                    raise RuntimeError("CDS_AUTH requires CDS_CLIENTS_FILE (trusted EHR clients)")
                verifier = JWTVerifier(
                    load_clients(settings.clients_file),
                    http,
                    leeway_s=settings.jwt_leeway_s,
                    max_exp_ahead_s=settings.jwt_max_exp_ahead_s,
                    jwks_ttl_s=settings.jwks_cache_ttl_s,
                    replay_cache=_replay_cache(settings, redis),
                )
            fhir = FHIRClient(
                http,
                FHIRClientConfig(
                    allowed_prefixes=tuple(settings.fhir_servers),
                    allow_insecure=settings.allow_insecure_fhir,
                    timeout_s=settings.fhir_timeout_s,
                    budget_s=settings.fhir_budget_s,
                    max_pages=settings.fhir_max_pages,
                    max_entries=settings.fhir_max_entries,
                    page_size=settings.fhir_page_size,
                    max_concurrency=settings.fhir_max_concurrency,
                    max_response_bytes=settings.fhir_max_response_bytes,
                ),
            )
            app.state.runtime = Runtime(
                settings=settings,
                catalog=catalog,
                http=http,
                fhir=fhir,
                store=store,
                verifier=verifier,
                metrics=app_metrics,
                clock=clock or (lambda: datetime.now(tz=UTC)),
                engine=Engine(
                    GatherOptions(
                        fhir, settings.fhir_budget_s, card_log, settings.prefetch_max_entries
                    ),
                    DecideOptions(
                        lookback_days=settings.lookback_days,
                        strict=settings.strict_response_check,
                        on_rule_error=app_metrics.observe_rule_error,
                    ),
                ),
                card_log=card_log,
                redis=redis,
                snooze_bus=bus,
            )
            # Startup objects (catalog, models, modules) live for the whole process: keep the
            # cyclic GC from walking them on every collection (real-components.md part 3).
            gc.collect()
            gc.freeze()
            # A hook call allocates thousands of short-lived containers (parsed JSON, models):
            # at the default threshold (700) the young generation is collected several times
            # per call. Fewer, larger young collections cut GC time per call about threefold.
            gc.set_threshold(*GC_THRESHOLDS)
            try:
                async with anyio.create_task_group() as background:
                    background.start_soon(card_log.run)
                    if bus is not None:
                        background.start_soon(bus.run)
                    try:
                        yield
                    finally:
                        background.cancel_scope.cancel()
            finally:
                await card_log.close()  # one more flush; what storage refuses is logged lost
                close = getattr(store, "close", None)
                if callable(close):
                    close()
                if redis is not None:
                    await redis.aclose()

    # The OpenAPI document and its viewers describe every endpoint: off unless CDS_OPENAPI.
    app = FastAPI(
        title="Glucocorticoid safety CDS Hooks service",
        version=__version__,
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry spans, metrics and logs switch on by themselves as soon as
        # an operator configures OpenTelemetry for the process, and can carry request paths,
        # parsed bodies and validation errors (patient data) out of the service. The service
        # reports through its own PHI-safe log line and metrics only.
        telemetry=NO_FRAMEWORK_TELEMETRY,
        openapi_url="/openapi.json" if settings.openapi else None,
        docs_url="/docs" if settings.openapi else None,
        redoc_url="/redoc" if settings.openapi else None,
    )
    app.include_router(router)
    app.include_router(feedback.router)
    if settings.preview:
        app.include_router(preview_router(settings.preview_fixtures_dir))
    handlers: dict[Any, Any] = {
        CDSError: _cds_error,
        StarletteHTTPException: _http_error,
        RequestValidationError: _validation_error,
        Exception: _unexpected,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
    app.add_middleware(
        LargeBodyGate, min_bytes=settings.large_body_bytes, slots=settings.large_body_slots
    )
    # CORS answers preflights before any route (and so before auth) runs.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type"],
        # Private Network Access: Chromium asks before a public page (the CDS Hooks Sandbox)
        # calls a service on localhost or a private address; allowed origins get a yes.
        allow_private_network=True,
        max_age=600,
    )
    app.add_middleware(EdgeMiddleware)
    return app
