"""osteonecrosis: avascular necrosis risk of glucocorticoids.

patient-view: a high cumulative dose, a run at a high daily dose, IV pulses or a prior
osteonecrosis -> ask about joint pain, MRI of symptomatic native joints (never of a prosthesis),
with the side when the record knows it. A painful replaced joint (hip, knee, shoulder, ankle,
elbow) gets radiographs, ESR/CRP and orthopaedic review instead (clinical-knowledge-2.md 9.3).
Order hooks: the order itself reaches a high daily dose for long enough, or the projected
cumulative dose crosses the threshold -> information card.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cds_service.card_text import fmt_number
from cds_service.facts import ClinicalFacts
from cds_service.rule_kind import Finding, Indicator, RuleKind
from cds_service.steroid_status import (
    COMMON_SAMPLE,
    COMMON_THRESHOLDS,
    ORDER_SAMPLE,
    SteroidStatus,
    projected_cumulative_mg,
    run_with_plan,
)
from cds_service.thresholds import Thresholds
from cds_service.topics.patient_context import (
    JOINTS,
    LOCATION_ROLES,
    PROSTHESIS_ROLES,
    SIDES,
    Site,
    hips_replaced,
    pain_sites,
    prosthesis_refs,
    replaced_joints,
)

THRESHOLDS = (
    "osteonecrosis.cumulative_mg",
    "osteonecrosis.daily_mg",
    "osteonecrosis.high_dose_min_days",
)
THRESHOLD_SAMPLE = {"cumulative_threshold_g": "2", "daily_threshold_mg": "20"}
# Joints with an MRI suggestion of their own per side; the rest share mri-other-joint.
SIDED_MRI = ("hip", "knee", "shoulder", "ankle")
MRI_SUGGESTIONS = (
    "mri-hip",
    "mri-knee",
    *(f"mri-{joint}-{side}" for joint in SIDED_MRI for side in SIDES),
    "mri-other-joint",
)
XRAY_SUGGESTIONS = tuple(
    key for joint in JOINTS for key in (f"xray-{joint}", *(f"xray-{joint}-{s}" for s in SIDES))
)
PROSTHESIS_SUGGESTIONS = (*XRAY_SUGGESTIONS, "pji-bloods", "orthopaedic-review")
JOINT_SAMPLE = {
    "painful_prostheses": "left hip, right hip, left knee, right knee, left shoulder",
    "painful_native": "left shoulder, right shoulder, left ankle, right ankle, left elbow",
    "replaced_joints": "left hip, right hip, left knee, right knee, left shoulder, right shoulder",
}


def _threshold_facts(t: Thresholds) -> dict[str, str]:
    """The dose thresholds for the card text: written once per loaded thresholds."""
    return t.derived("osteonecrosis.threshold-facts", _threshold_numbers)


def _threshold_numbers(t: Thresholds) -> dict[str, str]:
    return {
        "cumulative_threshold_g": fmt_number(t.value("osteonecrosis.cumulative_mg") / 1000),
        "daily_threshold_mg": fmt_number(t.value("osteonecrosis.daily_mg")),
    }


def _label(joint: str, side: str | None) -> str:
    """A joint with its side for the card text: "right knee", or "knee" when unknown."""
    return f"{side} {joint}" if side in SIDES else joint


def _mri_key(joint: str, side: str | None) -> str:
    if joint in SIDED_MRI and side in SIDES:
        return f"mri-{joint}-{side}"
    return f"mri-{joint}" if joint in ("hip", "knee") else "mri-other-joint"


def _xray_key(joint: str, side: str | None) -> str:
    return f"xray-{joint}-{side}" if side in SIDES else f"xray-{joint}"


def _other(side: str) -> str:
    return "left" if side == "right" else "right"


def _native_sides(replaced: set[str]) -> list[str | None]:
    """The sides of a joint pair still native: both (None, one order for "the joint"), one
    side, none; a prosthesis of unknown side leaves the native side unknown (None)."""
    known = replaced - {"unknown"}
    if known >= set(SIDES):
        return []
    if len(known) == 1:
        return [_other(next(iter(known)))]
    return [None]


@dataclass
class JointPlan:
    """Which joints to image or work up, and the detail fragments that say why: about the
    located pain, and about the joints to screen (replaced hips, other prostheses)."""

    pain_details: list[str] = field(default_factory=list)
    joint_details: list[str] = field(default_factory=list)
    prostheses: bool = False  # a knee, shoulder, ankle or elbow prosthesis is on record
    suggestions: list[str] = field(default_factory=list)
    painful_prostheses: list[str] = field(default_factory=list)
    painful_native: list[str] = field(default_factory=list)
    side_unclear: bool = False

    @property
    def located(self) -> bool:
        return bool(self.painful_prostheses or self.painful_native)

    def summary(self, pain: bool, default: str) -> str:
        if self.painful_prostheses:
            return "prosthesis-pain"
        if self.painful_native:
            return "pain-joint"
        return "pain" if pain else default

    def suggest(self, *keys: str) -> None:
        self.suggestions += [k for k in keys if k not in self.suggestions]

    def pain_at(self, site: Site, replaced: set[str]) -> None:
        """A located pain: MRI if the joint is native on that side, a prosthesis work-up if it
        is replaced; with the side unknown and one of the pair replaced, both, and say so."""
        joint = str(site.joint)
        sides = list(SIDES) if site.side == "bilateral" else [site.side]
        for side in sides:
            known = replaced - {"unknown"}
            if side in SIDES and (side in replaced or "unknown" in replaced):
                self._prosthesis(joint, side)
                self.side_unclear |= side not in replaced
            elif side in SIDES:
                self._native(joint, side)
            elif known >= set(SIDES):
                self._prosthesis(joint, None)
            elif replaced:
                single = next(iter(known)) if len(known) == 1 else None
                self._prosthesis(joint, single)
                self._native(joint, _other(single) if single else None)
                self.side_unclear = True
            else:
                self._native(joint, None)

    def _prosthesis(self, joint: str, side: str | None) -> None:
        self.painful_prostheses.append(_label(joint, side))
        self.suggest(_xray_key(joint, side), "pji-bloods", "orthopaedic-review")

    def _native(self, joint: str, side: str | None) -> None:
        self.painful_native.append(_label(joint, side))
        self.suggest(_mri_key(joint, side))


def _joint_plan(facts: ClinicalFacts, replaced: dict[str, set[str]]) -> JointPlan:
    """Located pain first (MRI of the native joint, work-up of a replaced one), then the usual
    screening prompts for the joints still native: hips, or knees when both hips are replaced
    (knee osteonecrosis follows hip osteonecrosis: Mod Rheumatol 2020), shoulders and ankles.
    ``replaced``: the record's replaced joints (``replaced_joints``)."""
    plan = JointPlan()
    for site in pain_sites(facts):
        if site.joint is not None:
            plan.pain_at(site, replaced.get(site.joint, set()))
    if plan.painful_prostheses:
        plan.pain_details.append("prosthesis-pain")
        if plan.side_unclear:
            plan.pain_details.append("prosthesis-side-unclear")
    if plan.painful_native:
        plan.pain_details.append("pain-native")
    hips = replaced.get("hip", set())
    if hips - {"unknown"} >= set(SIDES):
        plan.joint_details.append("hips-replaced")
        screen = [_mri_key("knee", s) for s in _native_sides(replaced.get("knee", set()))]
    else:
        plan.joint_details.append("one-hip-replaced" if hips else "hips-native")
        screen = [_mri_key("hip", s) for s in _native_sides(hips)]
    # An unsided order for a joint already ordered with its side adds nothing.
    sided = {k.rsplit("-", 1)[0] for k in plan.suggestions if k.endswith(SIDES)}
    plan.suggest(*(k for k in screen if k not in sided), "mri-other-joint")
    plan.prostheses = bool(set(replaced) - {"hip"})
    return plan


def _details(facts: ClinicalFacts, plan: JointPlan, pain: bool) -> list[str]:
    prior = facts.of("osteonecrosis")
    details = ["exposure", *(plan.pain_details if plan.located else ["pain"] if pain else [])]
    prior_sites = {str(h.properties.get("site")) for h in prior}
    multifocal = bool(prior_sites & {"hip", "knee"} or (prior and hips_replaced(facts)))
    # The multifocal paragraph says what the prior one would (other sites), with the MRI to
    # consider without symptoms (KB1 A4, A7: Mod Rheumatol 2020).
    details += ["prior"] if prior and not multifocal else []
    details += plan.joint_details
    if multifocal:
        details.append("multifocal")
    details += ["prostheses"] if plan.prostheses else []
    return [*details, "minimise"]


def _replaced_text(replaced: dict[str, set[str]]) -> str:
    labels = [_label(joint, side) for joint, sides in replaced.items() for side in sorted(sides)]
    return ", ".join(labels) or "none"


def evaluate_osteonecrosis(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds
) -> Finding | None:
    if not (status.any_systemic or status.coded_long_term):
        return None  # no steroid evidence: not this service's business
    exp = facts.exposure
    cumulative = status.cumulative_mg > t.value("osteonecrosis.cumulative_mg")
    high_run = exp.longest_run_at_or_above(t.value("osteonecrosis.daily_mg")) >= t.value(
        "osteonecrosis.high_dose_min_days"
    )
    pulses = exp.iv_pulse_days()
    prior = facts.of("osteonecrosis")
    if not (cumulative or high_run or pulses or prior):
        return None
    pain = facts.of("joint_pain", active_only=True)
    replaced = replaced_joints(facts)
    plan = _joint_plan(facts, replaced)
    details = _details(facts, plan, bool(pain))
    summary = plan.summary(
        bool(pain), "both-hips-replaced" if "hips-replaced" in details else "risk"
    )
    indicator: Indicator = "warning" if pain else "info"
    values = (
        status.facts()
        | {"pulse_count": str(len(pulses))}
        | _threshold_facts(t)
        | {
            "painful_prostheses": ", ".join(plan.painful_prostheses),
            "painful_native": ", ".join(plan.painful_native),
            "replaced_joints": _replaced_text(replaced),
        }
    )
    evidence = (
        set(status.evidence)
        | {h.ref for h in prior}
        | {h.ref for h in pain}
        | set(prosthesis_refs(facts))
        | {src for _, _, src in pulses}
    )
    return Finding(
        summary=summary,
        details=(*status.unconfirmed_details(), *details),
        indicator=indicator,
        facts=values,
        evidence=tuple(sorted(evidence)),
        suggestions=tuple(plan.suggestions),
        recommended=tuple(plan.suggestions[:1]) if plan.located else (),
    )


OSTEONECROSIS = RuleKind(
    name="glucocorticoid-osteonecrosis",
    roles=(
        "osteonecrosis",
        *PROSTHESIS_ROLES.values(),
        "joint_pain",
        *LOCATION_ROLES,
        "long_term_steroid",
    ),
    thresholds=(*COMMON_THRESHOLDS, *THRESHOLDS),
    summaries=("prosthesis-pain", "pain-joint", "pain", "both-hips-replaced", "risk"),
    details=(
        "unconfirmed",
        "exposure",
        "prosthesis-pain",
        "prosthesis-side-unclear",
        "pain-native",
        "pain",
        "prior",
        "hips-replaced",
        "one-hip-replaced",
        "hips-native",
        "multifocal",
        "prostheses",
        "minimise",
    ),
    suggestions=(*MRI_SUGGESTIONS, *PROSTHESIS_SUGGESTIONS),
    sample_facts=COMMON_SAMPLE | THRESHOLD_SAMPLE | JOINT_SAMPLE | {"pulse_count": "99"},
    evaluate=evaluate_osteonecrosis,
)


def evaluate_order_osteonecrosis(
    facts: ClinicalFacts, status: SteroidStatus, t: Thresholds
) -> Finding | None:
    ordered = status.ordered
    if ordered is None:
        return None
    exp = facts.exposure
    high_run = run_with_plan(exp, t.value("osteonecrosis.daily_mg"))
    projected = projected_cumulative_mg(exp)
    high = high_run >= t.value("osteonecrosis.high_dose_min_days")
    cumulative = projected > t.value("osteonecrosis.cumulative_mg")
    if not (high or cumulative):
        return None
    prior = facts.of("osteonecrosis")
    details = ["exposure", "prior"] if prior else ["exposure"]
    values = (
        ordered.facts()
        | _threshold_facts(t)
        | {
            "high_dose_days": str(high_run),
            "projected_g": fmt_number(round(projected / 1000, 1)),
            "high_dose_min_days": fmt_number(t.value("osteonecrosis.high_dose_min_days")),
        }
    )
    return Finding(
        summary="prior" if prior else "risk",
        details=(*details, "symptoms", "minimise"),
        indicator="info",
        facts=values,
        evidence=tuple(sorted(set(ordered.refs) | {h.ref for h in prior})),
    )


ORDER_OSTEONECROSIS = RuleKind(
    name="glucocorticoid-order-osteonecrosis",
    roles=("osteonecrosis",),
    thresholds=THRESHOLDS,
    summaries=("risk", "prior"),
    details=("exposure", "prior", "symptoms", "minimise"),
    suggestions=(),
    sample_facts=ORDER_SAMPLE
    | THRESHOLD_SAMPLE
    | {"high_dose_days": "730", "projected_g": "999.9", "high_dose_min_days": "28"},
    evaluate=evaluate_order_osteonecrosis,
)

KINDS = (OSTEONECROSIS, ORDER_OSTEONECROSIS)
