"""Live vaccine ordered during immunosuppressive glucocorticoid therapy (ACIP via immunize.org).

Order hooks only: a live vaccine among the drafts in focus while the patient takes (or is being
ordered, or stopped less than a month ago) >= 20 mg/day for 14 days or more -> a critical card
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
    pregnant = pregnancy(facts, t)
    if pregnant:
        details.append("pregnancy")  # no zoster vaccine of either kind during pregnancy
    elif any(h.properties.get("group") == "zoster-live" for h in live):
        details.append("zoster-alternative")
        suggestions.append("zoster-recombinant")
    values = {
        "vaccines": ", ".join(names),
        "exposure_days": str(max(run, stopped)),
        "planned_mg": fmt_number(
            max(exp.current_daily_peq_mg(), exp.planned_daily.get(exp.today, 0.0))
        ),
        "live_min_mg": fmt_number(mg),
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
    roles=("vaccines", "pregnancy", "pregnancy_status"),
    thresholds=(
        "infection.live_vaccine_min_daily_mg",
        "infection.live_vaccine_min_days",
        "infection.live_vaccine_wait_days",
        "pregnancy.max_days",
    ),
    summaries=("live-vaccine",),
    details=("contraindication", "remove", "zoster-alternative", "pregnancy"),
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

KINDS = (LIVE_VACCINE,)
