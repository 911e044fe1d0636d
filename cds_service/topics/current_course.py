"""glucocorticoid-course: a systemic glucocorticoid is current and nothing is due yet.

Never silent (issue "medication exposure"): an empty response reads as "nothing to do", which
for a patient on a current course is true only until the course lasts longer or the dose is
higher. This fallback rule (``fallback = true`` in service.toml: it runs only when no other
rule of the call found anything) names the current course and says when each measure would
become due. Courses long past stay silent.
"""

from __future__ import annotations

from cds_service.card_text import fmt_number
from cds_service.exposure import Course
from cds_service.facts import ClinicalFacts
from cds_service.rule_kind import Finding, RuleKind
from cds_service.steroid_status import (
    COMMON_SAMPLE,
    COMMON_THRESHOLDS,
    DOSE_LINE_SAMPLE,
    DOSE_LINE_THRESHOLDS,
    SteroidStatus,
    dose_line_facts,
    run_with_plan,
)
from cds_service.thresholds import Thresholds
from cds_service.topics.child import may_be_child

THRESHOLDS = (*COMMON_THRESHOLDS, *DOSE_LINE_THRESHOLDS, "children.adult_age_years")


def current_courses(facts: ClinicalFacts) -> list[Course]:
    """At the order hooks, the glucocorticoid being ordered (a vaccine or DXA order gets no
    word about the steroid already taken); at patient-view, the courses taken today. Known
    doses only (an unknown dose is the dose-unknown card's)."""
    today = facts.today
    known = [c for c in facts.exposure.courses if c.daily_peq_mg is not None]
    if facts.focus:
        return [c for c in known if c.planned and c.source in facts.focus]
    return [c for c in known if not c.planned and c.start <= today <= c.end]


def nothing_due_yet(facts: ClinicalFacts, status: SteroidStatus, t: Thresholds) -> bool:
    """Whether no dose line of the service has been reached (planned days included). Past a
    line the topic rules decide, and their silence means the work is done: this card must not
    then say that nothing is due."""
    exp = facts.exposure
    return not (
        status.long_term
        or run_with_plan(exp, t.value("infection.pjp_min_daily_mg"))
        >= t.value("infection.pjp_min_days")
        or run_with_plan(exp, t.value("infection.tb_min_daily_mg"))
        >= t.value("infection.tb_min_days")
        or exp.longest_run_at_or_above(t.value("osteonecrosis.daily_mg"))
        >= t.value("osteonecrosis.high_dose_min_days")
        or status.cumulative_mg > t.value("osteonecrosis.cumulative_mg")
        or exp.iv_pulse_days()
    )


def evaluate_current_course(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds
) -> Finding | None:
    courses = current_courses(facts)
    if not courses or not nothing_due_yet(facts, status, t):
        return None
    drugs = sorted({c.ingredient_name or "glucocorticoid" for c in courses})
    # A course with no date at all is counted on today only: "nothing due yet" would read its
    # one day as a new course, so the card asks how long it has been taken instead.
    start_unknown = sorted(
        {c.ingredient_name or "glucocorticoid" for c in courses if c.start_unknown}
    )
    today_mg = max(status.current_mg, facts.exposure.planned_daily.get(facts.today, 0.0))
    values = status.facts() | {
        "drug": " + ".join(drugs),
        "today_mg": fmt_number(today_mg),
        **dose_line_facts(t),
        "start_unknown_drug": " + ".join(start_unknown) or "none",
    }
    return Finding(
        summary="start-unknown" if start_unknown else "nothing-due",
        details=(
            *(["start-unknown"] if start_unknown else status.unconfirmed_details()),
            "course",
            "when-due",
            *(["child-lines"] if may_be_child(facts, t) else []),
        ),
        indicator="info",
        facts=values,
        evidence=tuple(sorted({c.source for c in courses})),
    )


CURRENT_COURSE = RuleKind(
    name="glucocorticoid-current-course",
    roles=("gc_ingredients", "gc_products"),
    thresholds=THRESHOLDS,
    summaries=("nothing-due", "start-unknown"),
    details=("unconfirmed", "start-unknown", "course", "when-due", "child-lines"),
    suggestions=(),
    sample_facts=COMMON_SAMPLE
    | DOSE_LINE_SAMPLE
    | {
        "drug": "methylprednisolone + dexamethasone",
        "today_mg": "1250",
        "start_unknown_drug": "methylprednisolone",
    },
    evaluate=evaluate_current_course,
)

KINDS = (CURRENT_COURSE,)
