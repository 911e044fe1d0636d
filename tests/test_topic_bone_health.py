"""bone_health as pure functions of facts and thresholds (no FHIR, no HTTP)."""

from __future__ import annotations

import pytest

from cds_service.facts import ClinicalFacts
from cds_service.topics.bone_health import BONE_HEALTH, ORDER_BONE_HEALTH
from tests.topic_support import Planned, Taken, facts, hit, run

LONG_TERM = [Taken(ago=200, days=120, mg=10)]  # 120 days at 10 mg/day, ended 80 days ago
DXA_RECENT = hit("bone_density", "Observation/dxa", ago=100, value=-1.5, score="t")
ALENDRONATE = hit("osteoporosis_drugs", "MedicationRequest/aln")
BOTH_HIPS = hit("hip_prosthesis", "Procedure/thr", laterality="bilateral")


@pytest.mark.parametrize(
    ("case", "f", "summary", "indicator", "risk"),
    [
        ("not long-term: silent", facts(taken=[Taken(30, 20, 40)]), None, None, None),
        (
            "intermittent courses sum to long-term",
            facts(taken=[Taken(300, 50, 10), Taken(100, 50, 10)]),
            "dxa-none",
            "warning",
            None,
        ),
        (
            "coded long-term use alone",
            facts(hit("long_term_steroid", "Condition/z7952")),
            "dxa-none",
            "warning",
            None,
        ),
        (
            "unknown dose still long-term",
            facts(taken=[Taken(200, 120, None)]),
            "dxa-none",
            "warning",
            None,
        ),
        (
            "DXA current and treated: silent",
            facts(DXA_RECENT, ALENDRONATE, taken=LONG_TERM),
            None,
            None,
            None,
        ),
        (
            "DXA current, untreated osteopenia at 45",
            facts(DXA_RECENT, age=45, taken=LONG_TERM),
            "treat",
            "warning",
            "moderate",
        ),
        (
            "DXA overdue, treated",
            facts(
                hit("bone_density", "Observation/old", ago=800, value=-1.0, score="t"),
                ALENDRONATE,
                taken=LONG_TERM,
            ),
            "dxa-due",
            "info",
            None,
        ),
        (
            "fragility fracture: very high",
            facts(hit("fragility_fracture", "Condition/vfx"), taken=LONG_TERM),
            "treat",
            "warning",
            "very high",
        ),
        (
            "30 mg for 31 days: very high",
            facts(taken=[Taken(200, 31, 30), Taken(100, 90, 5)]),
            "treat",
            "warning",
            "very high",
        ),
        (
            "30 mg for exactly 30 days: not very high",
            facts(taken=[Taken(200, 30, 30), Taken(100, 90, 5)], age=30),
            "dxa-none",
            "warning",
            "low unless BMD shows otherwise",
        ),
        (
            "T-score -3.5 at 50: very high",
            facts(
                hit("bone_density", "Observation/t", value=-3.5, score="t"), age=50, taken=LONG_TERM
            ),
            "treat",
            "warning",
            "very high",
        ),
        (
            "T-score -2.5 at 50: high",
            facts(
                hit("bone_density", "Observation/t", value=-2.5, score="t"), age=50, taken=LONG_TERM
            ),
            "treat",
            "warning",
            "high",
        ),
        (
            "T-score -0.9 at 50: FRAX to do",
            facts(
                hit("bone_density", "Observation/t", value=-0.9, score="t"), age=50, taken=LONG_TERM
            ),
            "supplements",
            "info",
            "to be determined (FRAX)",
        ),
        (
            "under 40, Z -3.1 and 7.5 mg for 180 days: moderate",
            facts(
                hit("bone_density", "Observation/z", value=-3.1, score="z"),
                age=30,
                taken=[Taken(200, 180, 7.5)],
            ),
            "treat",
            "warning",
            "moderate",
        ),
        (
            "under 40, Z -3.1 but 179 days: low",
            facts(
                hit("bone_density", "Observation/z", value=-3.1, score="z"),
                age=30,
                taken=[Taken(200, 179, 7.5)],
            ),
            "supplements",
            "info",
            "low unless BMD shows otherwise",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_patient_view(
    case: str, f: ClinicalFacts, summary: str | None, indicator: str | None, risk: str | None
) -> None:
    finding = run(BONE_HEALTH, f)
    if summary is None:
        assert finding is None, case
        return
    assert finding is not None, case
    assert (finding.summary, finding.indicator) == (summary, indicator), case
    if risk is not None:
        assert finding.facts["risk"] == risk, case


def test_both_hips_replaced_asks_for_spine_and_forearm() -> None:
    finding = run(BONE_HEALTH, facts(BOTH_HIPS, taken=LONG_TERM))
    assert finding is not None
    assert finding.suggestions == ("dxa-spine-forearm",)
    assert "dxa-none-hips" in finding.details  # one DXA paragraph names the site
    assert "dxa-none" not in finding.details
    assert "Procedure/thr" in finding.evidence


def test_one_hip_replaced_keeps_the_hip_scan() -> None:
    finding = run(
        BONE_HEALTH, facts(hit("hip_prosthesis", "Procedure/l", laterality="left"), taken=LONG_TERM)
    )
    assert finding is not None
    assert finding.suggestions == ("dxa",)


def test_evidence_names_the_steroid_and_the_scans() -> None:
    finding = run(BONE_HEALTH, facts(DXA_RECENT, age=45, taken=LONG_TERM))
    assert finding is not None
    assert {"MedicationRequest/gc", "Observation/dxa"} <= set(finding.evidence)


@pytest.mark.parametrize(
    ("case", "f", "summary"),
    [
        ("no glucocorticoid ordered: silent", facts(taken=LONG_TERM), None),
        ("short burst ordered: silent", facts(planned=[Planned(10, 40)]), None),
        ("ordered below 2.5 mg: silent", facts(planned=[Planned(120, 2)]), None),
        ("ordered for 90 days: baseline DXA", facts(planned=[Planned(90, 10)]), "dxa-baseline"),
        (
            "short order on long-term use: DXA due",
            facts(
                hit("bone_density", "Observation/old", ago=800),
                planned=[Planned(10, 10)],
                taken=LONG_TERM,
            ),
            "dxa-due",
        ),
        (
            "DXA current, untreated: supplements",
            facts(DXA_RECENT, planned=[Planned(90, 10)]),
            "supplements",
        ),
        (
            "DXA current and treated: silent",
            facts(DXA_RECENT, ALENDRONATE, planned=[Planned(90, 10)]),
            None,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_order_hooks(case: str, f: ClinicalFacts, summary: str | None) -> None:
    finding = run(ORDER_BONE_HEALTH, f)
    assert (finding.summary if finding else None) == summary, case
    if finding is not None:
        assert "MedicationRequest/draft" in finding.evidence


def test_order_card_ignores_drafts_outside_the_focus() -> None:
    f = facts(planned=[Planned(90, 10)])
    f.focus = frozenset({"ServiceRequest/other"})
    assert run(ORDER_BONE_HEALTH, f) is None
