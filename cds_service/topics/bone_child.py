"""bone-health for children and adolescents (clinical-knowledge-2.md 7.1, 7.2, 7.4), both hooks.

No FRAX, no T-scores and no adult regimen: DXA Z-scores adjusted for age, sex and height with
vertebral fracture assessment or a spine radiograph; a fragility fracture goes to a paediatric
bone specialist (a bisphosphonate only then); calcium and vitamin D for the age band; growth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cds_service.card_text import fmt_date, fmt_months
from cds_service.facts import ClinicalFacts
from cds_service.rule_kind import Finding
from cds_service.steroid_status import SteroidStatus
from cds_service.thresholds import Thresholds
from cds_service.topics.bone_assessment import BoneWork
from cds_service.topics.child import child_facts, latest_weight
from cds_service.topics.patient_context import TherapyContext

# Children and adolescents (clinical-knowledge-2.md 7.1, 7.2, 7.4): no FRAX, no T-scores, no
# adult regimen; Z-scores and spine imaging, intakes for age, growth, a specialist after a fracture.
DETAILS = (
    "child-dose",
    "child-weight-missing",
    "child-assessment",
    "child-reading",
    "child-fracture",
    "child-treatment",
    "child-calcium-vitamin-d",
    "growth",
)
# How to read a child's DXA: a sentence of the DXA order's paragraph (RuleKind.sentences).
SENTENCES = frozenset({"child-reading"})


def child_finding(
    facts: ClinicalFacts,
    status: SteroidStatus,
    t: Thresholds,
    work: BoneWork,
    dose_mg: float,
    refs: tuple[str, ...],
    adult_values: Mapping[str, str],
    *,
    never_done: str = "dxa-none",
    lead: Sequence[str] = (),
) -> Finding:
    """Under 18 (both hooks): DXA Z-scores with spine imaging, no FRAX; a fragility fracture
    goes to a paediatric bone specialist (bisphosphonates only then); intakes for age; growth.
    ``adult_values`` fills the placeholders of the adult fragments the kind also declares;
    ``lead``: paragraphs that come first (confirm an unconfirmed course)."""
    fractures = facts.refs("fragility_fracture")
    dmab_details, dmab_suggestions = work.denosumab_advice()
    weighed = latest_weight(facts, t) is not None
    details = [*dmab_details, *lead, "exposure"]
    if status.replacement:  # as for adults: replacement doses are shown as information
        details.append("replacement")
    details.append("child-dose" if weighed else "child-weight-missing")
    dxa_details, dxa_suggestions = work.dxa_advice(never_done=never_done)
    if dxa_details:  # one DXA paragraph: the order, then how to read it
        details += [*work.drugs.details(), *dxa_details, "child-reading"]
    else:
        details += ["child-assessment", *work.drugs.details()]
    # A fracture: the bisphosphonate question goes to the paediatric bone specialist.
    details += [
        "child-fracture" if fractures else "child-treatment",
        "child-calcium-vitamin-d",
        "growth",
    ]
    suggestions = dmab_suggestions + ["dxa-child" if s == "dxa" else s for s in dxa_suggestions]
    if dmab_details == ["denosumab-overdue"]:
        summary = "denosumab-overdue"
    elif fractures and not work.therapy:
        summary = "child-fracture"
    else:
        summary = "child-dxa" if not work.dxa_current else "child-supplements"
    values = (
        status.facts()
        | child_facts(facts, t, dose_mg)
        | {
            "last_dxa": fmt_date(work.last_dxa),
            "dxa_interval_months": fmt_months(t.value("bone.dxa_interval_days")),
            "dxa_baseline_months": fmt_months(t.value("bone.dxa_baseline_within_days")),
            **adult_values,
            **work.drugs.facts(t),
        }
    )
    context = TherapyContext.of(facts, t)  # kidney function, pregnancy: therapy choice
    details += context.details
    values |= context.values
    evidence = set(refs) | set(fractures) | work.evidence(facts) | set(context.evidence)
    return Finding(
        summary=summary,
        details=tuple(details),
        indicator="warning"
        if (fractures or not work.last_dxa or dmab_details) and not status.replacement
        else "info",
        facts=values,
        evidence=tuple(sorted(evidence)),
        suggestions=tuple(suggestions),
        recommended=tuple(suggestions[:1]),
    )
