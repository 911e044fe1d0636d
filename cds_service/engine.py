"""evaluate(): prefetch -> record -> exposure and facts -> rules -> cards, one hook call."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from cds_service.cards import EXTENSION_PREFIX, CardContext, RenderedCard, check_card, render_card
from cds_service.catalog import Catalog, Service
from cds_service.cdshooks import Card, CDSRequest, validation_paths
from cds_service.errors import InvalidRequest
from cds_service.exposure import ExposureParams, GlucocorticoidKnowledge, summarize_exposure
from cds_service.facts import collect_facts
from cds_service.fhir.models import MedicationRequest
from cds_service.order_rules import DraftOrders, OrderFacts, draft_hits, steroid_draft_key
from cds_service.prefetch import Fetcher, PrefetchResult, resolve
from cds_service.record import MEDICATION_USE_TYPES, ValidationCache, build_record
from cds_service.rules import Finding

logger = logging.getLogger(__name__)


class ResponseCheckFailed(Exception):
    """A card broke the CDS Hooks card rules (raised only when strict checking is on)."""


@dataclass
class Evaluation:
    """The response plus what the caller records (issued cards) and reports (metrics)."""

    response: dict[str, Any]  # the CDS Hooks response body, JSON-ready
    rendered: list[RenderedCard] = field(default_factory=list)
    prefetch: PrefetchResult | None = None
    failed_rules: list[str] = field(default_factory=list)
    skipped_entries: dict[str, int] = field(default_factory=dict)
    violations: int = 0
    silenced_topics: list[str] = field(default_factory=list)
    draft_key: str | None = None  # order hooks: the glucocorticoid draft order(s) advised on
    repeated_topics: list[str] = field(default_factory=list)


def glucocorticoid_knowledge(service: Service, catalog: Catalog) -> GlucocorticoidKnowledge:
    """The drug knowledge the exposure engine needs, from the service's value-set roles
    (built once per loaded service and catalog)."""
    thresholds, knowledge = service.derived(
        "gc-knowledge", lambda: (catalog.thresholds, _build_knowledge(service, catalog))
    )
    if thresholds is not catalog.thresholds:  # a service evaluated with another catalog
        return _build_knowledge(service, catalog)
    return knowledge


def _build_knowledge(service: Service, catalog: Catalog) -> GlucocorticoidKnowledge:
    vs = service.valuesets
    return GlucocorticoidKnowledge(
        ingredients=vs["gc_ingredients"],
        products=vs["gc_products"],
        excluded=vs["gc_excluded"],
        nonsystemic_routes=vs["nonsystemic_routes"],
        intravenous_routes=vs["intravenous_routes"],
        peq_factor={
            k: v.value for k, v in catalog.thresholds.section("prednisone_equivalents").items()
        },
    )


def exposure_params(catalog: Catalog, lookback_days: int | None) -> ExposureParams:
    t = catalog.thresholds
    return ExposureParams(
        lookback_days=int(lookback_days or t.value("exposure.lookback_days")),
        open_course_cap_days=int(t.value("exposure.open_course_cap_days")),
        iv_pulse_min_daily_peq_mg=t.value("exposure.iv_pulse_min_daily_peq_mg"),
    )


def check_hook(request: CDSRequest, service: Service) -> None:
    """400 unless the service serves this hook and the context carries what the hook requires."""
    if request.hook not in service.definition.hooks:
        raise InvalidRequest(f"service does not serve hook {request.hook!r}")
    context = request.context
    required = ["patientId", "userId"]
    if request.hook in ("order-select", "order-sign"):
        required.append("draftOrders")
    if request.hook == "order-select":
        required.append("selections")
    missing = [name for name in required if context.get(name) in (None, "", [], {})]
    if missing:
        raise InvalidRequest("context is missing: " + ", ".join(f"context.{m}" for m in missing))
    if not isinstance(context["patientId"], str):
        raise InvalidRequest("context.patientId must be a string")


async def evaluate(
    request: CDSRequest,
    service: Service,
    catalog: Catalog,
    *,
    now: datetime,
    fetcher: Fetcher | None,
    lookback_days: int | None = None,
    fetch_budget_s: float = 1.5,
    draft_orders: DraftOrders | Sequence[MedicationRequest] = (),
    silenced_topics: frozenset[str] = frozenset(),
    silenced_suggestions: frozenset[str] = frozenset(),
    strict: bool = False,
    validation_cache: ValidationCache | None = None,
    on_rule_error: Callable[[str], None] | None = None,
    is_repeat: Callable[[str, str], Awaitable[bool]] | None = None,
) -> Evaluation:
    """Run one hook call. Raises MissingData (412) when a needed key cannot be had.

    ``draft_orders``: the order hooks' drafts (a plain sequence is all in focus).
    ``is_repeat(topic, draft_key)``: whether that card was issued for the same draft order
    moments ago; at order-sign such a card is skipped unless critical.
    """
    check_hook(request, service)
    token = request.fhirAuthorization.access_token if request.fhirAuthorization else None
    prefetched = await resolve(
        service.definition.prefetch,
        service.needs(request.hook),
        request.context,
        request.prefetch,
        fhir_server=request.fhirServer,
        token=token,
        fetcher=fetcher,
        budget_s=fetch_budget_s,
    )
    record = build_record(prefetched.entries, service.selector, validation_cache)
    medication_use = [r for t in MEDICATION_USE_TYPES for r in record.by_type.get(t, [])]
    drafts = draft_orders if isinstance(draft_orders, DraftOrders) else DraftOrders.of(draft_orders)
    exposure = summarize_exposure(
        medication_use,
        record.medications,
        glucocorticoid_knowledge(service, catalog),
        exposure_params(catalog, lookback_days),
        now,
        draft_orders=drafts.medication_requests,
    )
    roles_by_type = service.roles_by_type
    facts = collect_facts(
        record,
        roles_by_type,
        exposure,
        now,
        recent_medication_days=catalog.thresholds.value("exposure.recent_use_days"),
        draft_orders=drafts.medication_requests,
    )
    evaluation = Evaluation(response={"cards": []}, prefetch=prefetched)
    if request.hook in ("order-select", "order-sign"):
        for hit in draft_hits(drafts.entries, roles_by_type, now.date()):
            facts.hits.setdefault(hit.role, []).append(hit)
        facts = OrderFacts(**vars(facts), focus=drafts.focus, draft_names=drafts.names())
        evaluation.draft_key = steroid_draft_key(exposure, drafts.focus)
    evaluation.skipped_entries = dict(record.skipped)
    context = CardContext(
        patient_id=str(request.context["patientId"]),
        encounter_id=request.context.get("encounterId")
        if isinstance(request.context.get("encounterId"), str)
        else None,
        today=now.date().isoformat(),
    )
    for rule in service.rules:
        definition = rule.definition
        if request.hook not in definition.hooks:
            continue
        try:
            finding: Finding | None = rule.kind.evaluate(facts, catalog.thresholds)
        except Exception:  # one failing rule must not take the others down (logged, counted)
            logger.exception(
                "rule failed",
                extra={
                    "rule_id": definition.id,
                    "rule_version": definition.version,
                    "service_id": service.id,
                },
            )
            evaluation.failed_rules.append(definition.id)
            if on_rule_error is not None:
                on_rule_error(definition.id)
            continue
        if finding is None:
            continue
        if definition.topic in silenced_topics:
            evaluation.silenced_topics.append(definition.topic)
            continue
        # order-select re-fires on every edit of the draft (the sandbox does), so it always
        # shows its advice; order-sign leaves out what was shown for the same order moments ago.
        if (
            is_repeat is not None
            and request.hook == "order-sign"
            and evaluation.draft_key is not None
            and finding.indicator != "critical"  # a safety stop is shown every time
            and await is_repeat(definition.topic, evaluation.draft_key)
        ):
            evaluation.repeated_topics.append(definition.topic)
            continue
        rendered = render_card(
            finding, rule, service, context, silenced_suggestions=silenced_suggestions
        )
        problems = check_card(rendered.card)
        if strict and not problems:
            problems = wire_model_problems(rendered.card)
        if problems:
            evaluation.violations += 1
            logger.error(
                "card failed the CDS Hooks self-check",
                extra={"rule_id": definition.id, "count": len(problems)},
            )
            if strict:
                raise ResponseCheckFailed("; ".join(problems))
            continue  # never send a card silently broken
        evaluation.rendered.append(rendered)
    extension: dict[str, Any] = {}
    if evaluation.failed_rules:
        extension[f"{EXTENSION_PREFIX}.failed-rules"] = evaluation.failed_rules
    unjudged = sorted(set(prefetched.missing) | set(prefetched.incomplete))
    if unjudged:
        extension[f"{EXTENSION_PREFIX}.missing-data"] = unjudged
    if evaluation.silenced_topics:
        extension[f"{EXTENSION_PREFIX}.snoozed-topics"] = sorted(evaluation.silenced_topics)
    if evaluation.repeated_topics:
        extension[f"{EXTENSION_PREFIX}.repeated-topics"] = sorted(evaluation.repeated_topics)
    evaluation.response = {"cards": [r.card for r in evaluation.rendered]}
    if extension:
        evaluation.response["extension"] = extension
    return evaluation


def wire_model_problems(card: dict[str, Any]) -> list[str]:
    """Strict mode also validates each card against the CDS Hooks wire model."""
    try:
        Card.model_validate(card)
    except ValidationError as exc:
        return [f"card does not match the wire model at {validation_paths(exc)}"]
    return []
