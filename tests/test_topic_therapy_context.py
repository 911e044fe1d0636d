"""Bone-health cards say what kidney function and pregnancy change about osteoporosis therapy
(patient_context.TherapyContext through the bone-health kinds)."""

from __future__ import annotations

import pytest

from cds_service.facts import Hit
from cds_service.topics.bone_health import BONE_HEALTH, ORDER_BONE_HEALTH
from cds_service.topics.patient_context import TherapyContext, pregnancy
from tests.topic_support import THRESHOLDS, Planned, Taken, facts, hit, run

LONG_TERM = [Taken(ago=200, days=201, mg=10)]
EGFR = "mL/min/{1.73_m2}"


def clearance(value: float, *, ago: int = 20) -> Hit:
    return hit(
        "kidney_function",
        "Observation/crcl",
        ago=ago,
        value=value,
        value_unit="mL/min",
        measure="crcl",
        unit="mL/min",
        label="creatinine clearance (Cockcroft-Gault)",
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [(22, True), (34.9, True), (35, False), (60, False)],
)
def test_kidney_detail_below_the_bisphosphonate_line(value: float, shown: bool) -> None:
    finding = run(BONE_HEALTH, facts(clearance(value), taken=LONG_TERM))
    assert finding is not None
    assert ("kidney" in finding.details) is shown
    assert ("Observation/crcl" in finding.evidence) is shown
    if shown:
        assert finding.facts["kidney_test"] == "creatinine clearance (Cockcroft-Gault)"
        assert finding.facts["bisphosphonate_min_ml_min"] == "35"


def test_egfr_stands_in_when_no_clearance_is_on_record() -> None:
    egfr = hit(
        "kidney_function", "Observation/egfr", value=22, value_unit=EGFR, unit=EGFR, label="eGFR"
    )
    finding = run(BONE_HEALTH, facts(egfr, taken=LONG_TERM))
    assert finding is not None
    assert "kidney" in finding.details
    assert finding.facts["kidney_value"] == "22"


def test_pregnancy_detail_on_both_bone_kinds() -> None:
    preg = hit("pregnancy", "Condition/preg", ago=70)
    patient_view = run(BONE_HEALTH, facts(preg, taken=LONG_TERM))
    order = run(ORDER_BONE_HEALTH, facts(preg, clearance(25), planned=[Planned(180, 10)]))
    for finding in (patient_view, order):
        assert finding is not None
        assert "pregnancy" in finding.details
        assert "Condition/preg" in finding.evidence
    assert order is not None
    assert "kidney" in order.details


@pytest.mark.parametrize(
    ("case", "hits", "pregnant"),
    [
        ("active condition 70 days ago", (hit("pregnancy", "Condition/p", ago=70),), True),
        ("condition 300 days ago: past 40 weeks", (hit("pregnancy", "Condition/p", ago=300),), False),
        ("resolved condition", (hit("pregnancy", "Condition/p", ago=70, active=False),), False),
        ("status 'pregnant'", (hit("pregnancy_status", "Observation/s", ago=5, result="positive"),), True),
        ("status 'unknown'", (hit("pregnancy_status", "Observation/s", ago=5, result="indeterminate"),), False),
        (
            "newer 'not pregnant' status ends an older condition",
            (hit("pregnancy", "Condition/p", ago=70), hit("pregnancy_status", "Observation/s", ago=5, result="negative")),
            False,
        ),
        (
            "condition newer than a 'not pregnant' status",
            (hit("pregnancy", "Condition/p", ago=5), hit("pregnancy_status", "Observation/s", ago=70, result="negative")),
            True,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_pregnancy_reader(case: str, hits: tuple[Hit, ...], pregnant: bool) -> None:
    assert bool(pregnancy(facts(*hits), THRESHOLDS)) is pregnant, case


def test_no_context_no_details() -> None:
    context = TherapyContext.of(facts(), THRESHOLDS)
    assert context.details == ()
    assert context.values["kidney_value"] == "unknown"


def test_pregnancy_leads_and_holds_the_dxa_order() -> None:
    """Pregnancy: one 'plan after delivery' paragraph first, no DXA order, no treatment prompt
    and an info card (clinical review 1d; clinical-knowledge-2.md 2.6, 4)."""
    preg = hit("pregnancy", "Condition/preg", ago=70)
    patient_view = run(BONE_HEALTH, facts(preg, age=45, taken=LONG_TERM))
    order = run(ORDER_BONE_HEALTH, facts(preg, age=45, planned=[Planned(180, 10)]))
    for finding in (patient_view, order):
        assert finding is not None
        assert finding.details[0] == "pregnancy"
        assert not {"dxa-none", "dxa-baseline", "frax", "treatment", "risk-assessment"} & set(
            finding.details
        )
        assert not {"dxa", "dxa-spine-forearm"} & set(finding.suggestions)
        assert finding.summary == "pregnancy"
        assert finding.indicator == "info"


def test_low_kidney_function_replaces_the_bisphosphonate_first_line_prompt() -> None:
    """Very high risk (fracture on record) with a clearance of 22: the treatment prompt names
    the kidney limit instead of 'oral bisphosphonate first line' (clinical review 1f)."""
    fracture = hit("fragility_fracture", "Condition/fx", ago=300)
    finding = run(BONE_HEALTH, facts(fracture, clearance(22), age=70, taken=LONG_TERM))
    assert finding is not None
    assert "treatment-kidney" in finding.details
    assert not {"treatment", "treatment-very-high", "kidney"} & set(finding.details)
    assert finding.facts["risk"] == "very high"
    untreated_normal = run(BONE_HEALTH, facts(fracture, clearance(60), age=70, taken=LONG_TERM))
    assert untreated_normal is not None
    assert "treatment-very-high" in untreated_normal.details  # anabolic preferred (review 2, 7)
