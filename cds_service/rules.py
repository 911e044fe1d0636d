"""Rule kinds: pure functions (ClinicalFacts, Thresholds) -> Finding | None.

A kind decides *whether* a card is due and *which* pieces of content apply; the words, codes and
suggestions live in hooks/<service>/service.toml. Each kind declares the value-set roles, the
thresholds, the summary variants, detail fragments, suggestion ids and template placeholders it
uses, and catalog.py checks the content against that declaration at startup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from cds_service.exposure import Course
from cds_service.facts import ClinicalFacts, Hit
from cds_service.thresholds import Thresholds

Indicator = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Finding:
    """What a rule concluded; cards.py renders it with the rule's content."""

    summary: str  # summary variant id
    details: tuple[str, ...]  # detail fragment ids, in order
    indicator: Indicator
    facts: Mapping[str, str]  # template placeholder values
    evidence: tuple[str, ...]  # relative references of the triggering resources
    suggestions: tuple[str, ...] = ()
    recommended: tuple[str, ...] = ()
    # suggestion id -> "Type/id" of the draft orders its ``delete`` actions remove (order hooks)
    delete_targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


Evaluate = Callable[[ClinicalFacts, Thresholds], "Finding | None"]


@dataclass(frozen=True)
class RuleKind:
    name: str
    roles: tuple[str, ...]
    thresholds: tuple[str, ...]
    summaries: tuple[str, ...]
    details: tuple[str, ...]
    suggestions: tuple[str, ...]
    sample_facts: Mapping[str, str]  # longest realistic values: used to check summary length
    evaluate: Evaluate = field(repr=False)


# ---------------------------------------------------------------------------------------------
# Shared glucocorticoid status


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"


def _fmt_date(day: date | None) -> str:
    return day.isoformat() if day else "unknown date"


@dataclass(frozen=True)
class SteroidStatus:
    """Glucocorticoid exposure judged against the thresholds (ACR 2022 long-term definition)."""

    long_term: bool
    current_mg: float
    days_long_term_dose: int
    planned_long_term_days: int
    cumulative_mg: float
    max_mg: float
    coded_long_term: tuple[str, ...]
    any_systemic: bool
    evidence: tuple[str, ...]
    courses: str  # markdown list of the courses behind the numbers (drug, dose, dates, source)

    @staticmethod
    def of(facts: ClinicalFacts, t: Thresholds) -> SteroidStatus:
        cached = facts.derived.get("steroid_status")
        if isinstance(cached, SteroidStatus):
            return cached
        status = SteroidStatus._compute(facts, t)
        facts.derived["steroid_status"] = status
        return status

    @staticmethod
    def _compute(facts: ClinicalFacts, t: Thresholds) -> SteroidStatus:
        exp = facts.exposure
        low = t.value("exposure.long_term_min_daily_mg")
        min_days = t.value("exposure.long_term_min_days")
        days = exp.days_at_or_above(low)
        planned = exp.planned_days_at_or_above(low)
        past_run = exp.current_run_at_or_above(low, include_planned=False)
        coded = facts.refs("long_term_steroid", active_only=True)
        unknown_days, unknown_sources = _unknown_dose_days(
            facts, low, int(t.value("exposure.lookback_days"))
        )
        # ACR 2022: ">3 months at >=2.5 mg/day", summed so intermittent courses count, or an
        # order planned for that long at initiation, or an explicit long-term-use code (Z79.52).
        # Days of a systemic course whose dose cannot be computed (free-text SIG, mg/kg) count
        # too: the duration is known and the knowledge base says they still fire this rule.
        long_term = days + unknown_days >= min_days or past_run + planned >= min_days or bool(coded)
        evidence = (*exp.sources_for_days_at_or_above(low), *unknown_sources)
        return SteroidStatus(
            long_term=long_term,
            current_mg=exp.current_daily_peq_mg(),
            days_long_term_dose=days,
            planned_long_term_days=planned,
            cumulative_mg=exp.cumulative_peq_mg(),
            max_mg=exp.max_daily_peq_mg(),
            coded_long_term=coded,
            any_systemic=bool(exp.courses),
            evidence=tuple(sorted(set(evidence) | set(coded))),
            courses=_courses_markdown(facts, int(t.value("exposure.lookback_days"))),
        )

    def facts(self, t: Thresholds) -> dict[str, str]:
        return {
            "current_mg": _fmt(self.current_mg),
            "days_long_term_dose": str(self.days_long_term_dose),
            "cumulative_g": _fmt(round(self.cumulative_mg / 1000, 1)),
            "max_mg": _fmt(self.max_mg),
            "lookback_months": _fmt(round(t.value("exposure.lookback_days") / 30.4)),
            "long_term_min_daily_mg": _fmt(t.value("exposure.long_term_min_daily_mg")),
            "courses": self.courses,
        }


MAX_COURSES_LISTED = 6


def _dose_text(doses: list[str]) -> str:
    if doses == ["unknown"]:
        return "dose not computable from the record"
    return f"{' → '.join(doses)} mg/day prednisone-equivalent"


def _courses_markdown(facts: ClinicalFacts, lookback_days: int) -> str:
    """One line per source record, newest first: drug, route, doses (PEQ), dates, reference."""
    since = facts.today - timedelta(days=lookback_days)
    by_source: dict[str, list[Course]] = {}
    for course in facts.exposure.courses:
        if course.end >= since:
            by_source.setdefault(course.source, []).append(course)
    lines = []
    for source, segments in sorted(
        by_source.items(), key=lambda item: max(c.start for c in item[1]), reverse=True
    ):
        segments.sort(key=lambda c: c.start)
        doses: list[str] = []
        for c in segments:
            text = _fmt(c.daily_peq_mg) if c.daily_peq_mg is not None else "unknown"
            if not doses or doses[-1] != text:
                doses.append(text)
        first, last = segments[0], segments[-1]
        notes = [c.route for c in segments[:1] if c.route not in ("oral", "unknown-systemic")]
        if any(c.planned for c in segments):
            notes.append("includes planned days")
        if any(c.dose_range for c in segments):
            notes.append("high end of a dose range")
        if any(c.undated for c in segments):
            notes.append("dates inferred")
        suffix = f" ({', '.join(notes)})" if notes else ""
        lines.append(
            f"- {first.ingredient_name}: {_dose_text(doses)}, "
            f"{first.start.isoformat()} to {last.end.isoformat()}{suffix} [{source}]"
        )
    if not lines:
        return "- no dated systemic course in the lookback (long-term use is coded on the record)"
    hidden = len(lines) - MAX_COURSES_LISTED
    shown = lines[:MAX_COURSES_LISTED]
    if hidden > 0:
        shown.append(f"- and {hidden} earlier course(s)")
    return "\n".join(shown)


COMMON_SAMPLE = {
    "current_mg": "1250",
    "days_long_term_dose": "365",
    "cumulative_g": "12.5",
    "max_mg": "1250",
    "lookback_months": "12",
    "long_term_min_daily_mg": "2.5",
    "courses": "- prednisone: 40 mg/day prednisone-equivalent, 2026-01-01 to 2026-02-01 [MedicationRequest/x]",
}
COMMON_THRESHOLDS = (
    "exposure.long_term_min_daily_mg",
    "exposure.long_term_min_days",
    "exposure.lookback_days",
)


def _hips_replaced(facts: ClinicalFacts) -> set[str]:
    sides: set[str] = set()
    for hit in facts.of("hip_prosthesis"):
        laterality = str(hit.properties.get("laterality", "unknown"))
        if laterality == "bilateral":
            sides |= {"left", "right"}
        elif laterality in ("left", "right"):
            sides.add(laterality)
    return sides


def _unknown_dose_days(
    facts: ClinicalFacts, known_mg: float, lookback_days: int
) -> tuple[int, tuple[str, ...]]:
    """Days in the lookback covered only by systemic courses of unknown dose, and their sources."""
    if not any(c.daily_peq_mg is None and not c.planned for c in facts.exposure.courses):
        return 0, ()
    since = facts.today - timedelta(days=lookback_days - 1)
    known = {day for day, mg in facts.exposure.daily.items() if mg >= known_mg}
    days: set[date] = set()
    sources: set[str] = set()
    for course in facts.exposure.courses:
        if course.daily_peq_mg is not None or course.planned:
            continue
        start, end = max(course.start, since), min(course.end, facts.today)
        covered = {start + timedelta(days=i) for i in range((end - start).days + 1)} - known
        if covered:
            days |= covered
            sources.add(course.source)
    return len(days), tuple(sorted(sources))


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
                "pjp_min_mg": _fmt(t.value("infection.pjp_min_daily_mg")),
                "pjp_min_days": _fmt(t.value("infection.pjp_min_days")),
                "vaccines_due": ", ".join(due) if due else "none",
                "live_min_mg": _fmt(t.value("infection.live_vaccine_min_daily_mg")),
                "live_min_days": _fmt(t.value("infection.live_vaccine_min_days")),
                "live_wait_days": _fmt(t.value("infection.live_vaccine_wait_days")),
            },
            evidence=tuple(sorted({*evidence, *facts.refs("hepatitis_b")})),
            suggestions=tuple(self.suggestions),
            recommended=tuple(self.recommended),
        )


def supplement_facts(t: Thresholds) -> dict[str, str]:
    """Calcium and vitamin D ranges for the card text (ACR guideline numbers in thresholds)."""
    return {
        "calcium_mg": f"{_fmt(t.value('bone.calcium_mg_low'))}-{_fmt(t.value('bone.calcium_mg_high'))}",
        "vitamin_d_iu": f"{_fmt(t.value('bone.vitamin_d_iu_low'))}-{_fmt(t.value('bone.vitamin_d_iu_high'))}",
    }


def interstitial_lung_disease(facts: ClinicalFacts) -> tuple[str, ...]:
    """Active ILD, coded on its own or as a myositis code with respiratory involvement."""
    return facts.refs("ild", active_only=True) + tuple(
        h.ref for h in facts.of("myositis", active_only=True) if h.properties.get("ild")
    )


def second_immunosuppressant(facts: ClinicalFacts) -> tuple[str, ...]:
    """Active immunosuppressive drugs or conditions; agents flagged ``immunosuppressive: false``
    in the value set (hydroxychloroquine) do not count."""
    drugs = {
        h.ref
        for h in facts.of("immunosuppressant_drugs", active_only=True)
        if h.properties.get("immunosuppressive") is not False
    }
    return tuple(sorted(drugs | set(facts.refs("immunosuppression_conditions", active_only=True))))


def _newest(hits: list[Hit]) -> date | None:
    days = [h.day for h in hits if h.day is not None]
    return max(days) if days else None


# ---------------------------------------------------------------------------------------------
# bone-health: glucocorticoid-induced osteoporosis (ACR 2022)


def _bone_risk(facts: ClinicalFacts, t: Thresholds, status: SteroidStatus) -> tuple[str, list[str]]:
    """ACR 2022 fracture-risk category from the record: (category, evidence refs)."""
    exp = facts.exposure
    very_high_dose = (
        exp.longest_run_at_or_above(t.value("exposure.very_high_daily_mg"))
        > t.value("exposure.very_high_days")
    ) or status.cumulative_mg >= t.value("exposure.very_high_cumulative_mg")
    fractures = facts.refs("fragility_fracture")
    evidence: list[str] = list(fractures)
    t_scores = [
        h
        for h in facts.of("bone_density")
        if h.properties.get("score") == "t" and h.value is not None
    ]
    z_scores = [
        h
        for h in facts.of("bone_density")
        if h.properties.get("score") == "z" and h.value is not None
    ]
    lowest_t = min((h.value for h in t_scores if h.value is not None), default=None)
    lowest_z = min((h.value for h in z_scores if h.value is not None), default=None)
    if fractures or very_high_dose:
        return "very high", evidence
    adult_frax = facts.age is not None and facts.age >= t.value("bone.frax_min_age")
    if adult_frax:
        if lowest_t is not None and lowest_t <= t.value("bone.t_score_very_high"):
            return "very high", [h.ref for h in t_scores]
        if (lowest_t is not None and lowest_t <= t.value("bone.t_score_osteoporosis")) or facts.of(
            "osteoporosis"
        ):
            return "high", [h.ref for h in t_scores] + list(facts.refs("osteoporosis"))
        if (lowest_t is not None and lowest_t < t.value("bone.t_score_low")) or facts.of(
            "osteopenia"
        ):
            return "moderate", [h.ref for h in t_scores] + list(facts.refs("osteopenia"))
        return "to be determined (FRAX)", []
    # Under 40: FRAX is not validated; ACR 2022 uses dose, fractures and Z-scores.
    sustained = facts.exposure.longest_run_at_or_above(t.value("bone.under40_moderate_daily_mg"))
    if (
        lowest_z is not None
        and lowest_z < t.value("bone.z_score_moderate")
        and sustained >= t.value("bone.under40_moderate_days")
    ):
        return "moderate", [h.ref for h in z_scores]
    if facts.of("osteoporosis"):
        return "moderate", list(facts.refs("osteoporosis"))
    return "low unless BMD shows otherwise", []


def evaluate_bone_health(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    status = SteroidStatus.of(facts, t)
    if not status.long_term:
        return None
    dxa_hits = facts.of("bone_density")
    last_dxa = _newest(dxa_hits)
    dxa_current = last_dxa is not None and (facts.today - last_dxa).days <= t.value(
        "bone.dxa_interval_days"
    )
    therapy = facts.refs("osteoporosis_drugs", active_only=True) + facts.refs(
        "bisphosphonate_use", active_only=True
    )
    if dxa_current and therapy:
        return None  # assessed within the interval and treated: nothing to add
    risk, risk_refs = _bone_risk(facts, t, status)
    hips = _hips_replaced(facts)
    adult_frax = facts.age is not None and facts.age >= t.value("bone.frax_min_age")
    details = ["exposure", "frax" if adult_frax else "under-40"]
    known = facts.refs("osteoporosis") + facts.refs("osteopenia") + facts.refs("fragility_fracture")
    if known:
        details.append("known-bone-disease")
    suggestions: list[str] = []
    if not dxa_current:
        details.append("dxa-due" if last_dxa else "dxa-none")
        if hips >= {"left", "right"}:
            details.append("hips-replaced")
            suggestions.append("dxa-spine-forearm")
        else:
            suggestions.append("dxa")
    treat = risk in ("moderate", "high", "very high") and not therapy
    details.append("risk")
    if treat:
        details.append("treatment")
    details.append("calcium-vitamin-d")
    # The most consequential gap leads: untreated risk, then a missing or overdue DXA.
    if treat:
        summary = "treat"
    elif not dxa_current:
        summary = "dxa-due" if last_dxa else "dxa-none"
    else:
        summary = "supplements"
    indicator: Indicator = "warning" if treat or not last_dxa else "info"
    values = status.facts(t) | {
        "age": str(facts.age) if facts.age is not None else "unknown",
        "last_dxa": _fmt_date(last_dxa),
        "risk": risk,
        "dxa_interval_months": _fmt(round(t.value("bone.dxa_interval_days") / 30.4)),
        **supplement_facts(t),
        "frax_adjust_mg": _fmt(t.value("bone.frax_gc_adjust_above_mg")),
    }
    evidence = set(status.evidence) | set(risk_refs) | set(known) | {h.ref for h in dxa_hits}
    evidence |= set(facts.refs("hip_prosthesis"))
    return Finding(
        summary=summary,
        details=tuple(details),
        indicator=indicator,
        facts=values,
        evidence=tuple(sorted(evidence)),
        suggestions=tuple(suggestions),
        recommended=tuple(suggestions[:1]),
    )


BONE_HEALTH = RuleKind(
    name="glucocorticoid-bone-health",
    roles=(
        "long_term_steroid",
        "osteoporosis",
        "osteopenia",
        "fragility_fracture",
        "bone_density",
        "osteoporosis_drugs",
        "bisphosphonate_use",
        "hip_prosthesis",
    ),
    thresholds=(
        *COMMON_THRESHOLDS,
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
        "bone.calcium_mg_low",
        "bone.calcium_mg_high",
        "bone.vitamin_d_iu_low",
        "bone.vitamin_d_iu_high",
    ),
    summaries=("dxa-none", "dxa-due", "treat", "supplements"),
    details=(
        "exposure",
        "frax",
        "under-40",
        "known-bone-disease",
        "dxa-none",
        "dxa-due",
        "hips-replaced",
        "risk",
        "treatment",
        "calcium-vitamin-d",
    ),
    suggestions=("dxa", "dxa-spine-forearm"),
    sample_facts=COMMON_SAMPLE
    | {
        "age": "120",
        "last_dxa": "unknown date",
        "risk": "low unless BMD shows otherwise",
        "dxa_interval_months": "24",
        "calcium_mg": "1000-1200",
        "vitamin_d_iu": "600-800",
        "frax_adjust_mg": "7.5",
    },
    evaluate=evaluate_bone_health,
)


# ---------------------------------------------------------------------------------------------
# osteonecrosis


def evaluate_osteonecrosis(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    status = SteroidStatus.of(facts, t)
    exp = facts.exposure
    if not (status.any_systemic or status.coded_long_term):
        return None  # no steroid evidence: not this service's business
    cumulative = status.cumulative_mg > t.value("osteonecrosis.cumulative_mg")
    high_run = exp.longest_run_at_or_above(t.value("osteonecrosis.daily_mg")) >= t.value(
        "osteonecrosis.high_dose_min_days"
    )
    pulses = exp.iv_pulse_days()
    prior = facts.of("osteonecrosis")
    if not (cumulative or high_run or pulses or prior):
        return None
    hips = _hips_replaced(facts)
    pain = facts.of("joint_pain", active_only=True)
    details = ["exposure"]
    if prior:
        details.append("prior")
    if hips >= {"left", "right"}:
        details.append("hips-replaced")
        suggestions = ["mri-knee", "mri-other-joint"]
    else:
        details.append("hips-native" if not hips else "one-hip-replaced")
        suggestions = ["mri-hip", "mri-other-joint"]
    prior_sites = {str(h.properties.get("site")) for h in prior}
    if prior_sites & {"hip", "knee"} or (prior and hips):
        details.append("multifocal")
    details.append("minimise")
    if pain:
        details.insert(1, "pain")
    summary = "pain" if pain else ("both-hips-replaced" if hips >= {"left", "right"} else "risk")
    values = status.facts(t) | {
        "pulse_count": str(len(pulses)),
        "cumulative_threshold_g": _fmt(t.value("osteonecrosis.cumulative_mg") / 1000),
        "daily_threshold_mg": _fmt(t.value("osteonecrosis.daily_mg")),
    }
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
    thresholds=(
        *COMMON_THRESHOLDS,
        "osteonecrosis.cumulative_mg",
        "osteonecrosis.daily_mg",
        "osteonecrosis.high_dose_min_days",
    ),
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
    sample_facts=COMMON_SAMPLE
    | {"pulse_count": "99", "cumulative_threshold_g": "2", "daily_threshold_mg": "20"},
    evaluate=evaluate_osteonecrosis,
)


# ---------------------------------------------------------------------------------------------
# infection-prevention


def evaluate_infection(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    status = SteroidStatus.of(facts, t)
    exp = facts.exposure
    pjp_mg = t.value("infection.pjp_min_daily_mg")
    pjp_run = exp.current_run_at_or_above(pjp_mg, include_planned=True)
    tb_run = exp.current_run_at_or_above(t.value("infection.tb_min_daily_mg"), include_planned=True)
    # Long-term use, or a current course that is (or is planned to be) long enough at a dose that
    # matters for infection: a 5-day burst is not immunosuppression worth screening for.
    if not (
        status.long_term
        or pjp_run >= t.value("infection.pjp_min_days")
        or tb_run >= t.value("infection.tb_min_days")
    ):
        return None
    high_dose = (
        pjp_run >= t.value("infection.pjp_min_days") and exp.current_daily_peq_mg() >= pjp_mg
    )
    live_run = exp.current_run_at_or_above(
        t.value("infection.live_vaccine_min_daily_mg"), include_planned=False
    )
    live_contraindicated = live_run >= t.value("infection.live_vaccine_min_days")
    second_agent = second_immunosuppressant(facts)
    ild = interstitial_lung_disease(facts)
    on_prophylaxis = facts.refs("pjp_drugs", active_only=True)
    sulfa = facts.refs("sulfa_allergy", active_only=True)

    plan = InfectionPlan()
    details = plan.details
    if high_dose and not on_prophylaxis:
        plan.add_pjp(stronger=bool(second_agent or ild), sulfa=bool(sulfa))
    tb_dose = tb_run >= t.value("infection.tb_min_days")
    latent = plan.add_tb(facts, screen=status.long_term or tb_dose or bool(second_agent))
    plan.add_hbv(facts)
    due = plan.add_vaccines(facts, t)
    if due and status.current_mg >= t.value("infection.live_vaccine_min_daily_mg"):
        details.append("vaccines-defer")
    if live_contraindicated:
        details.append("live-vaccines")
    if not plan.todo:
        return None  # screening, prophylaxis and vaccines are all on file
    if high_dose or second_agent or ild:
        details.append("lung-vigilance")
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
    roles=(
        "long_term_steroid",
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
    ),
    thresholds=(
        *COMMON_THRESHOLDS,
        "infection.pjp_min_daily_mg",
        "infection.pjp_min_days",
        "infection.tb_min_daily_mg",
        "infection.tb_min_days",
        "infection.live_vaccine_min_daily_mg",
        "infection.live_vaccine_min_days",
        "infection.live_vaccine_wait_days",
        "infection.influenza_interval_days",
    ),
    summaries=("pjp", "screening", "vaccines"),
    details=(
        "exposure",
        "pjp",
        "pjp-stronger",
        "pjp-sulfa",
        "tb",
        "tb-known",
        "hbv",
        "hbv-known",
        "vaccines",
        "vaccines-defer",
        "live-vaccines",
        "lung-vigilance",
    ),
    suggestions=(
        "tmp-smx",
        "dapsone",
        "atovaquone",
        "igra",
        "hbv-panel",
        "zoster",
        "pneumococcal",
        "influenza",
    ),
    sample_facts=COMMON_SAMPLE
    | {
        "pjp_run_days": "365",
        "pjp_min_mg": "20",
        "pjp_min_days": "28",
        "vaccines_due": "recombinant zoster, pneumococcal, influenza",
        "live_min_mg": "20",
        "live_min_days": "14",
        "live_wait_days": "30",
    },
    evaluate=evaluate_infection,
)
