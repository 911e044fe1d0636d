"""osteonecrosis: avascular necrosis risk of glucocorticoids.

patient-view: a high cumulative dose, a run at a high daily dose, IV pulses or a prior
osteonecrosis -> ask about joint pain, MRI of symptomatic joints (never of a replaced hip).
Order hooks: the order itself reaches a high daily dose for long enough, or the projected
cumulative dose crosses the threshold -> information card.
"""

from __future__ import annotations

from cds_service.card_text import fmt_number
from cds_service.facts import ClinicalFacts
from cds_service.rule_kind import Finding, RuleKind
from cds_service.steroid_status import (
    COMMON_SAMPLE,
    COMMON_THRESHOLDS,
    ORDER_SAMPLE,
    SteroidStatus,
    projected_cumulative_mg,
    run_with_plan,
)
from cds_service.thresholds import Thresholds
from cds_service.topics.patient_context import hips_replaced

THRESHOLDS = (
    "osteonecrosis.cumulative_mg",
    "osteonecrosis.daily_mg",
    "osteonecrosis.high_dose_min_days",
)
THRESHOLD_SAMPLE = {"cumulative_threshold_g": "2", "daily_threshold_mg": "20"}


def _threshold_facts(t: Thresholds) -> dict[str, str]:
    return {
        "cumulative_threshold_g": fmt_number(t.value("osteonecrosis.cumulative_mg") / 1000),
        "daily_threshold_mg": fmt_number(t.value("osteonecrosis.daily_mg")),
    }


def _joint_advice(facts: ClinicalFacts) -> tuple[list[str], list[str]]:
    """(detail ids, suggestion ids) by which hips are replaced and where necrosis was before."""
    hips = hips_replaced(facts)
    prior = facts.of("osteonecrosis")
    if hips >= {"left", "right"}:
        details, suggestions = ["hips-replaced"], ["mri-knee", "mri-other-joint"]
    else:
        details = ["hips-native" if not hips else "one-hip-replaced"]
        suggestions = ["mri-hip", "mri-other-joint"]
    prior_sites = {str(h.properties.get("site")) for h in prior}
    if prior_sites & {"hip", "knee"} or (prior and hips):
        details.append("multifocal")
    return details, suggestions


def evaluate_osteonecrosis(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds
) -> Finding | None:
    if not (status.any_systemic or status.coded_long_term):
        return None  # no steroid evidence: not this service's business
    exp = facts.exposure
    cumulative = status.cumulative_mg > t.value("osteonecrosis.cumulative_mg")
    high_run = exp.longest_run_at_or_above(t.value("osteonecrosis.daily_mg")) >= t.value(
        "osteonecrosis.high_dose_min_days"
    )
    pulses = exp.iv_pulse_days()
    prior = facts.of("osteonecrosis")
    if not (cumulative or high_run or pulses or prior):
        return None
    pain = facts.of("joint_pain", active_only=True)
    joint_details, suggestions = _joint_advice(facts)
    details = ["exposure", "pain"] if pain else ["exposure"]
    if prior:
        details.append("prior")
    details += [*joint_details, "minimise"]
    if pain:
        summary = "pain"
    else:
        summary = "both-hips-replaced" if "hips-replaced" in joint_details else "risk"
    values = status.facts(t) | {"pulse_count": str(len(pulses))} | _threshold_facts(t)
    evidence = (
        set(status.evidence)
        | {h.ref for h in prior}
        | {h.ref for h in pain}
        | set(facts.refs("hip_prosthesis"))
        | {src for _, _, src in pulses}
    )
    return Finding(
        summary=summary,
        details=tuple(details),
        indicator="warning" if pain else "info",
        facts=values,
        evidence=tuple(sorted(evidence)),
        suggestions=tuple(suggestions),
    )


OSTEONECROSIS = RuleKind(
    name="glucocorticoid-osteonecrosis",
    roles=("osteonecrosis", "hip_prosthesis", "joint_pain", "long_term_steroid"),
    thresholds=(*COMMON_THRESHOLDS, *THRESHOLDS),
    summaries=("pain", "both-hips-replaced", "risk"),
    details=(
        "exposure",
        "pain",
        "prior",
        "hips-replaced",
        "one-hip-replaced",
        "hips-native",
        "multifocal",
        "minimise",
    ),
    suggestions=("mri-hip", "mri-knee", "mri-other-joint"),
    sample_facts=COMMON_SAMPLE | THRESHOLD_SAMPLE | {"pulse_count": "99"},
    evaluate=evaluate_osteonecrosis,
)


def evaluate_order_osteonecrosis(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds
) -> Finding | None:
    ordered = status.ordered
    if ordered is None:
        return None
    exp = facts.exposure
    high_run = run_with_plan(exp, t.value("osteonecrosis.daily_mg"))
    projected = projected_cumulative_mg(exp)
    high = high_run >= t.value("osteonecrosis.high_dose_min_days")
    cumulative = projected > t.value("osteonecrosis.cumulative_mg")
    if not (high or cumulative):
        return None
    prior = facts.of("osteonecrosis")
    details = ["exposure", "prior"] if prior else ["exposure"]
    values = (
        ordered.facts()
        | _threshold_facts(t)
        | {
            "high_dose_days": str(high_run),
            "projected_g": fmt_number(round(projected / 1000, 1)),
            "high_dose_min_days": fmt_number(t.value("osteonecrosis.high_dose_min_days")),
        }
    )
    return Finding(
        summary="prior" if prior else "risk",
        details=(*details, "symptoms", "minimise"),
        indicator="info",
        facts=values,
        evidence=tuple(sorted(set(ordered.refs) | {h.ref for h in prior})),
    )


ORDER_OSTEONECROSIS = RuleKind(
    name="glucocorticoid-order-osteonecrosis",
    roles=("osteonecrosis",),
    thresholds=THRESHOLDS,
    summaries=("risk", "prior"),
    details=("exposure", "prior", "symptoms", "minimise"),
    suggestions=(),
    sample_facts=ORDER_SAMPLE
    | THRESHOLD_SAMPLE
    | {"high_dose_days": "730", "projected_g": "999.9", "high_dose_min_days": "28"},
    evaluate=evaluate_order_osteonecrosis,
)

KINDS = (OSTEONECROSIS, ORDER_OSTEONECROSIS)
