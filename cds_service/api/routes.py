"""HTTP routes: discovery, service calls, feedback, health and admin statistics."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request, Response

from cds_service.api.body import check_depth
from cds_service.api.deps import Runtime, RuntimeDep
from cds_service.api.http import (
    ERRORS,
    authenticate,
    bearer_matches,
    find_service,
    json_response,
    read_model,
    request_body,
)
from cds_service.api.redis_link import ping as ping_redis
from cds_service.cdshooks import (
    CDSRequest,
    CDSResponse,
    Discovery,
    ServiceDescriptor,
    dump,
)
from cds_service.engine import Evaluation, HookCall
from cds_service.errors import CDSError, Unauthorized
from cds_service.store.base import CardIssued, IssuedSuggestion
from cds_service.store.patient_key import patient_key
from cds_service.tenancy import ClientIdentity, SnoozeScope

logger = logging.getLogger(__name__)
router = APIRouter()
STORAGE_PING_TIMEOUT_S = 1.0  # within the readiness probe's timeoutSeconds (deploy/k8s)


@router.get("/cds-services", responses={200: {"model": Discovery}, 401: ERRORS[401]})
async def discovery(request: Request, runtime: RuntimeDep) -> Response:
    await authenticate(request, runtime)
    services = [
        ServiceDescriptor(
            hook=hook,
            id=service.discovery_id(hook),
            title=service.definition.title,
            description=service.definition.description,
            prefetch=dict(service.definition.prefetch) or None,
            usageRequirements=service.definition.usage_requirements,
        )
        for service in runtime.catalog.services
        for hook in service.definition.hooks
    ]
    return json_response(dump(Discovery(services=services)))


def request_scope(runtime: Runtime, request: CDSRequest, client: ClientIdentity) -> SnoozeScope:
    """Snoozes and repeats are the calling client's, for this fhirServer and patient only."""
    key = patient_key(
        runtime.settings.patient_key_secret.get_secret_value(),
        request.fhirServer,
        str(request.context.get("patientId")),
    )
    return SnoozeScope(client, key)


def _issued(call: HookCall, scope: SnoozeScope, evaluation: Evaluation) -> list[CardIssued]:
    request = call.request
    return [
        CardIssued(
            card_uuid=r.uuid,
            service_id=call.service.id,
            hook=request.hook,
            hook_instance=request.hookInstance,
            rule_id=r.rule.definition.id,
            rule_version=r.rule.definition.version,
            topic=r.rule.definition.topic,
            indicator=r.indicator,
            issued_at=call.now,
            patient_key=scope.patient_key,
            client=scope.client,
            suggestions=tuple(IssuedSuggestion(uuid=u, key=k) for u, k in r.suggestion_keys),
            draft_key=evaluation.draft_key,
        )
        for r in evaluation.rendered
    ]


@router.post(
    "/cds-services/{service_id}",
    responses={200: {"model": CDSResponse}, **ERRORS},
    openapi_extra=request_body(CDSRequest),
)
async def call_service(service_id: str, request: Request) -> Response:
    started = time.perf_counter()
    # The hot route reads the runtime itself: a FastAPI dependency costs a solve per call.
    runtime: Runtime = request.app.state.runtime
    hook = "unknown"
    status = 500
    try:
        client = await authenticate(request, runtime)
        service = find_service(runtime, service_id)
        cds_request = await read_model(
            request, CDSRequest, max_bytes=runtime.settings.max_body_bytes
        )
        for where, value in (
            ("context", cds_request.context),
            ("extension", cds_request.extension),
        ):
            check_depth(value, runtime.settings.max_json_depth, where)
        hook = cds_request.hook if cds_request.hook in service.definition.hooks else "other"
        scope = request_scope(runtime, cds_request, client)
        call = HookCall.of(cds_request, service, runtime.clock(), scope)
        evaluation = await runtime.engine.evaluate(call)
        _observe(runtime, evaluation)
        if runtime.card_log is not None and evaluation.rendered:
            runtime.card_log.submit(_issued(call, scope, evaluation))
        status = 200
        # The edge middleware writes one log line per request; these fields go into it.
        log_fields = {
            "service_id": service.id,
            "hook": hook,
            "hook_instance": cds_request.hookInstance,
            "card_count": len(evaluation.response["cards"]),
        }
        if evaluation.prefetch is not None:
            log_fields["prefetch_keys_provided"] = evaluation.prefetch.provided
            log_fields["prefetch_keys_fetched"] = evaluation.prefetch.fetched
            # A key can be provided or fetched and still incomplete (a cut search): both are said.
            log_fields["prefetch_keys_incomplete"] = evaluation.prefetch.incomplete
            log_fields["prefetch_keys_missing"] = evaluation.prefetch.missing
        request.state.log_fields = log_fields
        return json_response(evaluation.response)
    except CDSError as error:
        status = error.status
        raise
    finally:
        runtime.metrics.observe_call(service_id, hook, status, time.perf_counter() - started)


def _observe(runtime: Runtime, evaluation: Evaluation) -> None:
    metrics = runtime.metrics
    for rendered in evaluation.rendered:
        metrics.observe_card(rendered.rule.definition.topic, rendered.indicator)
    if evaluation.prefetch is not None:
        p = evaluation.prefetch
        for source, keys in (
            ("provided", p.provided),
            ("fetched", p.fetched),
            ("missing", p.missing),
            ("null", p.null),
        ):
            if keys:
                metrics.observe_prefetch_key(source, len(keys))  # type: ignore[arg-type]
    for rtype, count in evaluation.skipped_entries.items():
        metrics.observe_prefetch_skipped(rtype, count)
    for (rtype, reason), count in evaluation.unbound_entries.items():
        metrics.observe_prefetch_unbound(rtype, reason, count)
    for _ in range(evaluation.violations):
        metrics.observe_response_violation()


@router.get("/healthz")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> Response:
    """Ready to serve hook calls: the content is loaded, and the shared replay cache answers
    when tokens are checked against it (503 otherwise, with the reason).

    Hook calls do not need the database (issued cards are queued, snoozes are skipped), so a
    storage outage is reported here (``"status": "degraded"``) but never fails readiness: the
    readiness probe would otherwise take every replica out of service at once while hook calls
    still work. ``GET /healthz/storage`` is the storage check. Authenticated calls do need the
    replay cache (they get 503 without it), so an unreachable Redis fails readiness when JWTs
    are verified; with ``CDS_AUTH=off`` it only degrades snooze propagation.
    """
    storage = await _storage(runtime)
    body: dict[str, object] = {"services": len(runtime.catalog.services), **storage}
    reason = None if runtime.catalog.services else "content not loaded"
    if runtime.redis is not None:
        redis_up = await ping_redis(runtime.redis)
        body["redis"] = "ok" if redis_up else "unreachable"
        bus = runtime.snooze_bus
        body["snooze_subscriber"] = "connected" if bus and bus.connected else "disconnected"
        if not redis_up and runtime.verifier is not None and reason is None:
            reason = "replay cache unavailable"
    degraded = storage["storage"] != "ok" or body.get("redis", "ok") != "ok"
    degraded = degraded or body.get("snooze_subscriber", "connected") != "connected"
    body["status"] = "unavailable" if reason else "degraded" if degraded else "ready"
    if reason:
        body["reason"] = reason
    return json_response(body, 503 if reason else 200)


@router.get("/healthz/storage")
async def storage_health(runtime: RuntimeDep) -> Response:
    """The feedback store: 200 when it answers, 503 while it is down (feedback then gets 503
    too). For operators and monitoring, not for a Kubernetes probe."""
    storage = await _storage(runtime)
    return json_response(storage, 200 if storage["storage"] == "ok" else 503)


async def _storage(runtime: Runtime) -> dict[str, str | int]:
    """Storage state: a ping bounded by STORAGE_PING_TIMEOUT_S (none while backing off after a
    failure), and the card queue."""
    card_log = runtime.card_log
    if card_log is None:
        return {"storage": "not-configured"}
    answered = await card_log.check_storage(STORAGE_PING_TIMEOUT_S)
    return {
        "storage": "ok" if answered else "unreachable",
        "queued_cards": card_log.queued,
        "dropped_cards": card_log.dropped,
        "lost_cards": card_log.lost,
    }


@router.get("/metrics")
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus metrics; behind ``Authorization: Bearer $CDS_METRICS_TOKEN`` when it is set."""
    expected = runtime.settings.metrics_token
    if expected is not None and not bearer_matches(
        request.headers.get("authorization"), expected.get_secret_value()
    ):
        raise Unauthorized()
    payload, content_type = runtime.metrics.render()
    return Response(payload, media_type=content_type)
