"""infection-prevention: PJP prophylaxis, latent TB and hepatitis B screening and results,
vaccines, and vigilance for opportunistic lung infection during glucocorticoid therapy.

patient-view: long-term use, or a current course long enough at a dose that matters (PJP or TB
thresholds, planned days included). Order hooks: the glucocorticoid being ordered reaches the
PJP dose for long enough. One InfectionPlan (topics/infection_plan.py) collects what is still
to do for both; silent when everything is on file.
"""

from __future__ import annotations

from dataclasses import replace

from cds_service.facts import ClinicalFacts
from cds_service.rule_kind import Finding, RuleKind
from cds_service.steroid_status import (
    COMMON_SAMPLE,
    COMMON_THRESHOLDS,
    ORDER_SAMPLE,
    REPLACEMENT_THRESHOLDS,
    SteroidStatus,
    run_with_plan,
)
from cds_service.thresholds import Thresholds
from cds_service.topics import child, vaccination
from cds_service.topics.infection_plan import (
    DETAILS,
    SAMPLE,
    SUGGESTIONS,
    SUMMARIES,
    THRESHOLDS,
    InfectionPlan,
)
from cds_service.topics.patient_context import (
    interstitial_lung_disease,
    pregnancy,
    second_immunosuppressant,
)

ROLES = (
    "adrenal_insufficiency",
    "replacement_glucocorticoids",
    "pjp_drugs",
    "immunosuppressant_drugs",
    "immunosuppression_conditions",
    "b_cell_depletion",
    "cyclophosphamide",
    "methotrexate",
    "ild",
    "myositis",
    "tb_tests",
    "latent_tb",
    "ltbi_drugs",
    "hbv_tests",
    "hepatitis_b",
    "hbv_antivirals",
    "vaccines",
    "sulfa_allergy",
    "kidney_function",
    "pregnancy",
    "pregnancy_status",
    "body_weight",
)


def _tmp_smx_taken(facts: ClinicalFacts) -> bool:
    return any(
        h.properties.get("agent") == "tmp-smx" for h in facts.of("pjp_drugs", active_only=True)
    )


# ---------------------------------------------------------------------------------------------
# patient-view


def evaluate_infection(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds
) -> Finding | None:
    exp = facts.exposure
    pjp_mg = t.value("infection.pjp_min_daily_mg")
    pjp_run = exp.current_run_at_or_above(pjp_mg, include_planned=True)
    pjp_course = pjp_run >= t.value("infection.pjp_min_days")
    tb_run = exp.current_run_at_or_above(t.value("infection.tb_min_daily_mg"), include_planned=True)
    tb_course = tb_run >= t.value("infection.tb_min_days")
    # Long-term use, or a current course that is (or is planned to be) long enough at a dose that
    # matters for infection: a 5-day burst is not immunosuppression worth screening for.
    if not (status.long_term or pjp_course or tb_course):
        return None
    second_agent = second_immunosuppressant(facts)
    if status.replacement and not second_agent:
        return None  # physiological replacement is not immunosuppression
    high_dose = pjp_course and exp.current_daily_peq_mg() >= pjp_mg
    ild = interstitial_lung_disease(facts)
    pregnant = pregnancy(facts, t)
    plan = InfectionPlan()
    if high_dose and not facts.refs("pjp_drugs", active_only=True):
        plan.add_pjp(facts, t, stronger=bool(second_agent or ild), pregnant=bool(pregnant))
    elif _tmp_smx_taken(facts):
        plan.add_methotrexate(facts)
    plan.add_tb(facts, t, screen=status.long_term or tb_course or bool(second_agent))
    plan.add_hbv(facts, t)
    dose = max(exp.current_daily_peq_mg(), exp.planned_daily.get(exp.today, 0.0))
    plan.add_vaccines(vaccination.plan_vaccines(facts, t, dose_mg=dose, pregnant=bool(pregnant)))
    live_mg, _ = child.live_vaccine_line(facts, t)
    live_run = exp.current_run_at_or_above(live_mg, include_planned=False)
    if live_run >= t.value("infection.live_vaccine_min_days"):
        plan.details.append("live-vaccines")
        plan.values |= child.live_vaccine_card_line(facts, t)
    if not plan.todo:
        return None  # screening, prophylaxis and vaccines are all on file
    if high_dose or second_agent or ild:
        plan.details.append("lung-vigilance")
    finding = plan.finding(
        t,
        values=status.facts(),
        evidence=(*status.evidence, *second_agent, *ild, *pregnant),
        pjp_run=pjp_run,
    )
    return replace(finding, details=(*status.unconfirmed_details(), *finding.details))


INFECTION = RuleKind(
    name="glucocorticoid-infection-prevention",
    roles=("long_term_steroid", *ROLES),
    thresholds=(
        *COMMON_THRESHOLDS,
        *REPLACEMENT_THRESHOLDS,
        *THRESHOLDS,
        "infection.tb_min_daily_mg",
        "infection.tb_min_days",
    ),
    summaries=SUMMARIES,
    details=(
        "unconfirmed",
        *DETAILS,
        "live-vaccines",
        "live-vaccines-pregnancy",
        "live-vaccines-pregnancy-child",
        "lung-vigilance",
    ),
    suggestions=SUGGESTIONS,
    sample_facts=COMMON_SAMPLE | SAMPLE | {"pjp_run_days": "365"},
    evaluate=evaluate_infection,
)


# ---------------------------------------------------------------------------------------------
# order-select, order-sign: PJP prophylaxis ready to sign, TB/HBV screening, vaccines


def evaluate_order_infection(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds
) -> Finding | None:
    ordered = status.ordered
    if ordered is None:
        return None
    exp = facts.exposure
    pjp_run = run_with_plan(exp, t.value("infection.pjp_min_daily_mg"))
    if pjp_run < t.value("infection.pjp_min_days"):
        return None
    second_agent = second_immunosuppressant(facts)
    if status.replacement and not second_agent:
        return None  # physiological replacement is not immunosuppression
    ild = interstitial_lung_disease(facts)
    pregnant = pregnancy(facts, t)
    plan = InfectionPlan()
    # Active on record, or in the same draftOrders Bundle (selected or not): both cover it.
    if not facts.refs("pjp_drugs", active_only=True):
        plan.add_pjp(facts, t, stronger=bool(second_agent or ild), pregnant=bool(pregnant))
    elif _tmp_smx_taken(facts):
        plan.add_methotrexate(facts)
    plan.add_tb(facts, t, screen=True)
    plan.add_hbv(facts, t)
    dose = max(exp.current_daily_peq_mg(), ordered.planned_mg)
    plan.add_vaccines(vaccination.plan_vaccines(facts, t, dose_mg=dose, pregnant=bool(pregnant)))
    live_mg, _ = child.live_vaccine_line(facts, t)
    live_run = run_with_plan(exp, live_mg)
    if live_run >= t.value("infection.live_vaccine_min_days"):
        plan.details.append("live-vaccines")
        plan.values |= child.live_vaccine_card_line(facts, t)
    if not plan.todo:
        return None  # prophylaxis covered, screening and vaccines on file
    return plan.finding(
        t,
        values=ordered.facts(),
        evidence=(*ordered.refs, *second_agent, *ild, *pregnant),
        pjp_run=pjp_run,
    )


ORDER_INFECTION = RuleKind(
    name="glucocorticoid-order-infection-prevention",
    roles=ROLES,
    thresholds=(*REPLACEMENT_THRESHOLDS, *THRESHOLDS),
    summaries=SUMMARIES,
    details=(
        *DETAILS,
        "live-vaccines",
        "live-vaccines-pregnancy",
        "live-vaccines-pregnancy-child",
    ),
    suggestions=SUGGESTIONS,
    sample_facts=ORDER_SAMPLE | SAMPLE | {"pjp_run_days": "730"},
    evaluate=evaluate_order_infection,
)

KINDS = (INFECTION, ORDER_INFECTION)
