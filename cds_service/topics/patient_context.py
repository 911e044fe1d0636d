"""What several topics read from the record besides the glucocorticoid: replaced joints and their
sides, where a pain is, lung disease, a second immunosuppressant, the state of a test (done,
pending, positive ...), kidney function, pregnancy, the newest of a set of hits. Pure functions
of the facts.

Joints and sides. A prosthesis, a pain or an osteonecrosis entry says which joint and side it is
at either by its code (value-set properties ``site`` and ``laterality``, e.g. Z96.651 -> right
knee) or, when the code does not say, by the joint-site and laterality roles matched on the same
resource: its code text, coding displays and bodySite (a SNOMED laterality qualifier or the
words). clinical-knowledge-2.md 9.2: the code first, then the qualifier codes, then the text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Literal, NamedTuple

from cds_service.card_text import fmt_date, fmt_number
from cds_service.facts import ClinicalFacts, Hit
from cds_service.rule_kind import Finding
from cds_service.thresholds import Thresholds

JOINTS = ("hip", "knee", "shoulder", "ankle", "elbow")
SIDES = ("left", "right")
PROSTHESIS_ROLES: Mapping[str, str] = {joint: f"{joint}_prosthesis" for joint in JOINTS}
SITE_ROLES: Mapping[str, str] = {joint: f"joint_site_{joint}" for joint in JOINTS}
SIDE_ROLES: Mapping[str, str] = {
    side: f"laterality_{side}" for side in ("left", "right", "bilateral")
}
LOCATION_ROLES = (*SITE_ROLES.values(), *SIDE_ROLES.values())


class Site(NamedTuple):
    """Where an entry is: a joint (None when not named) and a side (left, right, bilateral or
    unknown), with the reference of the entry."""

    joint: str | None
    side: str
    ref: str


def _named(facts: ClinicalFacts, roles: Mapping[str, str], ref: str) -> set[str]:
    """The keys of ``roles`` whose role matched the resource ``ref``."""
    return {key for key, role in roles.items() if any(h.ref == ref for h in facts.of(role))}


def side_of(facts: ClinicalFacts, hit: Hit) -> str:
    """left, right, bilateral or unknown: the code's laterality, else the laterality roles."""
    coded = str(hit.properties.get("laterality", "unknown"))
    if coded in ("left", "right", "bilateral"):
        return coded
    named = _named(facts, SIDE_ROLES, hit.ref)
    if "bilateral" in named or set(SIDES) <= named:
        return "bilateral"
    return named.pop() if len(named) == 1 else "unknown"


def joints_of(facts: ClinicalFacts, hit: Hit) -> set[str]:
    """The joints an entry names: the code's ``site``, else the joint-site roles."""
    coded = hit.properties.get("site")
    if coded in JOINTS:
        return {str(coded)}
    return _named(facts, SITE_ROLES, hit.ref)


def replaced(facts: ClinicalFacts, joint: str) -> set[str]:
    """The sides of ``joint`` with a prosthesis on record: left, right, and unknown when an entry
    does not say which side."""
    sides: set[str] = set()
    for hit in facts.of(PROSTHESIS_ROLES[joint]):
        side = side_of(facts, hit)
        sides |= set(SIDES) if side == "bilateral" else {side}
    return sides


def replaced_joints(facts: ClinicalFacts) -> dict[str, set[str]]:
    """Every joint with a prosthesis on record -> its replaced sides (see ``replaced``)."""
    return {joint: sides for joint in JOINTS if (sides := replaced(facts, joint))}


def prosthesis_refs(facts: ClinicalFacts) -> tuple[str, ...]:
    return tuple(sorted({r for role in PROSTHESIS_ROLES.values() for r in facts.refs(role)}))


def hips_replaced(facts: ClinicalFacts) -> set[str]:
    """The sides ("left", "right") with a hip prosthesis on record."""
    return replaced(facts, "hip") - {"unknown"}


def both_hips_replaced(facts: ClinicalFacts) -> bool:
    return hips_replaced(facts) >= {"left", "right"}


def pain_sites(facts: ClinicalFacts) -> list[Site]:
    """Where each active joint pain is. A pain naming several joints and both sides without
    saying which is which ("right hip and left knee pain") has side unknown at each joint."""
    sites: list[Site] = []
    for hit in facts.of("joint_pain", active_only=True):
        joints = joints_of(facts, hit)
        side = side_of(facts, hit)
        if len(joints) > 1 and side == "bilateral" and "bilateral" not in _words(facts, hit):
            side = "unknown"
        named: list[str | None] = [*sorted(joints)] or [None]
        sites.extend(Site(joint, side, hit.ref) for joint in named)
    return sites


def _words(facts: ClinicalFacts, hit: Hit) -> set[str]:
    return _named(facts, {"bilateral": SIDE_ROLES["bilateral"]}, hit.ref)


def interstitial_lung_disease(facts: ClinicalFacts) -> tuple[str, ...]:
    """Active ILD, coded on its own or as a myositis code with respiratory involvement."""
    return facts.refs("ild", active_only=True) + tuple(
        h.ref for h in facts.of("myositis", active_only=True) if h.properties.get("ild")
    )


def second_immunosuppressant(facts: ClinicalFacts) -> tuple[str, ...]:
    """Active immunosuppressive drugs or conditions; agents flagged ``immunosuppressive: false``
    in the value set (hydroxychloroquine) do not count. B-cell depletion and cyclophosphamide
    count for their own window after the last dose (thresholds [current_use])."""
    drugs = {
        h.ref
        for h in facts.of("immunosuppressant_drugs", active_only=True)
        if h.properties.get("immunosuppressive") is not False
    }
    drugs |= set(facts.refs("b_cell_depletion", active_only=True))
    drugs |= set(facts.refs("cyclophosphamide", active_only=True))
    return tuple(sorted(drugs | set(facts.refs("immunosuppression_conditions", active_only=True))))


def b_cell_depletion(facts: ClinicalFacts) -> tuple[str, ...]:
    """Anti-CD20 therapy still current (within [current_use] b_cell_depletion of the last dose)."""
    return facts.refs("b_cell_depletion", active_only=True)


# ---------------------------------------------------------------------------------------------
# Test results

LabStateName = Literal["none", "pending", "negative", "old", "positive", "indeterminate", "unclear"]
# On the day of the newest result, the result that matters most wins (a definite answer beats
# a number the service could not read; a valueless report counts as done, like a negative).
_RANK = {"positive": 4, "indeterminate": 3, "negative": 2, None: 2, "unclear": 1}


@dataclass(frozen=True)
class LabState:
    """Where a test stands: never done, ordered and pending, negative (recent or ``old``),
    positive (any time: a positive result is not undone by age), indeterminate, or a value the
    service could not read (``unclear``)."""

    state: LabStateName
    day: date | None
    refs: tuple[str, ...]


def lab_state(facts: ClinicalFacts, hits: Iterable[Hit], valid_days: float) -> LabState:
    """The state of one test from its hits (results, orders, reports): see LabState. Orders
    and results older than ``valid_days`` no longer count as done or pending."""
    hits = list(hits)
    positives = [h for h in hits if h.result == "positive"]
    if positives:
        return LabState("positive", newest(positives), _refs(positives))
    since = facts.today - timedelta(days=valid_days)
    results = [h for h in hits if h.result != "pending"]
    latest = newest(results)
    pending = [
        h
        for h in hits
        if h.result == "pending"
        and h.day is not None
        and h.day >= since
        and (latest is None or h.day >= latest)
    ]
    if pending:
        return LabState("pending", newest(pending), _refs(pending))
    if not results:
        return LabState("none", None, ())
    on_day = [h for h in results if h.day == latest]
    result = max((h.result for h in on_day), key=lambda r: _RANK[r])
    state: LabStateName
    if result in ("indeterminate", "unclear"):
        state = result
    else:  # negative, or a report without a value
        state = "old" if latest is not None and latest < since else "negative"
    return LabState(state, latest, _refs(on_day))


def _refs(hits: Iterable[Hit]) -> tuple[str, ...]:
    return tuple(sorted({h.ref for h in hits}))


# ---------------------------------------------------------------------------------------------
# Kidney function, pregnancy


@dataclass(frozen=True)
class KidneyFunction:
    """The newest usable eGFR or creatinine clearance (value in its own unit)."""

    value: float
    label: str  # the value set's words for the test ("eGFR (CKD-EPI 2021)")
    measure: str  # egfr | crcl
    day: date
    ref: str

    def facts(self) -> dict[str, str]:
        return {
            "kidney_test": self.label,
            "kidney_value": fmt_number(self.value),
            "kidney_date": fmt_date(self.day),
        }


def kidney_function(facts: ClinicalFacts, t: Thresholds) -> KidneyFunction | None:
    """The newest eGFR or creatinine clearance within [kidney] max_age_days whose unit is the
    one its value-set entry names (mL/min/{1.73_m2} or mL/min); None when there is none."""
    since = facts.today - timedelta(days=t.value("kidney.max_age_days"))
    usable = [
        h
        for h in facts.of("kidney_function")
        if h.value is not None
        and h.day is not None
        and h.day >= since
        and h.unit is not None
        and h.unit == h.properties.get("unit")
    ]
    if not usable:
        return None
    hit = max(usable, key=lambda h: (h.day or date.min, h.ref))
    if hit.day is None or hit.value is None:  # filtered above; narrows the types
        return None
    label = str(hit.properties.get("label", "kidney function"))
    return KidneyFunction(hit.value, label, str(hit.properties.get("measure")), hit.day, hit.ref)


def pregnancy(facts: ClinicalFacts, t: Thresholds) -> tuple[str, ...]:
    """Evidence of a current pregnancy: an active pregnancy condition, or a 'pregnant' status
    observation, within [pregnancy] max_days, and no newer 'not pregnant' status. Empty: not
    known to be pregnant."""
    since = facts.today - timedelta(days=t.value("pregnancy.max_days"))
    statuses = [
        h
        for h in facts.of("pregnancy_status")
        if h.day is not None and h.day >= since and h.result in ("positive", "negative")
    ]
    latest = max(statuses, key=lambda h: h.day or date.min) if statuses else None
    evidence = [
        h for h in facts.of("pregnancy", active_only=True) if h.day is None or h.day >= since
    ]
    if latest is not None and latest.result == "positive":
        evidence.append(latest)
    if latest is not None and latest.result == "negative":
        evidence = [h for h in evidence if h.day is not None and latest.day and h.day > latest.day]
    return _refs(evidence)


def newest(hits: list[Hit]) -> date | None:
    days = [h.day for h in hits if h.day is not None]
    return max(days) if days else None


@dataclass(frozen=True)
class TherapyContext:
    """What changes the choice of osteoporosis therapy: kidney function below the
    bisphosphonate line ([kidney] oral_bisphosphonate_min_ml_min) and a current pregnancy, as
    detail fragment ids ("kidney", "pregnancy"), their placeholder values and evidence."""

    details: tuple[str, ...]
    values: dict[str, str]
    evidence: tuple[str, ...]

    @staticmethod
    def of(facts: ClinicalFacts, t: Thresholds) -> TherapyContext:
        line = t.value("kidney.oral_bisphosphonate_min_ml_min")
        values = {
            "kidney_test": "kidney function",
            "kidney_value": "unknown",
            "kidney_date": fmt_date(None),
            "bisphosphonate_min_ml_min": fmt_number(line),
        }
        details: list[str] = []
        evidence: list[str] = []
        kidney = kidney_function(facts, t)
        if kidney is not None and kidney.value < line:
            details.append("kidney")
            values.update(kidney.facts())
            evidence.append(kidney.ref)
        pregnant = pregnancy(facts, t)
        if pregnant:
            details.append("pregnancy")
            evidence += pregnant
        return TherapyContext(tuple(details), values, tuple(evidence))

    def apply(self, finding: Finding) -> Finding:
        """The bone card with this context: in pregnancy, no DXA order or treatment prompt and
        the pregnancy paragraph first (clinical-knowledge-2.md 2.6, 4); with kidney function
        below the bisphosphonate line, the treatment prompt names it instead of offering an
        oral bisphosphonate first line (clinical-knowledge-2.md 4)."""
        details = [*finding.details, *self.details]
        suggestions = list(finding.suggestions)
        summary, indicator = finding.summary, finding.indicator
        prompts = ("treatment", "treatment-very-high", "zoledronate-overdue")
        prompt = next((d for d in prompts if d in details), None)
        if "kidney" in details and prompt is not None:
            # zoledronic acid is contraindicated below 35 mL/min: no "give it now" either
            details[details.index(prompt)] = "treatment-kidney"
            details.remove("kidney")
        if "pregnancy" in details:
            details = ["pregnancy", *(d for d in details if d not in PREGNANCY_DEFERS)]
            suggestions = [s for s in suggestions if s not in DXA_ORDERS]
            if summary in PREGNANCY_SUMMARIES:
                summary, indicator = "pregnancy", "info"
        return replace(
            finding,
            summary=summary,
            indicator=indicator,
            details=tuple(details),
            suggestions=tuple(suggestions),
            recommended=tuple(s for s in finding.recommended if s in suggestions),
            facts={**finding.facts, **self.values},
            evidence=tuple(sorted({*finding.evidence, *self.evidence})),
        )


# What waits for delivery on a bone card (details, orders, summaries that lead with them).
PREGNANCY_DEFERS = frozenset(
    {
        "dxa-none",
        "dxa-due",
        "dxa-baseline",
        "dxa-none-hips",
        "dxa-due-hips",
        "dxa-baseline-hips",
        "frax",
        "frax-high-dose",
        "frax-low-dose",
        "under-40",
        "read-frax",
        "read-frax-high-dose",
        "read-frax-low-dose",
        "read-under-40",
        "child-reading",
        "treatment",
        "treatment-very-high",
        "treatment-age-unknown",
        "zoledronate-overdue",
        "treatment-kidney",
        "risk-assessment",
        "pregnancy",
    }
)
DXA_ORDERS = frozenset({"dxa", "dxa-spine-forearm", "dxa-child"})
PREGNANCY_SUMMARIES = frozenset(
    {"dxa-none", "dxa-due", "dxa-baseline", "treat", "supplements", "zoledronate-overdue"}
)
THERAPY_CONTEXT_ROLES = ("kidney_function", "pregnancy", "pregnancy_status")
THERAPY_CONTEXT_THRESHOLDS = (
    "kidney.max_age_days",
    "kidney.oral_bisphosphonate_min_ml_min",
    "pregnancy.max_days",
)
THERAPY_CONTEXT_SAMPLE = {
    "kidney_test": "eGFR (CKD-EPI 2021, creatinine and cystatin C)",
    "kidney_value": "120.5",
    "kidney_date": "unknown date",
    "bisphosphonate_min_ml_min": "35",
}
