"""Children and adolescents (clinical-knowledge-2.md 7): who counts as a child, the latest body
weight, calcium and vitamin D by age band, weight-based PJP prophylaxis doses and the live-vaccine
line in mg/kg. Shared by the bone, infection and live-vaccine topics. Pure; every number is in
hooks/thresholds.toml [children].

Age is ``ClinicalFacts.age`` (whole years from Patient.birthDate at the evaluation date): a
patient who turned 18 during the lookback is an adult today. Unknown age is neither: the topics
say it is unknown and give no adult fixed dose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from cds_service.card_text import fmt_date, fmt_number
from cds_service.facts import ClinicalFacts
from cds_service.medications import BODY_MASS_TO_KG
from cds_service.thresholds import Thresholds

THRESHOLDS = (
    "children.adult_age_years",
    "children.weight_max_age_days",
    "children.calcium_mg_0_6_months",
    "children.calcium_mg_7_12_months",
    "children.calcium_mg_1_3_years",
    "children.calcium_mg_4_8_years",
    "children.calcium_mg_9_18_years",
    "children.vitamin_d_iu_infant",
    "children.vitamin_d_iu_1_18_years",
)
PJP_THRESHOLDS = (
    "children.tmp_mg_per_kg_day",
    "children.tmp_max_mg_day",
    "children.tmp_min_age_months",
    "children.dapsone_mg_per_kg_day",
    "children.dapsone_max_mg_day",
    "children.atovaquone_mg_per_kg_day",
    "children.atovaquone_infant_mg_per_kg_day",
    "children.atovaquone_max_mg_day",
)
LIVE_THRESHOLDS = (
    "children.live_vaccine_mg_per_kg_day",
    "children.live_vaccine_fixed_line_min_kg",
    "infection.live_vaccine_min_daily_mg",
)
SAMPLE = {
    "age": "120",
    "weight_kg": "132.5",
    "weight_date": "unknown date",
    "weight_window_days": "90",
    "current_mg_per_kg": "12.5",
    "dose_mg": "1250",
    "child_calcium_mg": "200 (0-6 months) or 260 (7-12 months)",
    "child_vitamin_d_iu": "600",
}
PJP_SAMPLE = {
    "tmp_mg": "320",
    "tmp_dose_mg": "160",
    "tmp_mg_per_kg": "5",
    "tmp_max_mg": "320",
    "dapsone_mg": "100",
    "dapsone_mg_per_kg": "2",
    "dapsone_max_mg": "100",
    "atovaquone_mg": "1500",
    "atovaquone_mg_per_kg": "45",
    "atovaquone_max_mg": "1500",
}
LIVE_SAMPLE = {"live_line": "20 mg/day", "live_short": "20 mg/day"}


def is_child(facts: ClinicalFacts, t: Thresholds) -> bool:
    """Younger than ``children.adult_age_years`` today; False when the age is unknown."""
    return facts.age is not None and facts.age < t.value("children.adult_age_years")


def may_be_child(facts: ClinicalFacts, t: Thresholds) -> bool:
    """A child, or an age the record does not give: advice must not assume an adult."""
    return facts.age is None or is_child(facts, t)


@dataclass(frozen=True)
class Weight:
    kg: float
    day: date
    ref: str


def latest_weight(facts: ClinicalFacts, t: Thresholds) -> Weight | None:
    """The newest body weight (kg) measured within ``children.weight_max_age_days`` of today
    (not after it), in a mass unit; None when there is none."""
    since = facts.today - timedelta(days=t.value("children.weight_max_age_days"))
    found: list[Weight] = []
    for h in facts.of("body_weight"):
        factor = BODY_MASS_TO_KG.get(h.unit or "")
        if h.day is None or h.value is None or factor is None or h.value <= 0:
            continue
        if since <= h.day <= facts.today:
            found.append(Weight(h.value * factor, h.day, h.ref))
    return max(found, key=lambda w: (w.day, w.ref)) if found else None


def intake_facts(age: int, t: Thresholds) -> dict[str, str]:
    """Calcium and vitamin D reference intakes for the age band (IOM/NASEM 2011)."""

    def mg(key: str) -> str:
        return fmt_number(t.value(f"children.{key}"))

    if age < 1:  # age in whole years: the month band is not known
        calcium = f"{mg('calcium_mg_0_6_months')} (0-6 months) or {mg('calcium_mg_7_12_months')} (7-12 months)"
        vitamin_d = mg("vitamin_d_iu_infant")
    else:
        band = (
            "calcium_mg_1_3_years"
            if age <= 3
            else "calcium_mg_4_8_years"
            if age <= 8
            else "calcium_mg_9_18_years"
        )
        calcium, vitamin_d = mg(band), mg("vitamin_d_iu_1_18_years")
    return {"child_calcium_mg": calcium, "child_vitamin_d_iu": vitamin_d}


def child_facts(facts: ClinicalFacts, t: Thresholds, current_mg: float) -> dict[str, str]:
    """Age, weight and the current prednisone-equivalent dose per kg for the card text."""
    weight = latest_weight(facts, t)
    return {
        "age": str(facts.age) if facts.age is not None else "unknown",
        "weight_kg": fmt_number(weight.kg) if weight else "unknown",
        "weight_date": fmt_date(weight.day if weight else None),
        "weight_window_days": fmt_number(t.value("children.weight_max_age_days")),
        "current_mg_per_kg": _two_places(current_mg / weight.kg) if weight else "unknown",
        "dose_mg": fmt_number(current_mg),
        **intake_facts(facts.age or 0, t),
    }


def _two_places(value: float) -> str:
    """A dose per kg for card text: two decimals, without trailing zeros (1.25, 0.6)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def pjp_doses(age: int, weight: Weight, t: Thresholds) -> dict[str, str] | None:
    """Daily prophylaxis doses by weight with their maximums (clinical-knowledge-2.md 7.3):
    trimethoprim (TMP-SMX), dapsone, atovaquone. None under 1 year (age in whole years: the
    month bands and TMP-SMX's 2-month limit cannot be checked)."""
    if age < 1:
        return None

    def dose(per_kg_key: str, max_key: str) -> float:
        return min(weight.kg * t.value(per_kg_key), t.value(max_key))

    tmp = dose("children.tmp_mg_per_kg_day", "children.tmp_max_mg_day")
    atovaquone_key = (
        "children.atovaquone_infant_mg_per_kg_day"
        if age < 2
        else "children.atovaquone_mg_per_kg_day"
    )
    return {
        "tmp_mg": fmt_number(round(tmp)),
        "tmp_dose_mg": fmt_number(round(tmp / 2)),
        "tmp_mg_per_kg": fmt_number(t.value("children.tmp_mg_per_kg_day")),
        "tmp_max_mg": fmt_number(t.value("children.tmp_max_mg_day")),
        "dapsone_mg": fmt_number(
            round(dose("children.dapsone_mg_per_kg_day", "children.dapsone_max_mg_day"))
        ),
        "dapsone_mg_per_kg": fmt_number(t.value("children.dapsone_mg_per_kg_day")),
        "dapsone_max_mg": fmt_number(t.value("children.dapsone_max_mg_day")),
        "atovaquone_mg": fmt_number(round(dose(atovaquone_key, "children.atovaquone_max_mg_day"))),
        "atovaquone_mg_per_kg": fmt_number(t.value(atovaquone_key)),
        "atovaquone_max_mg": fmt_number(t.value("children.atovaquone_max_mg_day")),
    }


def live_vaccine_line(facts: ClinicalFacts, t: Thresholds) -> tuple[float, str]:
    """The daily prednisone-equivalent dose (mg) at which live vaccines wait, and how the card
    names it. Adults and unknown ages: infection.live_vaccine_min_daily_mg. Children with a
    recent weight: 2 mg/kg/day, or the fixed line when lower for those of 10 kg or more (ACIP;
    clinical-knowledge-2.md 7.4). Children without one: the fixed line, named as such."""
    fixed = t.value("infection.live_vaccine_min_daily_mg")
    if not is_child(facts, t):
        return fixed, f"{fmt_number(fixed)} mg/day"
    weight = latest_weight(facts, t)
    per_kg = t.value("children.live_vaccine_mg_per_kg_day")
    if weight is None:
        return (
            fixed,
            f"{fmt_number(fixed)} mg/day (no recent weight: {fmt_number(per_kg)} mg/kg/day not checked)",
        )
    line = weight.kg * per_kg
    if weight.kg >= t.value("children.live_vaccine_fixed_line_min_kg"):
        line = min(line, fixed)  # ACIP: 20 mg/day for those of 10 kg or more
    capped = weight.kg >= t.value("children.live_vaccine_fixed_line_min_kg")
    return line, (
        f"{fmt_number(round(line, 1))} mg/day ({fmt_number(per_kg)} mg/kg/day for "
        f"{fmt_number(weight.kg)} kg" + (f", at most {fmt_number(fixed)})" if capped else ")")
    )


def live_vaccine_card_line(facts: ClinicalFacts, t: Thresholds) -> dict[str, str]:
    """The live-vaccine line for card text: the dose alone ("16 mg/day"), except for a child
    without a recent weight, whose line keeps its caveat (2 mg/kg/day not checked). The full
    line (``live_line``) is in the explanation."""
    mg, line = live_vaccine_line(facts, t)
    no_weight = is_child(facts, t) and latest_weight(facts, t) is None
    return {
        "live_min_mg": fmt_number(round(mg, 1)),
        "live_line": line,
        "live_short": line if no_weight else f"{fmt_number(round(mg, 1))} mg/day",
    }
