"""Feedback (CDS Hooks 2.0) and the authenticated statistics endpoint."""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from cds_service.api.deps import RuntimeDep
from cds_service.api.http import (
    ERRORS,
    authenticate,
    find_service,
    json_response,
    read_model,
    request_body,
)
from cds_service.cdshooks import FeedbackRequest
from cds_service.errors import CDSError, InvalidRequest, Unauthorized
from cds_service.store.base import FeedbackItem

logger = logging.getLogger(__name__)
router = APIRouter()


def _timestamp(value: str, where: str) -> datetime:
    """RFC 3339 date-time with an offset (``Z`` or ``+hh:mm``)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{where} must be an RFC 3339 date-time") from None
    if "T" not in value.upper() or parsed.tzinfo is None:
        raise InvalidRequest(f"{where} must be an RFC 3339 date-time with an offset")
    return parsed.astimezone(UTC)


@router.post(
    "/cds-services/{service_id}/feedback",
    responses={
        200: {"description": "Stored (empty JSON object)"},
        **ERRORS,
        503: {**ERRORS[500], "description": "Storage unavailable; retry after Retry-After"},
    },
    openapi_extra=request_body(FeedbackRequest),
)
async def feedback(service_id: str, request: Request, runtime: RuntimeDep) -> Response:
    client = await authenticate(request, runtime)
    service = find_service(runtime, service_id)
    parsed = await read_model(request, FeedbackRequest, max_bytes=runtime.settings.max_body_bytes)
    items = []
    offered = {r.code for r in service.definition.override_reasons}
    for index, entry in enumerate(parsed.feedback):
        reason = entry.overrideReason.reason if entry.overrideReason else None
        system, code = _override_reason(
            reason.system if reason else None,
            reason.code if reason else None,
            service.definition.override_reason_system,
            offered,
        )
        items.append(
            FeedbackItem(
                card_uuid=entry.card,
                outcome=entry.outcome,
                accepted_suggestions=tuple(s.id for s in entry.acceptedSuggestions or ()),
                override_system=system,
                override_code=code,
                user_comment=entry.overrideReason.userComment if entry.overrideReason else None,
                outcome_timestamp=_timestamp(
                    entry.outcomeTimestamp, f"feedback.{index}.outcomeTimestamp"
                ),
            )
        )
    if runtime.store is None or runtime.card_log is None:
        raise CDSError("feedback storage is not configured")
    # The cards queued here are written first, so feedback on them is matched; 503 with
    # Retry-After when they or the feedback cannot be written (storage down). Feedback acts on
    # the cards issued to this client only; on any other card the answer is the same as on an
    # unknown card (docs/tenancy.md).
    result = await runtime.card_log.record_feedback(service.id, client, items, runtime.clock())
    for item in items:
        runtime.metrics.observe_feedback(item.outcome)
    logger.info(
        "feedback stored",
        extra={"service_id": service.id, "count": result.stored, "status": 200},
    )
    return json_response({})


@router.get("/admin/stats")
async def admin_stats(request: Request, runtime: RuntimeDep, since: str | None = None) -> Response:
    expected = runtime.settings.admin_token
    header = request.headers.get("authorization", "")
    if expected is None or not _constant_time_equal(
        header, f"Bearer {expected.get_secret_value()}"
    ):
        raise Unauthorized()
    since_dt = None
    if since:
        try:
            since_dt = datetime.fromisoformat(since)
        except ValueError:
            raise InvalidRequest("since must be an ISO date") from None
        if since_dt.tzinfo is None:
            since_dt = since_dt.replace(tzinfo=UTC)
    store, card_log = runtime.store, runtime.card_log
    if store is None or card_log is None:
        raise CDSError("feedback storage is not configured")
    await card_log.flush()  # best effort: cards still queued are not counted yet
    rows = await card_log.call(lambda: store.stats(since_dt))  # 503 while storage is down
    return json_response(
        {
            "rows": [
                {
                    "service_id": r.service_id,
                    "rule_id": r.rule_id,
                    "topic": r.topic,
                    "issued": r.issued,
                    "accepted": r.accepted,
                    "overridden": r.overridden,
                    "no_feedback": r.no_feedback,
                    "acceptance_rate": r.acceptance_rate,
                    "override_reasons": dict(r.override_reasons),
                    "client_iss": r.client_iss,
                    "client_tenant": r.client_tenant,
                }
                for r in rows
            ]
        }
    )


# Stored for an override reason the service never offered (another code system, another code):
# it counts as overridden and in the report, and never snoozes (only the card's own reasons do).
UNRECOGNISED_REASON = "unrecognised"


def _override_reason(
    system: str | None, code: str | None, our_system: str, offered: set[str]
) -> tuple[str | None, str | None]:
    """The reason as stored: one of the card's own ``overrideReasons`` as sent; no reason as
    none; anything else as ``unrecognised`` (its text is the caller's: never stored, so it can
    neither snooze under another system's code nor reach the report)."""
    if code is None and system is None:
        return None, None
    if system == our_system and code in offered:
        return system, code
    return None, UNRECOGNISED_REASON


def _constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
