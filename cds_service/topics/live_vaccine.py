"""Live vaccine ordered during immunosuppressive glucocorticoid therapy (ACIP via immunize.org).

Order hooks only: a live vaccine among the drafts in focus while the patient takes (or is being
ordered, or stopped less than a month ago) >= 20 mg/day for 14 days or more (children: 2 mg/kg/day,
or 20 mg/day from 10 kg; no recombinant zoster offered under 18) -> a critical card
that removes the draft (recombinant zoster offered instead of live zoster, except during a
pregnancy: then the card says so and offers no vaccine). Which vaccines are live is the vaccines
value set's ``live`` property: JYNNEOS (CVX 206) is replication-deficient and is not.
"""

from __future__ import annotations

from datetime import timedelta

from cds_service.card_text import fmt_number
from cds_service.facts import ClinicalFacts
from cds_service.rule_kind import Finding, RuleKind
from cds_service.steroid_status import EPS, SteroidStatus, recent_run, run_with_plan
from cds_service.thresholds import Thresholds
from cds_service.topics import child
from cds_service.topics.patient_context import pregnancy


def evaluate_live_vaccine(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds
) -> Finding | None:
    if status.replacement:
        return None  # physiological replacement does not contraindicate live vaccines
    live = [
        h for h in facts.of("vaccines") if h.ref in facts.focus and h.properties.get("live") is True
    ]
    if not live:
        return None
    exp = facts.exposure
    # Children: 2 mg/kg/day, or 20 mg/day from 10 kg (ACIP; topics/child.py), the same line
    # the infection card names.
    mg, line = child.live_vaccine_line(facts, t)
    young = child.is_child(facts, t)
    min_days = t.value("infection.live_vaccine_min_days")
    wait_days = t.value("infection.live_vaccine_wait_days")
    run = run_with_plan(exp, mg)
    # Also within the wait after stopping: ACIP asks for at least 1 month before a live vaccine.
    stopped = recent_run(exp, mg, facts.today - timedelta(days=wait_days))
    if max(run, stopped) < min_days:
        return None
    targets = tuple(sorted({h.ref for h in live}))
    names = sorted({facts.draft_names.get(ref, "live vaccine") for ref in targets})
    dose = max(exp.current_daily_peq_mg(), exp.planned_daily.get(exp.today, 0.0))
    # ACR 2022: at 20 mg/day or more only influenza of the non-live vaccines is given now
    # (clinical-knowledge.md A5.4, clinical-knowledge-2.md 6.4), as the infection card says.
    defer_mg = t.value("infection.nonlive_vaccine_defer_daily_mg")
    remove = "remove-defer" if dose >= defer_mg else "remove"
    details = ["contraindication", "child-line", remove] if young else ["contraindication", remove]
    suggestions = ["remove"]
    pregnant = pregnancy(facts, t)
    if pregnant:
        details.append("pregnancy")  # no zoster vaccine of either kind during pregnancy
    elif not young and any(h.properties.get("group") == "zoster-live" for h in live):
        details.append("zoster-alternative")
        suggestions.append("zoster-recombinant")
    values = {
        "vaccines": ", ".join(names),
        "exposure_days": str(max(run, stopped)),
        "planned_mg": fmt_number(dose),
        "defer_mg": fmt_number(defer_mg),
        "live_min_mg": fmt_number(round(mg, 1)),
        "live_line": line,
        "age": str(facts.age) if facts.age is not None else "unknown",
        "live_min_days": fmt_number(min_days),
        "live_wait_days": fmt_number(wait_days),
    }
    steroid = exp.sources_for_days_at_or_above(mg) + tuple(
        c.source for c in exp.courses if c.planned and (c.daily_peq_mg or 0.0) >= mg - EPS
    )
    return Finding(
        summary="live-vaccine",
        details=tuple(details),
        indicator="critical",
        facts=values,
        evidence=tuple(sorted(set(targets) | set(steroid) | set(pregnant))),
        suggestions=tuple(suggestions),
        recommended=("remove",),
        delete_targets={"remove": targets},
    )


LIVE_VACCINE = RuleKind(
    name="glucocorticoid-live-vaccine-order",
    roles=("vaccines", "pregnancy", "pregnancy_status", "body_weight"),
    thresholds=(
        *child.LIVE_THRESHOLDS,
        "children.adult_age_years",
        "children.weight_max_age_days",
        "infection.live_vaccine_min_days",
        "infection.live_vaccine_wait_days",
        "infection.nonlive_vaccine_defer_daily_mg",
        "pregnancy.max_days",
    ),
    summaries=("live-vaccine",),
    details=(
        "contraindication",
        "child-line",
        "remove",
        "remove-defer",
        "zoster-alternative",
        "pregnancy",
    ),
    suggestions=("remove", "zoster-recombinant"),
    sample_facts={
        "vaccines": "Measles, mumps and rubella virus vaccine live, varicella virus vaccine live",
        "exposure_days": "730",
        "planned_mg": "1250",
        "defer_mg": "20",
        "live_min_mg": "20",
        "live_min_days": "14",
        "live_wait_days": "30",
        "live_line": "20 mg/day (2 mg/kg/day, at most 20 mg/day from 10 kg; weight 132.5 kg)",
        "age": "120",
    },
    evaluate=evaluate_live_vaccine,
)

KINDS = (LIVE_VACCINE,)
