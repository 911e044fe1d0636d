"""bone-health: glucocorticoid-induced osteoporosis (ACR 2022).

patient-view: long-term use -> fracture-risk category, DXA when due, a treatment prompt at
moderate or higher risk, calcium and vitamin D; denosumab's next injection when it is due or
overdue (it must not lapse). Order hooks: a glucocorticoid ordered at >= 2.5 mg/day for 3 months
or more -> baseline DXA within 6 months of starting. Silent when DXA is within the interval and
osteoporosis therapy counts as current (bone_therapy: per drug class), unless denosumab is due.
"""

from __future__ import annotations

from dataclasses import replace

from cds_service.card_text import fmt_date, fmt_months, fmt_number
from cds_service.facts import ClinicalFacts
from cds_service.rule_kind import Finding, Indicator, RuleKind
from cds_service.steroid_status import (
    COMMON_SAMPLE,
    COMMON_THRESHOLDS,
    EPS,
    ORDER_SAMPLE,
    REPLACEMENT_THRESHOLDS,
    OrderedSteroid,
    SteroidStatus,
    run_with_plan,
)
from cds_service.thresholds import Thresholds
from cds_service.topics import bone_child, bone_therapy
from cds_service.topics.bone_assessment import (
    ASSESSMENTS,
    READING,
    BoneWork,
    assessment,
    fracture_risk,
)
from cds_service.topics.child import SAMPLE as CHILD_SAMPLE
from cds_service.topics.child import THRESHOLDS as CHILD_THRESHOLDS
from cds_service.topics.child import child_facts, is_child
from cds_service.topics.patient_context import (
    THERAPY_CONTEXT_ROLES,
    THERAPY_CONTEXT_SAMPLE,
    THERAPY_CONTEXT_THRESHOLDS,
    TherapyContext,
)

ROLES = (
    "adrenal_insufficiency",
    "replacement_glucocorticoids",
    "long_term_steroid",
    "osteoporosis",
    "osteopenia",
    "fragility_fracture",
    "bone_density",
    *bone_therapy.ROLES,
    "hip_prosthesis",
    "laterality_left",
    "laterality_right",
    "laterality_bilateral",
    "body_weight",
    *THERAPY_CONTEXT_ROLES,
)
SUPPLEMENT_THRESHOLDS = (
    "bone.calcium_mg_low",
    "bone.calcium_mg_high",
    "bone.vitamin_d_iu_low",
    "bone.vitamin_d_iu_high",
)
SUPPLEMENT_SAMPLE = {"calcium_mg": "1000-1200", "vitamin_d_iu": "600-800"}


def supplement_facts(t: Thresholds) -> dict[str, str]:
    """Calcium and vitamin D ranges for the card text (ACR guideline numbers in thresholds):
    written once per loaded thresholds, a fresh dict for each caller."""
    return dict(t.derived("bone.supplement-facts", _supplement_ranges))


def _supplement_ranges(t: Thresholds) -> dict[str, str]:
    calcium = f"{fmt_number(t.value('bone.calcium_mg_low'))}-{fmt_number(t.value('bone.calcium_mg_high'))}"
    vitamin_d = f"{fmt_number(t.value('bone.vitamin_d_iu_low'))}-{fmt_number(t.value('bone.vitamin_d_iu_high'))}"
    return {"calcium_mg": calcium, "vitamin_d_iu": vitamin_d}


# ---------------------------------------------------------------------------------------------
# patient-view


def _lead(work: BoneWork, treat: bool) -> str:
    """The most consequential gap leads: a lapsing denosumab (rebound fractures), a lapsed
    yearly zoledronic acid, untreated risk, denosumab due soon, then a missing or overdue DXA."""
    dmab = work.drugs.denosumab
    if dmab is not None and dmab.state == "overdue":
        return "denosumab-overdue"
    if work.drugs.zoledronate is not None:
        return "zoledronate-overdue"
    if treat:
        return "treat"
    if dmab is not None:
        return "denosumab-due"
    if not work.dxa_current:
        return "dxa-due" if work.last_dxa else "dxa-none"
    return "supplements"


def _adult_details(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds, work: BoneWork, treat: bool
) -> tuple[list[str], list[str]]:
    """(detail ids, suggestion ids) of an adult's card: one DXA paragraph (site, vertebral
    fracture assessment, last scan and interval, then how to read it) or, with a DXA within
    the interval, the risk assessment from it; the lapsed zoledronic acid in place of the
    treatment prompt; known bone disease only when nothing else asks for treatment."""
    dmab_details, dmab_suggestions = work.denosumab_advice()
    read = assessment(facts, status, t, work)
    details = [*dmab_details, *status.unconfirmed_details(), "exposure"]
    if status.replacement:  # no source ties replacement doses to fracture risk either way
        details.append("replacement")
    if read == "age-unknown":
        details.append(read)
    zoledronate = ["zoledronate-overdue"] if work.drugs.zoledronate else []
    if work.known_disease and not (treat or work.therapy or zoledronate or dmab_details):
        details.append("known-bone-disease")
    details += work.drugs.details()
    dxa_details, suggestions = work.dxa_advice(never_done="dxa-none")
    details += dxa_details
    if read != "age-unknown":
        details.append(read)
    details += ["risk", *(zoledronate or (["treatment"] if treat else [])), "calcium-vitamin-d"]
    return details, dmab_suggestions + suggestions


def _treatment_prompt(detail: str, risk: str, age: int | None) -> str:
    """The treatment prompt for what is known (clinical review 2, findings 6-7): without a
    birth date, decide once it is recorded (a child gets a bisphosphonate only after a fracture,
    KB2 7.1); at very high risk an anabolic agent is preferred (ACR 2022, KB1 A3)."""
    if detail != "treatment":
        return detail
    if age is None:
        return "treatment-age-unknown"
    return "treatment-very-high" if risk == "very high" else detail


def evaluate_bone_health(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds
) -> Finding | None:
    if not status.long_term:
        return None
    work = BoneWork.of(facts, t)
    if work.done:
        return None
    if is_child(facts, t):
        return bone_child.child_finding(
            facts,
            status,
            t,
            work,
            status.current_mg,
            status.evidence,
            supplement_facts(t)
            | {"risk": "not assessed (child)", "frax_adjust_mg": "n/a", "very_high_mg": "n/a"},
            lead=status.unconfirmed_details(),
        )
    risk, risk_refs = fracture_risk(facts, t, status)
    overdue = work.drugs.denosumab is not None and work.drugs.denosumab.state == "overdue"
    treat = risk in ("moderate", "high", "very high") and not work.therapy and not overdue
    details, suggestions = _adult_details(facts, status, t, work, treat)
    details = [_treatment_prompt(d, risk, facts.age) for d in details]
    summary = _lead(work, treat)
    lapsed = overdue or work.drugs.zoledronate is not None
    indicator: Indicator = "warning" if treat or lapsed or not work.last_dxa else "info"
    if status.replacement:
        indicator = "info"
    values = status.facts() | {
        "age": str(facts.age) if facts.age is not None else "unknown",
        "last_dxa": fmt_date(work.last_dxa),
        "risk": risk,
        "dxa_interval_months": fmt_months(t.value("bone.dxa_interval_days")),
        **supplement_facts(t),
        "frax_adjust_mg": fmt_number(t.value("bone.frax_gc_adjust_above_mg")),
        "very_high_mg": fmt_number(t.value("exposure.very_high_daily_mg")),
        "dxa_baseline_months": fmt_months(t.value("bone.dxa_baseline_within_days")),
        **child_facts(facts, t, status.current_mg),
        **work.drugs.facts(t),
    }
    evidence = set(status.evidence) | set(risk_refs) | work.evidence(facts)
    context = TherapyContext.of(facts, t)  # kidney function, pregnancy: therapy choice
    return context.apply(
        Finding(
            summary=summary,
            details=tuple(details),
            indicator=indicator,
            facts=values,
            evidence=tuple(sorted(evidence)),
            suggestions=tuple(suggestions),
            recommended=tuple(suggestions[:1]),
        )
    )


BONE_HEALTH = RuleKind(
    name="glucocorticoid-bone-health",
    roles=ROLES,
    thresholds=(
        *COMMON_THRESHOLDS,
        *REPLACEMENT_THRESHOLDS,
        "exposure.very_high_daily_mg",
        "exposure.very_high_days",
        "exposure.very_high_cumulative_mg",
        "bone.frax_min_age",
        "bone.dxa_interval_days",
        "bone.t_score_osteoporosis",
        "bone.t_score_very_high",
        "bone.t_score_low",
        "bone.z_score_moderate",
        "bone.under40_moderate_daily_mg",
        "bone.under40_moderate_days",
        "bone.frax_gc_adjust_above_mg",
        "bone.dxa_baseline_within_days",
        *SUPPLEMENT_THRESHOLDS,
        *CHILD_THRESHOLDS,
        *THERAPY_CONTEXT_THRESHOLDS,
        *bone_therapy.THRESHOLDS,
    ),
    summaries=(
        "denosumab-overdue",
        "denosumab-due",
        "zoledronate-overdue",
        "dxa-none",
        "dxa-due",
        "treat",
        "supplements",
        "child-fracture",
        "child-dxa",
        "child-supplements",
        "pregnancy",
    ),
    details=(
        "denosumab-overdue",
        "denosumab-due",
        "unconfirmed",
        "exposure",
        "replacement",
        *ASSESSMENTS,
        *READING.values(),
        "age-unknown",
        *bone_child.DETAILS,
        "known-bone-disease",
        *bone_therapy.CLASS_DETAILS.values(),
        "dxa-none",
        "dxa-due",
        "dxa-none-hips",
        "dxa-due-hips",
        "risk",
        "zoledronate-overdue",
        "treatment",
        "treatment-very-high",
        "treatment-age-unknown",
        "treatment-kidney",
        "calcium-vitamin-d",
        "kidney",
        "pregnancy",
    ),
    suggestions=("denosumab-next-dose", "dxa", "dxa-child", "dxa-spine-forearm"),
    sample_facts=COMMON_SAMPLE
    | CHILD_SAMPLE
    | SUPPLEMENT_SAMPLE
    | bone_therapy.SAMPLE
    | THERAPY_CONTEXT_SAMPLE
    | {
        "age": "120",
        "last_dxa": "unknown date",
        "very_high_mg": "30",
        "risk": "low unless BMD shows otherwise",
        "dxa_interval_months": "24",
        "dxa_baseline_months": "6",
        "frax_adjust_mg": "7.5",
    },
    evaluate=evaluate_bone_health,
    sentences=frozenset(READING.values()) | bone_child.SENTENCES,
)


# ---------------------------------------------------------------------------------------------
# order-select, order-sign (ACR 2022: baseline BMD within 6 months of starting)


def evaluate_order_bone_health(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds
) -> Finding | None:
    ordered = status.ordered
    low = t.value("exposure.long_term_min_daily_mg")
    if ordered is None or ordered.planned_mg < low - EPS:
        return None
    run = run_with_plan(facts.exposure, low)
    if not (run >= t.value("exposure.long_term_min_days") or status.long_term):
        return None
    work = BoneWork.of(facts, t)
    if work.done:
        return None  # assessed within the interval and treated: nothing to add at ordering
    if is_child(facts, t):
        finding = bone_child.child_finding(
            facts,
            status,
            t,
            work,
            ordered.planned_mg,
            ordered.refs,
            supplement_facts(t),
            never_done="dxa-baseline",
        )
        if finding.summary != "child-fracture" and not work.dxa_current:
            finding = replace(finding, summary="dxa-due" if work.last_dxa else "dxa-baseline")
        elif finding.summary not in ("child-fracture", "dxa-baseline", "dxa-due"):
            finding = replace(finding, summary="child-supplements")
        return replace(finding, facts={**finding.facts, **_order_values(ordered, t, run, low)})
    details, suggestions, summary = _order_details(status, work)
    values = _order_values(ordered, t, run, low) | {
        "last_dxa": fmt_date(work.last_dxa),
        "dxa_interval_months": fmt_months(t.value("bone.dxa_interval_days")),
        **supplement_facts(t),
        **child_facts(facts, t, ordered.planned_mg),
        **work.drugs.facts(t),
    }
    evidence = set(ordered.refs) | set(status.evidence) | work.evidence(facts) | set(work.therapy)
    context = TherapyContext.of(facts, t)  # kidney function, pregnancy: therapy choice
    return context.apply(
        Finding(
            summary=summary,
            details=tuple(details),
            indicator="warning" if not (work.dxa_current or status.replacement) else "info",
            facts=values,
            evidence=tuple(sorted(evidence)),
            suggestions=tuple(suggestions),
            recommended=tuple(suggestions[:1]),
        )
    )


def _order_details(status: SteroidStatus, work: BoneWork) -> tuple[list[str], list[str], str]:
    """(detail ids, suggestion ids, summary) of an adult's order card. What to do about
    treatment: the lapsed yearly zoledronic acid, else a risk assessment when nothing counts
    as therapy; known bone disease only when neither applies."""
    details = ["exposure", "replacement"] if status.replacement else ["exposure"]
    dmab_details, dmab_suggestions = work.denosumab_advice()
    untreated = not work.therapy and not dmab_details
    zoledronate = ["zoledronate-overdue"] if work.drugs.zoledronate else []
    treatment = zoledronate or (["risk-assessment"] if untreated else [])
    if work.known_disease and not (treatment or work.therapy or dmab_details):
        details.append("known-bone-disease")
    details += work.drugs.details()
    dxa_details, suggestions = work.dxa_advice(never_done="dxa-baseline")
    details += [*dxa_details, *dmab_details, *treatment, "calcium-vitamin-d"]
    summary = dxa_details[0].removesuffix("-hips") if dxa_details else "supplements"
    return details, dmab_suggestions + suggestions, summary


def _order_values(ordered: OrderedSteroid, t: Thresholds, run: int, low: float) -> dict[str, str]:
    return ordered.facts() | {
        "run_days": str(run),
        "long_term_min_daily_mg": fmt_number(low),
        "long_term_months": fmt_months(t.value("exposure.long_term_min_days")),
        "dxa_baseline_months": fmt_months(t.value("bone.dxa_baseline_within_days")),
    }


ORDER_BONE_HEALTH = RuleKind(
    name="glucocorticoid-order-bone-health",
    roles=ROLES,
    thresholds=(
        *COMMON_THRESHOLDS,
        *REPLACEMENT_THRESHOLDS,
        "bone.dxa_baseline_within_days",
        "bone.dxa_interval_days",
        *SUPPLEMENT_THRESHOLDS,
        *CHILD_THRESHOLDS,
        *bone_therapy.THRESHOLDS,
        *THERAPY_CONTEXT_THRESHOLDS,
    ),
    summaries=(
        "dxa-baseline",
        "dxa-due",
        "supplements",
        "child-fracture",
        "child-supplements",
        "pregnancy",
    ),
    details=(
        "exposure",
        "replacement",
        *bone_child.DETAILS,
        "known-bone-disease",
        *bone_therapy.CLASS_DETAILS.values(),
        "dxa-baseline",
        "dxa-due",
        "dxa-baseline-hips",
        "dxa-due-hips",
        "denosumab-overdue",
        "denosumab-due",
        "zoledronate-overdue",
        "risk-assessment",
        "calcium-vitamin-d",
        "kidney",
        "pregnancy",
    ),
    suggestions=("denosumab-next-dose", "dxa", "dxa-child", "dxa-spine-forearm"),
    sample_facts=ORDER_SAMPLE
    | CHILD_SAMPLE
    | SUPPLEMENT_SAMPLE
    | bone_therapy.SAMPLE
    | THERAPY_CONTEXT_SAMPLE
    | {
        "run_days": "730",
        "long_term_min_daily_mg": "2.5",
        "long_term_months": "3",
        "dxa_baseline_months": "6",
        "last_dxa": "unknown date",
        "dxa_interval_months": "24",
    },
    evaluate=evaluate_order_bone_health,
    sentences=bone_child.SENTENCES,
)

KINDS = (BONE_HEALTH, ORDER_BONE_HEALTH)
