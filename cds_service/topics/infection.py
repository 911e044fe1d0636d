"""infection-prevention: PJP prophylaxis, latent TB and hepatitis B screening, vaccines, and
vigilance for opportunistic lung infection during glucocorticoid therapy.

patient-view: long-term use, or a current course long enough at a dose that matters (PJP or TB
thresholds, planned days included). Order hooks: the glucocorticoid being ordered reaches the
PJP dose for long enough. One InfectionPlan collects what is still to do for both; silent when
everything is on file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cds_service.card_text import fmt_number
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
from cds_service.topics.patient_context import interstitial_lung_disease, second_immunosuppressant

ROLES = (
    "adrenal_insufficiency",
    "replacement_glucocorticoids",
    "pjp_drugs",
    "immunosuppressant_drugs",
    "immunosuppression_conditions",
    "ild",
    "myositis",
    "tb_tests",
    "latent_tb",
    "hbv_tests",
    "hepatitis_b",
    "vaccines",
    "sulfa_allergy",
)
THRESHOLDS = (
    *REPLACEMENT_THRESHOLDS,
    "infection.pjp_min_daily_mg",
    "infection.pjp_min_days",
    "infection.live_vaccine_min_daily_mg",
    "infection.live_vaccine_min_days",
    "infection.live_vaccine_wait_days",
    "infection.influenza_interval_days",
)
DETAILS = (
    "exposure",
    "pjp",
    "pjp-stronger",
    "pjp-sulfa",
    "tb",
    "tb-known",
    "hbv",
    "hbv-known",
    "vaccines",
)
SUGGESTIONS = (
    "tmp-smx",
    "dapsone",
    "atovaquone",
    "igra",
    "hbv-panel",
    "zoster",
    "pneumococcal",
    "influenza",
)
SUMMARIES = ("pjp", "screening", "vaccines")
SAMPLE = {
    "pjp_min_mg": "20",
    "pjp_min_days": "28",
    "vaccines_due": "recombinant zoster, pneumococcal, influenza",
    "live_min_mg": "20",
    "live_min_days": "14",
    "live_wait_days": "30",
}


@dataclass
class InfectionPlan:
    """The infection-prevention items still to do, shared by the patient-view and order rules."""

    details: list[str] = field(default_factory=lambda: ["exposure"])
    suggestions: list[str] = field(default_factory=list)
    recommended: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)

    def add_pjp(self, *, stronger: bool, sulfa: bool) -> None:
        self.details.append("pjp")
        if stronger:
            self.details.append("pjp-stronger")
        if sulfa:
            self.details.append("pjp-sulfa")
            self.suggestions += ["dapsone", "atovaquone"]
        else:
            self.suggestions += ["tmp-smx", "dapsone", "atovaquone"]
            self.recommended.append("tmp-smx")
        self.todo.append("pjp")

    def add_tb(self, facts: ClinicalFacts, *, screen: bool) -> tuple[str, ...]:
        """IGRA when no TB test is on file; known latent TB instead asks about its treatment."""
        latent = facts.refs("latent_tb")
        if latent:
            self.details.append("tb-known")
        elif screen and not facts.of("tb_tests"):
            self.details.append("tb")
            self.suggestions.append("igra")
            self.todo.append("tb")
        return latent

    def add_hbv(self, facts: ClinicalFacts) -> None:
        """CDC 2023 triple panel unless all three markers are on file."""
        markers = {str(h.properties.get("marker")) for h in facts.of("hbv_tests")}
        if facts.refs("hepatitis_b"):
            self.details.append("hbv-known")
        elif not {"hbsag", "anti-hbc", "anti-hbs"} <= markers:
            self.details.append("hbv")
            self.suggestions.append("hbv-panel")
            self.todo.append("hbv")

    def add_vaccines(self, facts: ClinicalFacts, t: Thresholds) -> list[str]:
        """Recombinant zoster, pneumococcal and this season's (non-live) influenza vaccine."""
        groups = {str(h.properties.get("group")) for h in facts.of("vaccines")}
        recent_flu = [
            h
            for h in facts.within("vaccines", t.value("infection.influenza_interval_days"))
            if str(h.properties.get("group", "")).startswith("influenza")
            and h.properties.get("live") is not True
        ]
        due: list[str] = []
        for missing, label, key in (
            ("zoster-recombinant" not in groups, "recombinant zoster", "zoster"),
            ("pneumococcal" not in groups, "pneumococcal", "pneumococcal"),
            (not recent_flu, "influenza", "influenza"),
        ):
            if missing:
                due.append(label)
                self.suggestions.append(key)
        if due:
            self.details.append("vaccines")
            self.todo.append("vaccines")
        return due

    def finding(
        self,
        facts: ClinicalFacts,
        t: Thresholds,
        *,
        values: Mapping[str, str],
        evidence: Iterable[str],
        pjp_run: int,
        due: list[str],
    ) -> Finding:
        """The card: PJP leads (warning), then screening, then vaccines."""
        if "pjp" in self.todo:
            summary = "pjp"
        elif {"tb", "hbv"} & set(self.todo):
            summary = "screening"
        else:
            summary = "vaccines"
        return Finding(
            summary=summary,
            details=tuple(self.details),
            indicator="warning" if "pjp" in self.todo else "info",
            facts={
                **values,
                "pjp_run_days": str(pjp_run),
                "pjp_min_mg": fmt_number(t.value("infection.pjp_min_daily_mg")),
                "pjp_min_days": fmt_number(t.value("infection.pjp_min_days")),
                "vaccines_due": ", ".join(due) if due else "none",
                "live_min_mg": fmt_number(t.value("infection.live_vaccine_min_daily_mg")),
                "live_min_days": fmt_number(t.value("infection.live_vaccine_min_days")),
                "live_wait_days": fmt_number(t.value("infection.live_vaccine_wait_days")),
            },
            evidence=tuple(sorted({*evidence, *facts.refs("hepatitis_b")})),
            suggestions=tuple(self.suggestions),
            recommended=tuple(self.recommended),
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
    sulfa = facts.refs("sulfa_allergy", active_only=True)
    plan = InfectionPlan()
    if high_dose and not facts.refs("pjp_drugs", active_only=True):
        plan.add_pjp(stronger=bool(second_agent or ild), sulfa=bool(sulfa))
    latent = plan.add_tb(facts, screen=status.long_term or tb_course or bool(second_agent))
    plan.add_hbv(facts)
    due = plan.add_vaccines(facts, t)
    if due and status.current_mg >= t.value("infection.live_vaccine_min_daily_mg"):
        plan.details.append("vaccines-defer")
    live_run = exp.current_run_at_or_above(
        t.value("infection.live_vaccine_min_daily_mg"), include_planned=False
    )
    if live_run >= t.value("infection.live_vaccine_min_days"):
        plan.details.append("live-vaccines")
    if not plan.todo:
        return None  # screening, prophylaxis and vaccines are all on file
    if high_dose or second_agent or ild:
        plan.details.append("lung-vigilance")
    return plan.finding(
        facts,
        t,
        values=status.facts(t),
        evidence=(*status.evidence, *second_agent, *ild, *sulfa, *latent),
        pjp_run=pjp_run,
        due=due,
    )


INFECTION = RuleKind(
    name="glucocorticoid-infection-prevention",
    roles=("long_term_steroid", *ROLES),
    thresholds=(
        *COMMON_THRESHOLDS,
        *THRESHOLDS,
        "infection.tb_min_daily_mg",
        "infection.tb_min_days",
    ),
    summaries=SUMMARIES,
    details=(*DETAILS, "vaccines-defer", "live-vaccines", "lung-vigilance"),
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
    sulfa = facts.refs("sulfa_allergy", active_only=True)
    second_agent = second_immunosuppressant(facts)
    if status.replacement and not second_agent:
        return None  # physiological replacement is not immunosuppression
    ild = interstitial_lung_disease(facts)
    plan = InfectionPlan()
    # Active on record, or in the same draftOrders Bundle (selected or not): both cover it.
    if not facts.refs("pjp_drugs", active_only=True):
        plan.add_pjp(stronger=bool(second_agent or ild), sulfa=bool(sulfa))
    latent = plan.add_tb(facts, screen=True)
    plan.add_hbv(facts)
    due = plan.add_vaccines(facts, t)
    live_run = run_with_plan(exp, t.value("infection.live_vaccine_min_daily_mg"))
    if live_run >= t.value("infection.live_vaccine_min_days"):
        plan.details.append("live-vaccines")
    if not plan.todo:
        return None  # prophylaxis covered, screening and vaccines on file
    return plan.finding(
        facts,
        t,
        values=ordered.facts(),
        evidence=(*ordered.refs, *second_agent, *ild, *sulfa, *latent),
        pjp_run=pjp_run,
        due=due,
    )


ORDER_INFECTION = RuleKind(
    name="glucocorticoid-order-infection-prevention",
    roles=ROLES,
    thresholds=THRESHOLDS,
    summaries=SUMMARIES,
    details=(*DETAILS, "live-vaccines"),
    suggestions=SUGGESTIONS,
    sample_facts=ORDER_SAMPLE | SAMPLE | {"pjp_run_days": "730"},
    evaluate=evaluate_order_infection,
)

KINDS = (INFECTION, ORDER_INFECTION)
