"""What the infection-prevention card still has to ask for, shared by its patient-view and
order kinds (topics/infection.py): PJP prophylaxis fitted to allergies, kidney function,
methotrexate and pregnancy; the next step for each TB and hepatitis B result (negative and
recent: done; positive: what follows; indeterminate: repeat; ordered: pending); vaccines
(topics/vaccination.py). Pure functions of the facts; the words are in hooks/.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cds_service.card_text import fmt_date, fmt_months, fmt_number
from cds_service.facts import ClinicalFacts
from cds_service.rule_kind import Finding, Indicator
from cds_service.thresholds import Thresholds
from cds_service.topics import child, vaccination
from cds_service.topics.patient_context import (
    LabState,
    b_cell_depletion,
    kidney_function,
    lab_state,
)

THRESHOLDS = (
    *vaccination.THRESHOLDS,
    *child.THRESHOLDS,
    *child.PJP_THRESHOLDS,
    "children.live_vaccine_mg_per_kg_day",
    "children.live_vaccine_fixed_line_min_kg",
    "infection.pjp_min_daily_mg",
    "infection.pjp_min_days",
    "infection.live_vaccine_min_daily_mg",
    "infection.live_vaccine_min_days",
    "infection.live_vaccine_wait_days",
    "infection.tb_result_valid_days",
    "infection.hbv_result_valid_days",
    "infection.hbv_low_dose_mg",
    "infection.hbv_high_dose_days",
    "current_use.b_cell_depletion",
    "kidney.max_age_days",
    "kidney.tmp_smx_full_dose_above_ml_min",
    "kidney.tmp_smx_min_ml_min",
    "pregnancy.max_days",
)
PJP_DETAILS = (
    "pjp",
    "pjp-weight-based",
    "pjp-default",
    "pjp-child-no-tmp-smx",
    "pjp-stronger",
    "pjp-sulfa",
    "pjp-renal-half",
    "pjp-renal-avoid",
    "pjp-mtx",
    "pjp-pregnancy",
    "pjp-child",
    "pjp-child-weight-missing",
    "pjp-child-renal",
    "pjp-infant",
    "pjp-age-unknown",
)
TB_DETAILS: tuple[str, ...] = (
    "tb",
    "tb-old",
    "tb-known",
    "tb-positive",
    "tb-treated",
    "tb-indeterminate",
    "tb-unclear",
    "tb-pending",
)
HBV_DETAILS: tuple[str, ...] = (
    "hbv",
    "hbv-recheck",
    "hbv-pending",
    "hbv-known",
    "hbv-positive",
    "hbv-dna",
    "hbv-risk-high",
    "hbv-risk-moderate",
    "hbv-risk-low",
    "hbv-risk-dna-detected",
    "hbv-b-cell",
    "hbv-on-prophylaxis",
)
DETAILS = ("exposure", *PJP_DETAILS, *TB_DETAILS, *HBV_DETAILS, *vaccination.DETAILS)
SUGGESTIONS = (
    "tmp-smx",
    "tmp-smx-renal",
    "dapsone",
    "atovaquone",
    "tmp-smx-child",
    "dapsone-child",
    "atovaquone-child",
    "igra",
    "igra-repeat",
    "chest-xray",
    "hbv-panel",
    "hbv-dna",
    "hbv-referral",
    *vaccination.SUGGESTIONS,
)
# Summary variants, most consequential first; each names the to-do items that select it.
SUMMARY_ORDER: tuple[tuple[str, frozenset[str]], ...] = (
    ("pjp", frozenset({"pjp"})),
    ("hbv", frozenset({"hbv-positive"})),
    ("tb-positive", frozenset({"tb-positive"})),
    ("screening", frozenset({"tb", "hbv"})),
    ("results", frozenset({"tb-result", "hbv-result"})),
    ("vaccines", frozenset({"vaccines"})),
    ("vaccines-later", frozenset({"vaccines-later"})),
)
SUMMARIES = tuple(name for name, _ in SUMMARY_ORDER)
SAMPLE = (
    vaccination.SAMPLE
    | child.SAMPLE
    | child.PJP_SAMPLE
    | child.LIVE_SAMPLE
    | {
        "pjp_min_mg": "20",
        "pjp_min_days": "28",
        "live_min_mg": "20",
        "live_min_days": "14",
        "live_wait_days": "30",
        "kidney_test": "eGFR (CKD-EPI 2021, creatinine and cystatin C)",
        "kidney_value": "120.5",
        "kidney_date": "unknown date",
        "tmp_smx_full_ml_min": "30",
        "tmp_smx_min_ml_min": "15",
        "tb_date": "unknown date",
        "tb_valid_months": "12",
        "hbv_date": "unknown date",
        "hbv_valid_months": "12",
        "hbv_positive": "HBsAg, anti-HBc, HBV DNA",
        "hbv_low_mg": "10",
        "b_cell_months": "12",
    }
)
TMP_SMX_ORDERS = frozenset({"tmp-smx", "tmp-smx-renal", "tmp-smx-child"})
HBV_MARKERS = ("hbsag", "anti-hbc", "anti-hbs", "hbv-dna")
HBV_INFECTION_MARKERS = ("hbsag", "anti-hbc", "hbv-dna")  # positive anti-HBs is immunity


@dataclass
class InfectionPlan:
    """The infection-prevention items still to do (``todo``) and how the card says them."""

    details: list[str] = field(default_factory=lambda: ["exposure"])
    suggestions: list[str] = field(default_factory=list)
    recommended: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    warning: bool = False

    # -- PJP ------------------------------------------------------------------------------

    def add_pjp(
        self, facts: ClinicalFacts, t: Thresholds, *, stronger: bool, pregnant: bool
    ) -> None:
        """Prophylaxis: TMP-SMX first, at half dose for a clearance of 15-30 mL/min and not
        below 15 or with a sulfonamide-antibiotic allergy (then atovaquone or dapsone)."""
        young = child.may_be_child(facts, t)
        # Age unknown: no weight-based wording for a probable adult; pjp-age-unknown says why
        # no dose is ordered.
        self.details.append("pjp-weight-based" if young and facts.age is not None else "pjp")
        if stronger:
            self.details.append("pjp-stronger")
        sulfa = facts.refs("sulfa_allergy", active_only=True)
        kidney = kidney_function(facts, t)
        renal_avoid = kidney is not None and kidney.value < t.value("kidney.tmp_smx_min_ml_min")
        if young:
            self._pjp_child(facts, t, avoid_tmp_smx=bool(sulfa) or renal_avoid)
            if {"pjp-child", "pjp-child-no-tmp-smx"} & set(self.details):
                self.details.remove("pjp-weight-based")  # the dose paragraph says it
            self._pjp_child_notes(
                t, sulfa=bool(sulfa), kidney_value=kidney.value if kidney else None
            )
        # One button, the safest default; the alternatives are named in the detail text
        # (a card offers at most 5 buttons, and screening orders must keep theirs).
        elif sulfa:
            self._pjp_choice("pjp-sulfa", "atovaquone")
        elif renal_avoid:
            self._pjp_choice("pjp-renal-avoid", "atovaquone")
        elif kidney is not None and kidney.value <= t.value(
            "kidney.tmp_smx_full_dose_above_ml_min"
        ):
            self._pjp_choice("pjp-renal-half", "tmp-smx-renal")
        else:
            self._pjp_choice("pjp-default", "tmp-smx")
        if sulfa:
            self.evidence += sulfa
        if kidney is not None and not sulfa:
            self.evidence.append(kidney.ref)
            self.values.update(kidney.facts())
        if TMP_SMX_ORDERS & set(self.suggestions):
            self.add_methotrexate(facts)
            if pregnant:
                self._hold_tmp_smx_in_pregnancy()
        self.todo.append("pjp")
        self.warning = True

    def _pjp_child(self, facts: ClinicalFacts, t: Thresholds, *, avoid_tmp_smx: bool) -> None:
        """Under 18 (or age unknown): doses by weight with their maximums (clinical-knowledge-2.md
        7.3), never the adult fixed doses. No age, no recent weight, or under 1 year: the card
        says why and orders no fixed dose."""
        weight = child.latest_weight(facts, t)
        if facts.age is None:
            self.details.append("pjp-age-unknown")
            return
        self.values.update(child.child_facts(facts, t, facts.exposure.current_daily_peq_mg()))
        doses = child.pjp_doses(facts.age, weight, t) if weight is not None else None
        if weight is None or doses is None:
            self.details.append("pjp-child-weight-missing" if weight is None else "pjp-infant")
            return
        self.evidence.append(weight.ref)
        self.values.update(doses)
        if avoid_tmp_smx:
            self._pjp_choice("pjp-child-no-tmp-smx", "atovaquone-child")
        else:
            self._pjp_choice("pjp-child", "tmp-smx-child")

    def _pjp_child_notes(self, t: Thresholds, *, sulfa: bool, kidney_value: float | None) -> None:
        """Why TMP-SMX is left out for a child, or that its weight-based dose needs adjusting for
        kidney function (no paediatric renal dosing table is verified)."""
        renal_avoid = kidney_value is not None and kidney_value < t.value(
            "kidney.tmp_smx_min_ml_min"
        )
        if sulfa or renal_avoid:
            self.details.append("pjp-sulfa" if sulfa else "pjp-renal-avoid")
        elif kidney_value is not None and kidney_value <= t.value(
            "kidney.tmp_smx_full_dose_above_ml_min"
        ):
            self.details.append("pjp-child-renal")

    def _hold_tmp_smx_in_pregnancy(self) -> None:
        """TMP-SMX is contraindicated at term (clinical-knowledge-2.md 5.1) and the record does
        not say when term is: no ready-to-sign TMP-SMX, and the pregnancy paragraph leads (agree
        the drug for the whole course with obstetrics first)."""
        self.suggestions = [s for s in self.suggestions if s not in TMP_SMX_ORDERS]
        self.recommended = [s for s in self.recommended if s not in TMP_SMX_ORDERS]
        # one paragraph: agree first, with no "Start PJP prophylaxis" after it (review 2, 5)
        held = ("pjp-default", "pjp")
        self.details = ["pjp-pregnancy"] + [d for d in self.details if d not in held]

    def _pjp_choice(self, detail: str, best: str) -> None:
        self.details.append(detail)
        self.suggestions.append(best)
        self.recommended.append(best)

    def add_methotrexate(self, facts: ClinicalFacts) -> None:
        """Methotrexate with TMP-SMX (suggested or taken): myelosuppression warning."""
        mtx = facts.refs("methotrexate", active_only=True)
        if mtx and "pjp-mtx" not in self.details:
            self.details.append("pjp-mtx")
            self.evidence += mtx

    # -- Tuberculosis ---------------------------------------------------------------------

    def add_tb(self, facts: ClinicalFacts, t: Thresholds, *, screen: bool) -> None:
        """A positive IGRA or TST asks for the next step (exclude active TB, treat latent TB)
        unless latent TB is coded or treated; otherwise screen when none is on file or the
        last negative is old, repeat an indeterminate, and wait for a pending one."""
        state = lab_state(facts, facts.of("tb_tests"), t.value("infection.tb_result_valid_days"))
        self.values["tb_date"] = fmt_date(state.day)
        latent = facts.refs("latent_tb")
        if state.state == "positive":
            self.evidence += state.refs
            treated = facts.refs("ltbi_drugs")
            if latent or treated:
                self.details.append("tb-known" if latent else "tb-treated")
                self.evidence += latent or treated
                return
            self._todo("tb-positive", "tb-positive", ["chest-xray"], warning=True)
            self.recommended.append("chest-xray")
            return
        if latent:
            self.details.append("tb-known")
            self.evidence += latent
            return
        if state.state in ("indeterminate", "unclear", "pending"):
            self.evidence += state.refs
        if state.state == "pending":
            self.details.append("tb-pending")
        elif state.state == "indeterminate":
            self._todo("tb-result", "tb-indeterminate", ["igra-repeat"])
        elif state.state == "unclear":
            self._todo("tb-result", "tb-unclear", [])
        elif screen and state.state in ("none", "old"):
            self._todo("tb", "tb" if state.state == "none" else "tb-old", ["igra"])

    # -- Hepatitis B ----------------------------------------------------------------------

    def add_hbv(self, facts: ClinicalFacts, t: Thresholds) -> None:
        """HBsAg or anti-HBc positive (or chronic hepatitis B coded): HBV DNA and antiviral
        prophylaxis by AGA 2015 risk class; otherwise the CDC 2023 triple panel."""
        valid = t.value("infection.hbv_result_valid_days")
        states = {
            marker: lab_state(
                facts,
                (h for h in facts.of("hbv_tests") if h.properties.get("marker") == marker),
                valid,
            )
            for marker in HBV_MARKERS
        }
        dates = [s.day for s in states.values() if s.day is not None]
        self.values["hbv_date"] = fmt_date(max(dates) if dates else None)
        known = facts.refs("hepatitis_b")
        positives = [m for m in HBV_INFECTION_MARKERS if states[m].state == "positive"]
        if known or positives:
            self._hbv_positive(facts, t, states, positives, known)
        else:
            self._hbv_screening(states)

    def _hbv_positive(
        self,
        facts: ClinicalFacts,
        t: Thresholds,
        states: Mapping[str, LabState],
        positives: list[str],
        known: tuple[str, ...],
    ) -> None:
        labels = {
            m: str(h.properties.get("label", m))
            for h in facts.of("hbv_tests")
            for m in positives
            if h.properties.get("marker") == m
        }
        self.values["hbv_positive"] = ", ".join(labels[m] for m in positives) or "none"
        self.details += (["hbv-known"] if known else []) + (["hbv-positive"] if positives else [])
        self.evidence += [*known, *(r for m in positives for r in states[m].refs)]
        antiviral = facts.refs("hbv_antivirals", active_only=True)
        if antiviral:
            self.details.append("hbv-on-prophylaxis")
            self.evidence += antiviral
            return
        b_cell = b_cell_depletion(facts)
        tier = hbv_risk(facts, t, states, hbsag=bool(known) or "hbsag" in positives, b_cell=b_cell)
        # The workflow (clinical-knowledge-2.md 3.2): HBV DNA and ALT first, then the risk tier.
        if states["hbv-dna"].state not in ("negative", "positive", "pending"):
            self.details.append("hbv-dna")
            self.suggestions.append("hbv-dna")
        self._todo("hbv-positive", f"hbv-risk-{tier}", [], warning=tier != "low")
        if b_cell:
            self.details.append("hbv-b-cell")
            self.evidence += b_cell
        if tier != "low":
            self.suggestions.append("hbv-referral")

    def _hbv_screening(self, states: Mapping[str, LabState]) -> None:
        panel = ("hbsag", "anti-hbc", "anti-hbs")
        found = {m: states[m].state for m in panel}
        if any(s in ("none", "old") for s in found.values()):
            self._todo("hbv", "hbv", ["hbv-panel"])
        elif any(s in ("indeterminate", "unclear") for s in found.values()):
            self._todo("hbv-result", "hbv-recheck", ["hbv-panel"])
        if "pending" in found.values():
            self.details.append("hbv-pending")
        self.evidence += [r for m in panel if found[m] != "negative" for r in states[m].refs]

    def _todo(
        self, item: str, detail: str, suggestions: list[str], *, warning: bool = False
    ) -> None:
        self.todo.append(item)
        self.details.append(detail)
        self.suggestions += suggestions
        self.warning = self.warning or warning

    # -- Vaccines and the card --------------------------------------------------------------

    def add_vaccines(self, plan: vaccination.VaccinePlan) -> None:
        self.details += plan.details
        self.suggestions += plan.suggestions
        self.values.update(plan.values)
        if plan.now:
            self.todo.append("vaccines")
        if plan.later:
            self.todo.append("vaccines-later")

    def finding(
        self,
        t: Thresholds,
        *,
        values: Mapping[str, str],
        evidence: Iterable[str],
        pjp_run: int,
    ) -> Finding:
        """The card: the most consequential item leads the summary."""
        todo = set(self.todo)
        summary = next(name for name, items in SUMMARY_ORDER if items & todo)
        details = list(dict.fromkeys(self.details))
        for pregnancy in ("vaccines-pregnancy", "vaccines-pregnancy-child"):
            if pregnancy in details and "live-vaccines" in details:
                # one live-vaccine paragraph for both reasons
                details.remove(pregnancy)
                details[details.index("live-vaccines")] = f"live-{pregnancy}"
        indicator: Indicator = "warning" if self.warning else "info"
        return Finding(
            summary=summary,
            details=tuple(details),
            indicator=indicator,
            facts={**default_values(t), **self.values, **values, "pjp_run_days": str(pjp_run)},
            evidence=tuple(sorted({*evidence, *self.evidence})),
            suggestions=tuple(dict.fromkeys(self.suggestions)),
            recommended=tuple(dict.fromkeys(self.recommended)),
        )


def hbv_risk(
    facts: ClinicalFacts,
    t: Thresholds,
    states: Mapping[str, LabState],
    *,
    hbsag: bool,
    b_cell: tuple[str, ...],
) -> str:
    """AGA 2015 reactivation class (clinical-knowledge-2.md 3.2): detectable HBV DNA is managed
    as HBsAg-positive and referred; B-cell depletion is high risk whatever the serology;
    glucocorticoids at or above the moderate-dose line for 4 weeks: high if HBsAg-positive,
    moderate if only anti-HBc-positive; below it: moderate and low."""
    if states["hbv-dna"].state == "positive":
        return "dna-detected"
    if b_cell:
        return "high"
    run = facts.exposure.current_run_at_or_above(
        t.value("infection.hbv_low_dose_mg"), include_planned=True
    )
    moderate_dose = run >= t.value("infection.hbv_high_dose_days")
    if hbsag:
        return "high" if moderate_dose else "moderate"
    return "moderate" if moderate_dose else "low"


def default_values(t: Thresholds) -> Mapping[str, str]:
    """Every placeholder the infection kinds declare, with its threshold or 'none' (built once
    per loaded thresholds)."""
    return t.derived("infection.default-values", _default_values)


def _default_values(t: Thresholds) -> dict[str, str]:
    return {
        **dict.fromkeys((*child.SAMPLE, *child.PJP_SAMPLE), "unknown"),
        "weight_window_days": fmt_number(t.value("children.weight_max_age_days")),
        "live_line": f"{fmt_number(t.value('infection.live_vaccine_min_daily_mg'))} mg/day",
        "live_short": f"{fmt_number(t.value('infection.live_vaccine_min_daily_mg'))} mg/day",
        "pjp_min_mg": fmt_number(t.value("infection.pjp_min_daily_mg")),
        "pjp_min_days": fmt_number(t.value("infection.pjp_min_days")),
        "live_min_mg": fmt_number(t.value("infection.live_vaccine_min_daily_mg")),
        "live_min_days": fmt_number(t.value("infection.live_vaccine_min_days")),
        "live_wait_days": fmt_number(t.value("infection.live_vaccine_wait_days")),
        "kidney_test": "kidney function",
        "kidney_value": "unknown",
        "kidney_date": fmt_date(None),
        "tmp_smx_full_ml_min": fmt_number(t.value("kidney.tmp_smx_full_dose_above_ml_min")),
        "tmp_smx_min_ml_min": fmt_number(t.value("kidney.tmp_smx_min_ml_min")),
        "tb_date": fmt_date(None),
        "tb_valid_months": fmt_months(t.value("infection.tb_result_valid_days")),
        "hbv_date": fmt_date(None),
        "hbv_valid_months": fmt_months(t.value("infection.hbv_result_valid_days")),
        "hbv_positive": "none",
        "hbv_low_mg": fmt_number(t.value("infection.hbv_low_dose_mg")),
        "b_cell_months": fmt_months(t.value("current_use.b_cell_depletion")),
        "defer_mg": fmt_number(t.value("infection.nonlive_vaccine_defer_daily_mg")),
        "vaccines_due": "none",
        "vaccines_later": "none",
        "vaccines_later_rest": "none",
        "defer_until": fmt_date(None),
        "rzv_last": fmt_date(None),
    }
