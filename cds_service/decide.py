"""The decide step of a hook call: record -> exposure -> facts -> rules -> cards.

Pure and synchronous: it depends only on the gathered data, the loaded content and the
evaluation time (``call.now``). No I/O, no clock, no randomness but card UUIDs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from cds_service.cards import EXTENSION_PREFIX, CardContext, RenderedCard, check_card, render_card
from cds_service.catalog import Rule
from cds_service.cdshooks import Card, validation_paths
from cds_service.exposure import ExposureParams, summarize_exposure
from cds_service.facts import ClinicalFacts, collect_facts
from cds_service.fhir.extract import to_datetime
from cds_service.gather import Gathered
from cds_service.hook_call import HookCall
from cds_service.lab_results import ResultRules
from cds_service.prefetch import PrefetchResult
from cds_service.record import (
    DRAFTS_KEY,
    INVALID_R4,
    MEDICATION_USE_TYPES,
    PatientRecord,
    RawMatcher,
    build_record,
)
from cds_service.rule_kind import Finding
from cds_service.steroid_status import SteroidStatus
from cds_service.thresholds import Thresholds

logger = logging.getLogger(__name__)


class ResponseCheckFailed(Exception):
    """A card broke the CDS Hooks card rules (raised only when strict checking is on)."""


@dataclass(frozen=True)
class DecideOptions:
    lookback_days: int | None = None  # overrides exposure.lookback_days (CDS_LOOKBACK_DAYS)
    strict: bool = False  # raise on a card that breaks the card rules or the wire model
    on_rule_error: Callable[[str], None] | None = None


@dataclass
class Evaluation:
    """The response plus what the caller records (issued cards) and reports (metrics)."""

    response: dict[str, Any]  # the CDS Hooks response body, JSON-ready
    rendered: list[RenderedCard] = field(default_factory=list)
    prefetch: PrefetchResult | None = None
    failed_rules: list[str] = field(default_factory=list)
    skipped_entries: dict[str, int] = field(default_factory=dict)  # unreadable, by resource type
    # Entries that are not provably the context patient's, by (resource type, reason).
    unbound_entries: dict[tuple[str, str], int] = field(default_factory=dict)
    skipped_by_key: dict[str, dict[str, int]] = field(default_factory=dict)  # key -> reason -> n
    violations: int = 0
    silenced_topics: list[str] = field(default_factory=list)
    draft_key: str | None = None  # order hooks: the key the cards are recorded under
    repeated_topics: list[str] = field(default_factory=list)
    patient_deceased: bool = False  # the record says the patient has died: no rule was run


def exposure_params(t: Thresholds, lookback_days: int | None) -> ExposureParams:
    return ExposureParams.from_thresholds(t, lookback_days)


def patient_record(call: HookCall, gathered: Gathered) -> PatientRecord:
    """The context patient's record; everything left out is counted in it: entries of other
    patients (and prefetch keys set aside for holding another Patient), unreadable entries,
    unreadable draft orders (under ``context.draftOrders``)."""
    service = call.service
    steroid = service.derived(
        "record.steroid-matcher",
        lambda: RawMatcher((service.valuesets["gc_ingredients"], service.valuesets["gc_products"])),
    )
    record = build_record(
        gathered.prefetch.entries,
        service.selector,
        binding=call.binding,
        steroid=steroid,
    )
    for key, verdict in call.set_aside.items():
        record.count_skip(key, verdict)
        record.unbound[("Patient", verdict)] += 1
    for raw in call.drafts.unreadable:
        record.count_skip(DRAFTS_KEY, INVALID_R4)
        if steroid.hit(raw, {}):
            record.unreadable_steroid[DRAFTS_KEY] += 1
    return record


def clinical_facts(
    call: HookCall, gathered: Gathered, options: DecideOptions
) -> tuple[ClinicalFacts, PatientRecord]:
    """The patient's facts from the gathered data, and the record they were read from."""
    record = patient_record(call, gathered)
    return _facts(call, record, options), record


def _facts(call: HookCall, record: PatientRecord, options: DecideOptions) -> ClinicalFacts:
    """The patient's facts from their record and the call's drafts."""
    service = call.service
    t = service.thresholds
    medication_use = [r for rt in MEDICATION_USE_TYPES for r in record.by_type.get(rt, [])]
    exposure = summarize_exposure(
        medication_use,
        record.medications,
        service.glucocorticoid_knowledge,
        service.derived(
            ("decide.exposure-params", options.lookback_days),
            lambda: exposure_params(t, options.lookback_days),
        ),
        call.now,
        draft_orders=call.drafts.medication_requests,
        observations=record.by_type.get("Observation", []),
    )
    return collect_facts(
        record,
        service.role_map,
        exposure,
        call.now,
        recent_medication_days=t.value("exposure.recent_use_days"),
        drafts=call.drafts,
        data_labels=service.definition.data_labels,
        role_days=service.derived("facts.role-days", lambda: _role_days(t)),
        results=service.derived(
            "facts.result-rules",
            lambda: ResultRules.of(service.valuesets, t.section("result_cutoffs")),
        ),
    )


def _role_days(t: Thresholds) -> dict[str, float]:
    """Role -> days a drug of that role counts as current after its last dose ([current_use])."""
    return {role: v.value for role, v in t.section("current_use").items()}


def deceased(record: PatientRecord, now: datetime) -> bool:
    """Whether the Patient resource says the patient has died by ``now`` (deceasedBoolean, or a
    deceasedDateTime not after it; a date without a time counts from its start)."""
    patient = record.patient
    if patient is None:
        return False
    if patient.deceasedBoolean:
        return True
    died = to_datetime(patient.deceasedDateTime)
    return died is not None and died <= now


def decide(
    call: HookCall,
    gathered: Gathered,
    options: DecideOptions,
    record: PatientRecord | None = None,
) -> Evaluation:
    """The response to ``call``; ``record`` when the caller already built it
    (``patient_record``: the engine does, to judge how heavy the rest is)."""
    return decide_showing_facts(call, gathered, options, record)[0]


def decide_showing_facts(
    call: HookCall,
    gathered: Gathered,
    options: DecideOptions,
    record: PatientRecord | None = None,
) -> tuple[Evaluation, ClinicalFacts, SteroidStatus]:
    """decide(), with the facts and the glucocorticoid status the rules judged from (for the
    explanation: computed once, so it cannot drift from the cards)."""
    if record is None:
        record = patient_record(call, gathered)
    facts = _facts(call, record, options)
    t = call.service.thresholds
    status = SteroidStatus.of(facts, t, call.service.valuesets.get("replacement_glucocorticoids"))
    evaluation = Evaluation(
        response={"cards": []},
        prefetch=gathered.prefetch,
        skipped_entries=dict(record.skipped),
        unbound_entries=dict(record.unbound),
        skipped_by_key={
            k: dict(sorted(c.items())) for k, c in sorted(record.skipped_by_key.items())
        },
    )
    evaluation.draft_key = call.hook.draft_key(call.drafts, status.ordered)
    context = CardContext(call.patient_id, call.encounter_id, call.now.date().isoformat())
    unjudged = set(gathered.prefetch.missing) | set(gathered.prefetch.incomplete)
    rules = [r for r in call.service.rules if call.request.hook in r.definition.hooks]
    if deceased(record, call.now):
        # No care to recommend for a patient the record says has died; the response says why
        # it is silent (a chart opened after death, or a record not yet updated).
        evaluation.patient_deceased = True
        rules = []
    # A fallback rule speaks only when no other rule of the call found anything to say.
    ordered = [r for r in rules if not r.definition.fallback] + [
        r for r in rules if r.definition.fallback
    ]
    spoke = False
    for rule in ordered:
        # A rule that failed could not judge: "nothing due" would then be a guess.
        if rule.definition.fallback and (spoke or evaluation.failed_rules):
            continue
        finding = _run_rule(rule, facts, status, t, call, evaluation, options)
        spoke = spoke or finding is not None
        if finding is None or not _shown(rule, finding, gathered, evaluation):
            continue
        rendered = render_card(
            finding,
            rule,
            call.service,
            context,
            silenced_suggestions=gathered.silenced_suggestions,
            unread=[k for k in call.service.keys_read(rule) if k in unjudged],
        )
        if _card_ok(rendered, rule, options.strict):
            evaluation.rendered.append(rendered)
        else:
            evaluation.violations += 1
    evaluation.response = _response(evaluation, gathered.prefetch)
    return evaluation, facts, status


def _run_rule(
    rule: Rule,
    facts: ClinicalFacts,
    status: SteroidStatus,
    t: Thresholds,
    call: HookCall,
    evaluation: Evaluation,
    options: DecideOptions,
) -> Finding | None:
    """The rule's finding; a failing rule is logged, counted and named in the response, and
    must not take the others down."""
    try:
        return rule.kind.evaluate(facts, status, t)
    except Exception:
        definition = rule.definition
        logger.exception(
            "rule failed",
            extra={
                "rule_id": definition.id,
                "rule_version": definition.version,
                "service_id": call.service.id,
            },
        )
        evaluation.failed_rules.append(definition.id)
        if options.on_rule_error is not None:
            options.on_rule_error(definition.id)
        return None


def _shown(rule: Rule, finding: Finding, gathered: Gathered, evaluation: Evaluation) -> bool:
    """Whether a finding becomes a card: not when its topic is snoozed for the patient, nor
    (order-sign) when the same card was shown for the same draft order moments ago, unless it
    is critical (a safety stop is shown every time)."""
    topic = rule.definition.topic
    if topic in gathered.silenced_topics:
        evaluation.silenced_topics.append(topic)
        return False
    key = evaluation.draft_key
    if (
        key is not None
        and finding.indicator != "critical"
        and (topic, key) in gathered.recent_cards
    ):
        evaluation.repeated_topics.append(topic)
        return False
    return True


def _card_ok(rendered: RenderedCard, rule: Rule, strict: bool) -> bool:
    """Never send a card silently broken: check it against the CDS Hooks card rules (and, in
    strict mode, the wire model); strict mode raises instead of dropping it."""
    problems = check_card(rendered.card)
    if strict and not problems:
        problems = wire_model_problems(rendered.card)
    if not problems:
        return True
    logger.error(
        "card failed the CDS Hooks self-check",
        extra={"rule_id": rule.definition.id, "count": len(problems)},
    )
    if strict:
        raise ResponseCheckFailed("; ".join(problems))
    return False


def _response(evaluation: Evaluation, prefetch: PrefetchResult) -> dict[str, Any]:
    extension: dict[str, Any] = {}
    if evaluation.failed_rules:
        extension[f"{EXTENSION_PREFIX}.failed-rules"] = evaluation.failed_rules
    unjudged = sorted(set(prefetch.missing) | set(prefetch.incomplete))
    if unjudged:
        extension[f"{EXTENSION_PREFIX}.missing-data"] = unjudged
    if evaluation.silenced_topics:
        extension[f"{EXTENSION_PREFIX}.snoozed-topics"] = sorted(evaluation.silenced_topics)
    if evaluation.repeated_topics:
        extension[f"{EXTENSION_PREFIX}.repeated-topics"] = sorted(evaluation.repeated_topics)
    if evaluation.patient_deceased:
        extension[f"{EXTENSION_PREFIX}.patient-deceased"] = True
    if evaluation.skipped_by_key:
        # Per prefetch key (and context.draftOrders): how many entries were left out, and why
        # (record.SKIP_REASONS). Counts only: no ids, no values.
        extension[f"{EXTENSION_PREFIX}.skipped-entries"] = evaluation.skipped_by_key
    response: dict[str, Any] = {"cards": [r.card for r in evaluation.rendered]}
    if extension:
        response["extension"] = extension
    return response


def wire_model_problems(card: dict[str, Any]) -> list[str]:
    """Strict mode also validates each card against the CDS Hooks wire model."""
    try:
        Card.model_validate(card)
    except ValidationError as exc:
        return [f"card does not match the wire model at {validation_paths(exc)}"]
    return []
