"""Order-hook rule kinds (order-select, order-sign): advice while a glucocorticoid is ordered.

The kinds read :class:`OrderFacts`: the patient's facts (history plus every draft order of the
call, so a TMP-SMX draft that is not selected still counts as prophylaxis being ordered) and
the ``focus`` refs the hook advises on (order-select: the selections; order-sign: everything
being signed). A glucocorticoid card needs a systemic glucocorticoid among the focus drafts; the
live-vaccine card needs a live vaccine among them. Thresholds come from hooks/thresholds.toml,
words and codes from hooks/glucocorticoid-orders/service.toml. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from cds_service.exposure import Course, ExposureSummary
from cds_service.facts import ClinicalFacts, Hit
from cds_service.fhir.models import MedicationRequest
from cds_service.rules import (
    COMMON_THRESHOLDS,
    Finding,
    Indicator,
    InfectionPlan,
    RuleKind,
    SteroidStatus,
    _fmt,
    _fmt_date,
    _hips_replaced,
    _newest,
    interstitial_lung_disease,
    second_immunosuppressant,
    supplement_facts,
)
from cds_service.thresholds import Thresholds
from cds_service.valuesets import Coding, ValueSet

_EPS = 1e-9

# ---------------------------------------------------------------------------------------------
# Draft orders as the order kinds see them


@dataclass(frozen=True)
class DraftEntry:
    """A draft order that is not a MedicationRequest (ServiceRequest, Immunization), read raw.

    Only its reference and code are kept: enough to match value sets (a DXA or IGRA being
    ordered, a live vaccine) without requiring the client to send valid R4.
    """

    reference: str  # "Type/id"
    resource_type: str
    codings: tuple[Coding, ...]
    text: str | None


@dataclass(frozen=True)
class DraftOrders:
    """The draft orders of one order-select / order-sign call.

    ``medication_requests`` and ``entries`` hold every draft in ``context.draftOrders`` (the
    other drafts are context); ``focus`` names the ones the hook advises on.
    """

    medication_requests: tuple[MedicationRequest, ...] = ()
    entries: tuple[DraftEntry, ...] = ()
    focus: frozenset[str] = frozenset()

    @staticmethod
    def of(requests: Sequence[MedicationRequest]) -> DraftOrders:
        """Plain draft MedicationRequests, all of them in focus."""
        return DraftOrders(
            medication_requests=tuple(requests),
            focus=frozenset(f"MedicationRequest/{r.id}" for r in requests if r.id),
        )

    def names(self) -> dict[str, str]:
        """Draft reference -> what the order says it is (text, else first display)."""
        out: dict[str, str] = {}
        for request in self.medication_requests:
            concept = request.medicationCodeableConcept
            if request.id and concept is not None:
                displays = [c.display for c in concept.coding or () if c.display]
                name = concept.text or (displays[0] if displays else None)
                if name:
                    out[f"MedicationRequest/{request.id}"] = name
        for entry in self.entries:
            displays = [c.display for c in entry.codings if c.display]
            name = entry.text or (displays[0] if displays else None)
            if name:
                out[entry.reference] = name
        return out


def draft_hits(
    entries: Iterable[DraftEntry], roles_by_type: Mapping[str, Sequence[tuple[str, ValueSet]]],
    today: date,
) -> list[Hit]:  # fmt: skip
    """Value-set hits of non-MedicationRequest drafts: active, dated today (being ordered now)."""
    hits: list[Hit] = []
    for entry in entries:
        for role, vs in roles_by_type.get(entry.resource_type, ()):
            match = vs.match(entry.codings, entry.text)
            if match is not None:
                props = match.concept.properties if match.concept else {}
                hits.append(
                    Hit(entry.reference, role, today, True, props, None, entry.resource_type)
                )
    return hits


@dataclass
class OrderFacts(ClinicalFacts):
    """ClinicalFacts plus which draft orders the hook advises on."""

    focus: frozenset[str] = frozenset()
    draft_names: Mapping[str, str] = field(default_factory=dict)


def focus_courses(exposure: ExposureSummary, focus: frozenset[str]) -> list[Course]:
    """Planned systemic glucocorticoid courses of the focus drafts."""
    return [c for c in exposure.courses if c.planned and c.source in focus]


def steroid_draft_key(exposure: ExposureSummary, focus: frozenset[str]) -> str | None:
    """Key of the glucocorticoid draft order(s) in focus: the same at order-select and at the
    order-sign of the same order, whatever else is drafted with it. None without one."""
    refs = sorted({c.source for c in focus_courses(exposure, focus)})
    if not refs:
        return None
    return hashlib.sha256("|".join(refs).encode()).hexdigest()[:32]


# ---------------------------------------------------------------------------------------------
# Shared helpers


@dataclass(frozen=True)
class _Draft:
    """The glucocorticoid being ordered: focus courses, dose and references."""

    courses: tuple[Course, ...]
    planned_mg: float  # highest planned PEQ mg/day of the focus drafts (0 when unknown)
    refs: tuple[str, ...]
    drug: str


def _draft(facts: ClinicalFacts) -> _Draft | None:
    if not isinstance(facts, OrderFacts):
        return None  # not an order hook
    courses = focus_courses(facts.exposure, facts.focus)
    if not courses:
        return None
    planned = max((c.daily_peq_mg or 0.0 for c in courses), default=0.0)
    names = sorted({c.ingredient_name for c in courses if c.ingredient_name})
    return _Draft(
        tuple(courses),
        planned,
        tuple(sorted({c.source for c in courses})),
        " + ".join(names) or "glucocorticoid",
    )


def run_with_plan(exposure: ExposureSummary, mg: float) -> int:
    """Days at or above ``mg``: the run ending today continued by planned days, or (a draft
    starting later) the planned days alone, whichever is longer."""
    return max(
        exposure.current_run_at_or_above(mg, include_planned=True),
        exposure.planned_days_at_or_above(mg),
    )


def projected_cumulative_mg(exposure: ExposureSummary) -> float:
    """Cumulative PEQ mg of the lookback window plus the planned days (today counted once)."""
    today = exposure.today
    future = [v for d, v in exposure.planned_daily.items() if d > today]
    extra_today = max(exposure.planned_daily.get(today, 0.0) - exposure.daily.get(today, 0.0), 0.0)
    return exposure.cumulative_peq_mg() + math.fsum(future) + extra_today


def recent_run(exposure: ExposureSummary, mg: float, since: date) -> int:
    """Longest run of days at or above ``mg`` (actual exposure) that ended on or after ``since``."""
    days = sorted(d for d, v in exposure.daily.items() if v >= mg - _EPS)
    best = run = 0
    previous: date | None = None
    for day in days:
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        if day >= since:
            best = max(best, run)
        previous = day
    return best


def _months(days: float) -> str:
    return _fmt(round(days / 30.4))


ORDER_SAMPLE = {
    "drug": "methylprednisolone + dexamethasone",
    "planned_mg": "1250",
    "long_term_min_daily_mg": "2.5",
}

# ---------------------------------------------------------------------------------------------
# bone-health at ordering (ACR 2022: baseline BMD within 6 months of starting)


def evaluate_order_bone_health(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    draft = _draft(facts)
    if draft is None:
        return None
    exp = facts.exposure
    low = t.value("exposure.long_term_min_daily_mg")
    min_days = t.value("exposure.long_term_min_days")
    if draft.planned_mg < low - _EPS:
        return None
    status = SteroidStatus.of(facts, t)
    run = run_with_plan(exp, low)
    if not (run >= min_days or status.long_term):
        return None
    dxa_hits = facts.of("bone_density")  # results, procedures and DXA orders (drafts included)
    last_dxa = _newest(dxa_hits)
    dxa_current = last_dxa is not None and (facts.today - last_dxa).days <= t.value(
        "bone.dxa_interval_days"
    )
    therapy = facts.refs("osteoporosis_drugs", active_only=True) + facts.refs(
        "bisphosphonate_use", active_only=True
    )
    if dxa_current and therapy:
        return None  # assessed within the interval and treated: nothing to add at ordering
    details = ["exposure"]
    known = facts.refs("osteoporosis") + facts.refs("osteopenia") + facts.refs("fragility_fracture")
    if known:
        details.append("known-bone-disease")
    suggestions: list[str] = []
    if not dxa_current:
        details.append("dxa-due" if last_dxa else "dxa-baseline")
        if _hips_replaced(facts) >= {"left", "right"}:
            details.append("hips-replaced")
            suggestions.append("dxa-spine-forearm")
        else:
            suggestions.append("dxa")
    if not therapy:
        details.append("risk-assessment")
    details.append("calcium-vitamin-d")
    summary = ("dxa-due" if last_dxa else "dxa-baseline") if not dxa_current else "supplements"
    indicator: Indicator = "warning" if not dxa_current else "info"
    values = {
        "drug": draft.drug,
        "planned_mg": _fmt(draft.planned_mg),
        "run_days": str(run),
        "long_term_min_daily_mg": _fmt(low),
        "long_term_months": _months(min_days),
        "dxa_baseline_months": _months(t.value("bone.dxa_baseline_within_days")),
        "last_dxa": _fmt_date(last_dxa),
        "dxa_interval_months": _months(t.value("bone.dxa_interval_days")),
        **supplement_facts(t),
    }
    evidence = set(draft.refs) | set(status.evidence) | set(known) | {h.ref for h in dxa_hits}
    evidence |= set(therapy) | set(facts.refs("hip_prosthesis"))
    return Finding(
        summary=summary,
        details=tuple(details),
        indicator=indicator,
        facts=values,
        evidence=tuple(sorted(evidence)),
        suggestions=tuple(suggestions),
        recommended=tuple(suggestions[:1]),
    )


ORDER_BONE_HEALTH = RuleKind(
    name="glucocorticoid-order-bone-health",
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
        "bone.dxa_baseline_within_days",
        "bone.dxa_interval_days",
        "bone.calcium_mg_low",
        "bone.calcium_mg_high",
        "bone.vitamin_d_iu_low",
        "bone.vitamin_d_iu_high",
    ),
    summaries=("dxa-baseline", "dxa-due", "supplements"),
    details=(
        "exposure",
        "known-bone-disease",
        "dxa-baseline",
        "dxa-due",
        "hips-replaced",
        "risk-assessment",
        "calcium-vitamin-d",
    ),
    suggestions=("dxa", "dxa-spine-forearm"),
    sample_facts=ORDER_SAMPLE
    | {
        "run_days": "730",
        "long_term_months": "3",
        "dxa_baseline_months": "6",
        "last_dxa": "unknown date",
        "dxa_interval_months": "24",
        "calcium_mg": "1000-1200",
        "vitamin_d_iu": "600-800",
    },
    evaluate=evaluate_order_bone_health,
)


# ---------------------------------------------------------------------------------------------
# infection-prevention at ordering: PJP prophylaxis ready to sign, TB/HBV screening, vaccines


def evaluate_order_infection(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    draft = _draft(facts)
    if draft is None:
        return None
    exp = facts.exposure
    pjp_mg = t.value("infection.pjp_min_daily_mg")
    pjp_run = run_with_plan(exp, pjp_mg)
    if pjp_run < t.value("infection.pjp_min_days"):
        return None
    # Active on record, or in the same draftOrders Bundle (selected or not): both cover it.
    on_prophylaxis = facts.refs("pjp_drugs", active_only=True)
    sulfa = facts.refs("sulfa_allergy", active_only=True)
    second_agent = second_immunosuppressant(facts)
    ild = interstitial_lung_disease(facts)
    plan = InfectionPlan()
    details = plan.details
    if not on_prophylaxis:
        plan.add_pjp(stronger=bool(second_agent or ild), sulfa=bool(sulfa))
    latent = plan.add_tb(facts, screen=True)
    plan.add_hbv(facts)
    due = plan.add_vaccines(facts, t)
    live_run = run_with_plan(exp, t.value("infection.live_vaccine_min_daily_mg"))
    if live_run >= t.value("infection.live_vaccine_min_days"):
        details.append("live-vaccines")
    if not plan.todo:
        return None  # prophylaxis covered, screening and vaccines on file
    return plan.finding(
        facts,
        t,
        values={"drug": draft.drug, "planned_mg": _fmt(draft.planned_mg)},
        evidence=(*draft.refs, *second_agent, *ild, *sulfa, *latent),
        pjp_run=pjp_run,
        due=due,
    )


ORDER_INFECTION = RuleKind(
    name="glucocorticoid-order-infection-prevention",
    roles=(
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
        "infection.pjp_min_daily_mg",
        "infection.pjp_min_days",
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
        "live-vaccines",
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
    sample_facts=ORDER_SAMPLE
    | {
        "pjp_run_days": "730",
        "pjp_min_mg": "20",
        "pjp_min_days": "28",
        "vaccines_due": "recombinant zoster, pneumococcal, influenza",
        "live_min_mg": "20",
        "live_min_days": "14",
        "live_wait_days": "30",
    },
    evaluate=evaluate_order_infection,
)


# ---------------------------------------------------------------------------------------------
# osteonecrosis information at ordering (high daily dose or projected cumulative dose)


def evaluate_order_osteonecrosis(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    draft = _draft(facts)
    if draft is None:
        return None
    exp = facts.exposure
    daily_mg = t.value("osteonecrosis.daily_mg")
    high_run = run_with_plan(exp, daily_mg)
    projected = projected_cumulative_mg(exp)
    high = high_run >= t.value("osteonecrosis.high_dose_min_days")
    cumulative = projected > t.value("osteonecrosis.cumulative_mg")
    if not (high or cumulative):
        return None
    prior = facts.of("osteonecrosis")
    details = ["exposure"]
    if prior:
        details.append("prior")
    details.append("symptoms")
    details.append("minimise")
    values = {
        "drug": draft.drug,
        "planned_mg": _fmt(draft.planned_mg),
        "high_dose_days": str(high_run),
        "projected_g": _fmt(round(projected / 1000, 1)),
        "cumulative_threshold_g": _fmt(t.value("osteonecrosis.cumulative_mg") / 1000),
        "daily_threshold_mg": _fmt(daily_mg),
        "high_dose_min_days": _fmt(t.value("osteonecrosis.high_dose_min_days")),
    }
    evidence = set(draft.refs) | {h.ref for h in prior}
    return Finding(
        summary="prior" if prior else "risk",
        details=tuple(details),
        indicator="info",
        facts=values,
        evidence=tuple(sorted(evidence)),
    )


ORDER_OSTEONECROSIS = RuleKind(
    name="glucocorticoid-order-osteonecrosis",
    roles=("osteonecrosis",),
    thresholds=(
        "osteonecrosis.cumulative_mg",
        "osteonecrosis.daily_mg",
        "osteonecrosis.high_dose_min_days",
    ),
    summaries=("risk", "prior"),
    details=("exposure", "prior", "symptoms", "minimise"),
    suggestions=(),
    sample_facts=ORDER_SAMPLE
    | {
        "high_dose_days": "730",
        "projected_g": "999.9",
        "cumulative_threshold_g": "2",
        "daily_threshold_mg": "20",
        "high_dose_min_days": "28",
    },
    evaluate=evaluate_order_osteonecrosis,
)


# ---------------------------------------------------------------------------------------------
# live vaccine ordered during immunosuppressive glucocorticoid therapy (ACIP via immunize.org)


def evaluate_live_vaccine(facts: ClinicalFacts, t: Thresholds) -> Finding | None:
    if not isinstance(facts, OrderFacts):
        return None
    live = [
        h for h in facts.of("vaccines") if h.ref in facts.focus and h.properties.get("live") is True
    ]
    if not live:
        return None
    exp = facts.exposure
    mg = t.value("infection.live_vaccine_min_daily_mg")
    min_days = t.value("infection.live_vaccine_min_days")
    wait_days = t.value("infection.live_vaccine_wait_days")
    run = run_with_plan(exp, mg)
    # Also within the wait after stopping: ACIP asks for at least 1 month before a live vaccine.
    stopped = recent_run(exp, mg, facts.today - timedelta(days=wait_days))
    if max(run, stopped) < min_days:
        return None
    targets = tuple(sorted({h.ref for h in live}))
    names = sorted({facts.draft_names.get(ref, "live vaccine") for ref in targets})
    details = ["contraindication", "remove"]
    suggestions = ["remove"]
    if any(h.properties.get("group") == "zoster-live" for h in live):
        details.append("zoster-alternative")
        suggestions.append("zoster-recombinant")
    values = {
        "vaccines": ", ".join(names),
        "exposure_days": str(max(run, stopped)),
        "planned_mg": _fmt(max(exp.current_daily_peq_mg(), exp.planned_daily.get(exp.today, 0.0))),
        "live_min_mg": _fmt(mg),
        "live_min_days": _fmt(min_days),
        "live_wait_days": _fmt(wait_days),
    }
    steroid = exp.sources_for_days_at_or_above(mg) + tuple(
        c.source for c in exp.courses if c.planned and (c.daily_peq_mg or 0.0) >= mg - _EPS
    )
    return Finding(
        summary="live-vaccine",
        details=tuple(details),
        indicator="critical",
        facts=values,
        evidence=tuple(sorted(set(targets) | set(steroid))),
        suggestions=tuple(suggestions),
        recommended=("remove",),
        delete_targets={"remove": targets},
    )


LIVE_VACCINE = RuleKind(
    name="glucocorticoid-live-vaccine-order",
    roles=("vaccines",),
    thresholds=(
        "infection.live_vaccine_min_daily_mg",
        "infection.live_vaccine_min_days",
        "infection.live_vaccine_wait_days",
    ),
    summaries=("live-vaccine",),
    details=("contraindication", "remove", "zoster-alternative"),
    suggestions=("remove", "zoster-recombinant"),
    sample_facts={
        "vaccines": "Measles, mumps and rubella virus vaccine live, varicella virus vaccine live",
        "exposure_days": "730",
        "planned_mg": "1250",
        "live_min_mg": "20",
        "live_min_days": "14",
        "live_wait_days": "30",
    },
    evaluate=evaluate_live_vaccine,
)

ORDER_KINDS = (ORDER_BONE_HEALTH, ORDER_INFECTION, ORDER_OSTEONECROSIS, LIVE_VACCINE)

__all__ = [
    "ORDER_KINDS",
    "DraftEntry",
    "DraftOrders",
    "OrderFacts",
    "draft_hits",
    "focus_courses",
    "steroid_draft_key",
]
