"""bone-health: glucocorticoid-induced osteoporosis (ACR 2022).

patient-view: long-term use -> fracture-risk category, DXA when due, a treatment prompt at
moderate or higher risk, calcium and vitamin D; denosumab's next injection when it is due or
overdue (it must not lapse). Order hooks: a glucocorticoid ordered at >= 2.5 mg/day for 3 months
or more -> baseline DXA within 6 months of starting. Silent when DXA is within the interval and
osteoporosis therapy counts as current (bone_therapy: per drug class), unless denosumab is due.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from cds_service.card_text import fmt_date, fmt_months, fmt_number
from cds_service.facts import ClinicalFacts, Hit
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
from cds_service.topics.bone_therapy import BoneTherapy
from cds_service.topics.child import SAMPLE as CHILD_SAMPLE
from cds_service.topics.child import THRESHOLDS as CHILD_THRESHOLDS
from cds_service.topics.child import child_facts, is_child
from cds_service.topics.patient_context import (
    THERAPY_CONTEXT_ROLES,
    THERAPY_CONTEXT_SAMPLE,
    THERAPY_CONTEXT_THRESHOLDS,
    TherapyContext,
    both_hips_replaced,
    newest,
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
    """Calcium and vitamin D ranges for the card text (ACR guideline numbers in thresholds)."""
    calcium = f"{fmt_number(t.value('bone.calcium_mg_low'))}-{fmt_number(t.value('bone.calcium_mg_high'))}"
    vitamin_d = f"{fmt_number(t.value('bone.vitamin_d_iu_low'))}-{fmt_number(t.value('bone.vitamin_d_iu_high'))}"
    return {"calcium_mg": calcium, "vitamin_d_iu": vitamin_d}


@dataclass(frozen=True)
class BoneWork:
    """What is already done for the bones: the last DXA, active therapy, known bone disease."""

    dxa_hits: tuple[Hit, ...]  # results, procedures and DXA orders (drafts included)
    last_dxa: date | None
    dxa_current: bool
    therapy: tuple[str, ...]  # references of the osteoporosis therapy that counts today
    drugs: BoneTherapy
    known_disease: tuple[str, ...]
    hips_replaced: bool  # both hips: the DXA is of the spine and forearm

    @staticmethod
    def of(facts: ClinicalFacts, t: Thresholds) -> BoneWork:
        dxa_hits = tuple(facts.of("bone_density"))
        last_dxa = newest(list(dxa_hits))
        interval = t.value("bone.dxa_interval_days")
        drugs = BoneTherapy.of(facts, t)
        return BoneWork(
            dxa_hits=dxa_hits,
            last_dxa=last_dxa,
            dxa_current=last_dxa is not None and (facts.today - last_dxa).days <= interval,
            therapy=drugs.current,
            drugs=drugs,
            known_disease=facts.refs("osteoporosis")
            + facts.refs("osteopenia")
            + facts.refs("fragility_fracture"),
            hips_replaced=both_hips_replaced(facts),
        )

    @property
    def done(self) -> bool:
        """Assessed within the interval and treated, no denosumab dose due: nothing to add."""
        return self.dxa_current and bool(self.therapy) and self.drugs.denosumab is None

    def dxa_advice(self, never_done: str) -> tuple[list[str], list[str]]:
        """(detail ids, suggestion ids) for a DXA that is due; ``never_done`` names the detail
        for a patient with no DXA on file."""
        if self.dxa_current:
            return [], []
        details = ["dxa-due" if self.last_dxa else never_done]
        if self.hips_replaced:
            return [*details, "hips-replaced"], ["dxa-spine-forearm"]
        return details, ["dxa"]

    def evidence(self, facts: ClinicalFacts) -> set[str]:
        refs = {h.ref for h in self.dxa_hits} | set(self.known_disease) | set(self.therapy)
        dmab = self.drugs.denosumab
        if dmab is not None:  # the injection the due date counts from
            refs |= {h.ref for h in facts.of("denosumab") if h.given and h.day == dmab.last}
        return refs | set(facts.refs("hip_prosthesis"))

    def denosumab_advice(self) -> tuple[list[str], list[str]]:
        """(detail ids, suggestion ids) when denosumab's next injection is due or overdue."""
        dmab = self.drugs.denosumab
        if dmab is None:
            return [], []
        return [f"denosumab-{dmab.state}"], ["denosumab-next-dose"]


# ---------------------------------------------------------------------------------------------
# patient-view


def fracture_risk(
    facts: ClinicalFacts, t: Thresholds, status: SteroidStatus
) -> tuple[str, list[str]]:
    """ACR 2022 fracture-risk category from the record: (category, evidence refs)."""
    exp = facts.exposure
    very_high_dose = (
        exp.longest_run_at_or_above(t.value("exposure.very_high_daily_mg"))
        > t.value("exposure.very_high_days")
    ) or status.cumulative_mg >= t.value("exposure.very_high_cumulative_mg")
    fractures = facts.refs("fragility_fracture")
    if fractures or very_high_dose:
        return "very high", list(fractures)
    if facts.age is not None and facts.age >= t.value("bone.frax_min_age"):
        return _adult_risk(facts, t)
    return _under_40_risk(facts, t)


def _scores(facts: ClinicalFacts, kind: str) -> tuple[float | None, list[str]]:
    """Lowest T- or Z-score on file and the references of every such score."""
    hits = [
        h
        for h in facts.of("bone_density")
        if h.properties.get("score") == kind and h.value is not None
    ]
    return min((h.value for h in hits if h.value is not None), default=None), [h.ref for h in hits]


def _adult_risk(facts: ClinicalFacts, t: Thresholds) -> tuple[str, list[str]]:
    """40 and over: FRAX with the glucocorticoid adjustment, T-scores and known disease."""
    lowest, refs = _scores(facts, "t")
    if lowest is not None and lowest <= t.value("bone.t_score_very_high"):
        return "very high", refs
    if (lowest is not None and lowest <= t.value("bone.t_score_osteoporosis")) or facts.of(
        "osteoporosis"
    ):
        return "high", refs + list(facts.refs("osteoporosis"))
    if (lowest is not None and lowest < t.value("bone.t_score_low")) or facts.of("osteopenia"):
        return "moderate", refs + list(facts.refs("osteopenia"))
    return "to be determined (FRAX)", []


def _under_40_risk(facts: ClinicalFacts, t: Thresholds) -> tuple[str, list[str]]:
    """Under 40 FRAX is not validated; ACR 2022 uses dose, fractures and Z-scores."""
    lowest, refs = _scores(facts, "z")
    sustained = facts.exposure.longest_run_at_or_above(t.value("bone.under40_moderate_daily_mg"))
    if (
        lowest is not None
        and lowest < t.value("bone.z_score_moderate")
        and sustained >= t.value("bone.under40_moderate_days")
    ):
        return "moderate", refs
    if facts.of("osteoporosis"):
        return "moderate", list(facts.refs("osteoporosis"))
    return "low unless BMD shows otherwise", []


def _lead(work: BoneWork, treat: bool) -> str:
    """The most consequential gap leads: a lapsing denosumab (rebound fractures), untreated
    risk, denosumab due soon, then a missing or overdue DXA."""
    dmab = work.drugs.denosumab
    if dmab is not None and dmab.state == "overdue":
        return "denosumab-overdue"
    if treat:
        return "treat"
    if dmab is not None:
        return "denosumab-due"
    if not work.dxa_current:
        return "dxa-due" if work.last_dxa else "dxa-none"
    return "supplements"


def _age_detail(facts: ClinicalFacts, status: SteroidStatus, t: Thresholds) -> str:
    if facts.age is None:
        return "age-unknown"
    if facts.age < t.value("bone.frax_min_age"):
        return "under-40"
    # FRAX underestimates risk at very high doses (ACR 2022 key points; KB1 A3).
    high = status.current_mg >= t.value("exposure.very_high_daily_mg")
    return "frax-high-dose" if high else "frax"


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
        )
    risk, risk_refs = fracture_risk(facts, t, status)
    dmab_details, dmab_suggestions = work.denosumab_advice()
    details = [*dmab_details, "exposure", _age_detail(facts, status, t)]
    if work.known_disease:
        details.append("known-bone-disease")
    details += work.drugs.details()
    dxa_details, suggestions = work.dxa_advice(never_done="dxa-none")
    details += dxa_details
    overdue = dmab_details == ["denosumab-overdue"]
    treat = risk in ("moderate", "high", "very high") and not work.therapy and not overdue
    details += (
        ["risk", "treatment", "calcium-vitamin-d"] if treat else ["risk", "calcium-vitamin-d"]
    )
    suggestions = dmab_suggestions + suggestions
    summary = _lead(work, treat)
    indicator: Indicator = "warning" if treat or overdue or not work.last_dxa else "info"
    if status.replacement:  # no source ties replacement doses to fracture risk either way
        details.insert(details.index("exposure") + 1, "replacement")
        indicator = "info"
    values = status.facts(t) | {
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
        "exposure",
        "replacement",
        "frax",
        "frax-high-dose",
        "under-40",
        "age-unknown",
        *bone_child.DETAILS,
        "known-bone-disease",
        *bone_therapy.CLASS_DETAILS.values(),
        "dxa-none",
        "dxa-due",
        "hips-replaced",
        "risk",
        "treatment",
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
    details = ["exposure", "known-bone-disease"] if work.known_disease else ["exposure"]
    if status.replacement:
        details.insert(1, "replacement")
    details += work.drugs.details()
    dxa_details, suggestions = work.dxa_advice(never_done="dxa-baseline")
    details += dxa_details
    dmab_details, dmab_suggestions = work.denosumab_advice()
    details += dmab_details
    suggestions = dmab_suggestions + suggestions
    if not work.therapy and not dmab_details:
        details.append("risk-assessment")
    details.append("calcium-vitamin-d")
    summary = dxa_details[0] if dxa_details else "supplements"
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
        "hips-replaced",
        "denosumab-overdue",
        "denosumab-due",
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
)

KINDS = (BONE_HEALTH, ORDER_BONE_HEALTH)
