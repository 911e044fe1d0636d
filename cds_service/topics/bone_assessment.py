"""How the bones stand before any advice (both bone-health hooks, adults and children): what is
already done (the last DXA, the therapy that counts, known bone disease, replaced hips), the
ACR 2022 fracture-risk category, and the DXA paragraph: one order that names the site, the
vertebral fracture assessment, the last scan and its interval, followed by how to read it
(FRAX from age 40, Z-scores under 40); with a DXA within the interval, the risk assessment
from the scan on record instead of another order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.facts import ClinicalFacts, Hit
from cds_service.steroid_status import SteroidStatus
from cds_service.thresholds import Thresholds
from cds_service.topics.bone_therapy import BoneTherapy
from cds_service.topics.patient_context import both_hips_replaced, newest

# How to read fracture risk, by age and dose: a sentence after a DXA order (``READING``), or
# its own paragraph when the DXA on record is within the interval.
ASSESSMENTS = ("frax", "frax-high-dose", "frax-low-dose", "under-40")
READING = {name: f"read-{name}" for name in ASSESSMENTS}


@dataclass(frozen=True)
class BoneWork:
    """What is already done for the bones: the last DXA, active therapy, known bone disease."""

    dxa_hits: tuple[Hit, ...]  # results, procedures and DXA orders (drafts included)
    last_dxa: date | None
    dxa_current: bool
    therapy: tuple[str, ...]  # references of the osteoporosis therapy that counts today
    drugs: BoneTherapy
    known_disease: tuple[str, ...]
    hips_replaced: bool  # both hips: the DXA is of the spine and forearm

    @staticmethod
    def of(facts: ClinicalFacts, t: Thresholds) -> BoneWork:
        dxa_hits = tuple(facts.of("bone_density"))
        last_dxa = newest(list(dxa_hits))
        interval = t.value("bone.dxa_interval_days")
        drugs = BoneTherapy.of(facts, t)
        return BoneWork(
            dxa_hits=dxa_hits,
            last_dxa=last_dxa,
            dxa_current=last_dxa is not None and (facts.today - last_dxa).days <= interval,
            therapy=drugs.current,
            drugs=drugs,
            known_disease=facts.refs("osteoporosis")
            + facts.refs("osteopenia")
            + facts.refs("fragility_fracture"),
            hips_replaced=both_hips_replaced(facts),
        )

    @property
    def done(self) -> bool:
        """Assessed within the interval and treated, no denosumab dose due: nothing to add."""
        return self.dxa_current and bool(self.therapy) and self.drugs.denosumab is None

    def dxa_advice(self, never_done: str) -> tuple[list[str], list[str]]:
        """(detail ids, suggestion ids) for a DXA that is due: one paragraph naming the site
        (``-hips``: lumbar spine and forearm), the last scan or ``never_done`` (the fragment
        for a patient with no DXA on file)."""
        if self.dxa_current:
            return [], []
        detail = "dxa-due" if self.last_dxa else never_done
        if self.hips_replaced:
            return [f"{detail}-hips"], ["dxa-spine-forearm"]
        return [detail], ["dxa"]

    def evidence(self, facts: ClinicalFacts) -> set[str]:
        refs = {h.ref for h in self.dxa_hits} | set(self.known_disease) | set(self.therapy)
        dmab = self.drugs.denosumab
        if dmab is not None:  # the injection the due date counts from
            refs |= {h.ref for h in facts.of("denosumab") if h.given and h.day == dmab.last}
        zol = self.drugs.zoledronate
        if zol is not None:  # the infusion the due date counts from
            refs |= {h.ref for h in facts.of("zoledronic_acid") if h.given and h.day == zol.last}
        return refs | set(facts.refs("hip_prosthesis"))

    def denosumab_advice(self) -> tuple[list[str], list[str]]:
        """(detail ids, suggestion ids) when denosumab's next injection is due or overdue."""
        dmab = self.drugs.denosumab
        if dmab is None:
            return [], []
        return [f"denosumab-{dmab.state}"], ["denosumab-next-dose"]


def assessment(facts: ClinicalFacts, status: SteroidStatus, t: Thresholds, work: BoneWork) -> str:
    """How fracture risk is read (adults): FRAX from age 40, adjusted for the dose from the
    adjustment threshold, not FRAX at very high doses (ACR 2022 key points; KB1 A3), Z-scores under 40; ``age-unknown`` without a
    birth date. After a DXA order it is a sentence of that paragraph (``read-...``)."""
    if facts.age is None:
        return "age-unknown"
    if facts.age < t.value("bone.frax_min_age"):
        name = "under-40"
    elif status.current_mg >= t.value("exposure.very_high_daily_mg"):
        name = "frax-high-dose"
    elif status.current_mg < t.value("bone.frax_gc_adjust_above_mg"):
        name = "frax-low-dose"  # no dose adjustment below 7.5 mg/day (Kanis 2011; KB1 A3)
    else:
        name = "frax"
    return name if work.dxa_current else READING[name]


# ---------------------------------------------------------------------------------------------
# ACR 2022 fracture-risk category


def fracture_risk(
    facts: ClinicalFacts, t: Thresholds, status: SteroidStatus
) -> tuple[str, list[str]]:
    """ACR 2022 fracture-risk category from the record: (category, evidence refs)."""
    exp = facts.exposure
    very_high_dose = (
        exp.longest_run_at_or_above(t.value("exposure.very_high_daily_mg"))
        > t.value("exposure.very_high_days")
    ) or status.cumulative_mg >= t.value("exposure.very_high_cumulative_mg")
    fractures = facts.refs("fragility_fracture")
    if fractures or very_high_dose:
        return "very high", list(fractures)
    if facts.age is not None and facts.age >= t.value("bone.frax_min_age"):
        return _adult_risk(facts, t)
    return _under_40_risk(facts, t)


def _scores(facts: ClinicalFacts, kind: str) -> tuple[float | None, list[str]]:
    """Lowest T- or Z-score on file and the references of every such score."""
    hits = [
        h
        for h in facts.of("bone_density")
        if h.properties.get("score") == kind and h.value is not None
    ]
    return min((h.value for h in hits if h.value is not None), default=None), [h.ref for h in hits]


def _adult_risk(facts: ClinicalFacts, t: Thresholds) -> tuple[str, list[str]]:
    """40 and over: FRAX with the glucocorticoid adjustment, T-scores and known disease."""
    lowest, refs = _scores(facts, "t")
    if lowest is not None and lowest <= t.value("bone.t_score_very_high"):
        return "very high", refs
    if (lowest is not None and lowest <= t.value("bone.t_score_osteoporosis")) or facts.of(
        "osteoporosis"
    ):
        return "high", refs + list(facts.refs("osteoporosis"))
    if (lowest is not None and lowest < t.value("bone.t_score_low")) or facts.of("osteopenia"):
        return "moderate", refs + list(facts.refs("osteopenia"))
    return "to be determined (FRAX)", []


def _under_40_risk(facts: ClinicalFacts, t: Thresholds) -> tuple[str, list[str]]:
    """Under 40 FRAX is not validated; ACR 2022 uses dose, fractures and Z-scores."""
    lowest, refs = _scores(facts, "z")
    sustained = facts.exposure.longest_run_at_or_above(t.value("bone.under40_moderate_daily_mg"))
    if (
        lowest is not None
        and lowest < t.value("bone.z_score_moderate")
        and sustained >= t.value("bone.under40_moderate_days")
    ):
        return "moderate", refs
    if facts.of("osteoporosis"):
        return "moderate", list(facts.refs("osteoporosis"))
    return "low unless BMD shows otherwise", []
