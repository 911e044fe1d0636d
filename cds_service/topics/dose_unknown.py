"""dose-unknown: a systemic glucocorticoid is on record but its dose cannot be computed.

Never silent (issue "medication exposure"): when a course of unknown dose (mg/kg without a
body weight, free text not understood, tablets of unknown strength...) is current, or covered
enough days of the lookback that its dose would decide a card, an info card names the drug,
says why the dose is unknown, and gives the advice that holds whatever the dose, with the dose
lines that decide the rest. Other cards still fire on what is known (long-term use by duration
counts for the bone card). Pure: reads the facts' exposure courses only.
"""

from __future__ import annotations

from datetime import date, timedelta

from cds_service.exposure import Course
from cds_service.facts import ClinicalFacts
from cds_service.rule_kind import Finding, RuleKind
from cds_service.steroid_status import (
    DOSE_LINE_SAMPLE,
    DOSE_LINE_THRESHOLDS,
    SteroidStatus,
    dose_line_facts,
    dose_unknown_note,
)
from cds_service.thresholds import Thresholds
from cds_service.topics.child import may_be_child

THRESHOLDS = (
    "exposure.lookback_days",
    "exposure.unknown_dose_min_days",
    "children.adult_age_years",
    *DOSE_LINE_THRESHOLDS,
)


def _days(courses: list[Course], since: date, today: date) -> int:
    """Days of the lookback (through today) covered by the courses."""
    covered: set[date] = set()
    for c in courses:
        start, end = max(c.start, since), min(c.end, today)
        covered.update(start + timedelta(days=i) for i in range((end - start).days + 1))
    return len(covered)


def unknown_dose_courses(facts: ClinicalFacts, t: Thresholds) -> tuple[list[Course], int]:
    """Systemic courses of unknown dose that matter: current (reaching today, or a draft in
    focus), or together covering at least ``exposure.unknown_dose_min_days`` of the lookback;
    and the days they cover."""
    today = facts.today
    since = today - timedelta(days=int(t.value("exposure.lookback_days")) - 1)
    unknown = [
        c
        for c in facts.exposure.courses
        if c.daily_peq_mg is None
        and c.end >= since
        and (not c.planned or c.source in facts.focus or c.start <= today)
    ]
    if not unknown:
        return [], 0
    days = _days([c for c in unknown if not c.planned], since, today)
    current = any(c.end >= today and c.start <= today for c in unknown) or any(
        c.planned and c.source in facts.focus for c in unknown
    )
    if current or days >= t.value("exposure.unknown_dose_min_days"):
        return unknown, days
    return [], days


def evaluate_dose_unknown(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds
) -> Finding | None:
    courses, days = unknown_dose_courses(facts, t)
    if not courses:
        return None
    drugs = sorted({c.ingredient_name or "glucocorticoid" for c in courses})
    reasons = sorted({dose_unknown_note(c) for c in courses})
    long_term = days >= t.value("exposure.long_term_min_days") or status.long_term
    details = ["courses", "long-term" if long_term else "regardless", "dose-lines"]
    if may_be_child(facts, t):
        details.append("child-lines")  # the live-vaccine line is per kg below 18
    details.append("record-dose")
    values = {
        "drug": " + ".join(drugs),
        "reason": "; ".join(reasons),
        "days": str(days),
        "courses": status.courses,
        **dose_line_facts(t),
    }
    return Finding(
        summary="unknown",
        details=tuple(details),
        indicator="info",
        facts=values,
        evidence=tuple(sorted({c.source for c in courses})),
    )


DOSE_UNKNOWN = RuleKind(
    name="glucocorticoid-dose-unknown",
    roles=("gc_ingredients", "gc_products"),
    thresholds=THRESHOLDS,
    summaries=("unknown",),
    details=("courses", "long-term", "regardless", "dose-lines", "child-lines", "record-dose"),
    suggestions=(),
    sample_facts=DOSE_LINE_SAMPLE
    | {
        "drug": "methylprednisolone + dexamethasone",
        "reason": "dose per kg without a recent body weight",
        "days": "365",
        "courses": "- prednisone: dose not computable from the record, 2026-01-01 to 2026-02-01 [MedicationRequest/x]",
    },
    evaluate=evaluate_dose_unknown,
)

KINDS = (DOSE_UNKNOWN,)
