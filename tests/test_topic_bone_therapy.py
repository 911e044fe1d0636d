"""bone_therapy and the bone card: how long each osteoporosis drug counts as current therapy
(hooks/thresholds.toml [drug_effect]) and denosumab's next dose (due, overdue)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds_service.facts import Hit
from cds_service.topics.bone_health import BONE_HEALTH, ORDER_BONE_HEALTH
from cds_service.topics.bone_therapy import BoneTherapy
from tests.topic_support import THRESHOLDS, TODAY, Planned, Taken, facts, hit, run

LONG_TERM = [Taken(ago=200, days=120, mg=10)]
DXA_CURRENT_HIGH = hit("bone_density", "Observation/t", ago=100, value=-2.7, score="t")  # high risk


def given(role: str, ref: str, ago: int, supply_days: float | None = None) -> tuple[Hit, Hit]:
    """A dose record of a drug class: its class hit and its generic osteoporosis-drug hit
    (the facts step matches both roles; the generic one keeps the 90-day reading)."""
    return (
        hit(role, ref, ago=ago, active=ago <= 90, given=True, supply_days=supply_days),
        hit("osteoporosis_drugs", ref, ago=ago, active=ago <= 90, given=True),
    )


def therapy(*hits: Hit) -> BoneTherapy:
    return BoneTherapy.of(facts(*hits, age=62, taken=LONG_TERM), THRESHOLDS)


@pytest.mark.parametrize(
    ("case", "hits", "current"),
    [
        (
            "zoledronic acid 245 days ago",
            given("zoledronic_acid", "MedicationAdministration/z", 245),
            True,
        ),
        (
            "zoledronic acid 365 days ago (inclusive)",
            given("zoledronic_acid", "MedicationAdministration/z", 365),
            True,
        ),
        (
            "zoledronic acid 366 days ago",
            given("zoledronic_acid", "MedicationAdministration/z", 366),
            False,
        ),
        ("denosumab 183 days ago", given("denosumab", "MedicationAdministration/d", 183), True),
        ("denosumab 184 days ago", given("denosumab", "MedicationAdministration/d", 184), False),
        (
            "alendronate 28 d supply, 58 days ago",
            given("oral_bisphosphonates", "MedicationDispense/a", 58, supply_days=28),
            True,
        ),
        (
            "alendronate 28 d supply, 59 days ago",
            given("oral_bisphosphonates", "MedicationDispense/a", 59, supply_days=28),
            False,
        ),
        (
            "alendronate, no supply stated, 90 days ago",
            given("oral_bisphosphonates", "MedicationDispense/a", 90),
            True,
        ),
        (
            "romosozumab injection 60 days ago",
            given("anabolic_bone_agents", "MedicationAdministration/r", 60),
            True,
        ),
        (
            "romosozumab injection 61 days ago",
            given("anabolic_bone_agents", "MedicationAdministration/r", 61),
            False,
        ),
        (
            "teriparatide 84 d supply, 100 days ago",
            given("anabolic_bone_agents", "MedicationDispense/t", 100, supply_days=84),
            True,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_how_long_a_dose_counts(case: str, hits: tuple[Hit, ...], current: bool) -> None:
    assert bool(therapy(*hits).current) is current, case


def test_an_active_order_counts_and_a_stopped_dose_does_not() -> None:
    order = hit("anabolic_bone_agents", "MedicationRequest/t", ago=400, active=True)
    assert therapy(order).current == ("MedicationRequest/t",)
    stopped = hit("zoledronic_acid", "MedicationAdministration/z", ago=30, active=True)
    assert therapy(stopped).current == ()  # not given: the 90-day generic reading is not used


def test_unclassified_drugs_keep_the_generic_reading() -> None:
    raloxifene = hit("osteoporosis_drugs", "MedicationDispense/r", ago=80, active=True)
    assert therapy(raloxifene).current == ("MedicationDispense/r",)
    assert therapy(hit("bisphosphonate_use", "Condition/z7983")).current == ("Condition/z7983",)


@pytest.mark.parametrize(
    ("case", "ago", "state"),
    [
        ("just given", 10, None),
        ("4 months: due in 63 days", 120, None),
        ("5 months: due in 33 days", 150, "due"),
        ("due today", 183, "due"),
        ("7 months: overdue", 218, "overdue"),
        ("overdue by 365 days", 548, "overdue"),
        ("overdue by 366 days: no longer watched", 549, None),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_denosumab_next_dose(case: str, ago: int, state: str | None) -> None:
    dmab = therapy(*given("denosumab", "MedicationAdministration/d", ago)).denosumab
    assert (dmab.state if dmab else None) == state, case
    if dmab is not None:
        assert dmab.due == TODAY - timedelta(days=ago) + timedelta(days=183)


def test_denosumab_due_but_next_dose_already_ordered() -> None:
    hits = given("denosumab", "MedicationAdministration/d", 150)
    order = hit("denosumab", "MedicationRequest/next", ago=5, active=True)
    assert therapy(*hits, order).denosumab is None


def test_denosumab_overdue_unless_switched_to_another_antiresorptive() -> None:
    lapsed = given("denosumab", "MedicationAdministration/d", 218)
    assert therapy(*lapsed).denosumab is not None
    switched = given("zoledronic_acid", "MedicationAdministration/z", 20)
    result = therapy(*lapsed, *switched)
    assert result.denosumab is None
    assert result.current == ("MedicationAdministration/z",)
    before = given("zoledronic_acid", "MedicationAdministration/old", 300)  # before the injection
    assert therapy(*lapsed, *before).denosumab is not None


def test_a_standing_order_does_not_make_a_lapsed_injection_current() -> None:
    lapsed = given("denosumab", "MedicationAdministration/d", 218)
    standing = hit("denosumab", "MedicationRequest/standing", ago=400, active=True)
    result = therapy(*lapsed, standing)
    assert result.denosumab is not None
    assert result.denosumab.state == "overdue"
    assert result.current == ()


# ---------------------------------------------------------------------------------------------
# The bone card


def card(*hits: Hit) -> tuple[str | None, str | None, tuple[str, ...], tuple[str, ...]]:
    finding = run(BONE_HEALTH, facts(DXA_CURRENT_HIGH, *hits, age=62, taken=LONG_TERM))
    if finding is None:
        return None, None, (), ()
    return finding.summary, finding.indicator, finding.details, finding.suggestions


def run_with_old_dxa(hits: tuple[Hit, ...]) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    old = hit("bone_density", "Observation/old", ago=800, value=-2.7, score="t")
    finding = run(BONE_HEALTH, facts(old, *hits, age=62, taken=LONG_TERM))
    assert finding is not None
    return finding.summary, finding.indicator, finding.details, finding.suggestions


def test_untreated_high_risk_asks_for_treatment() -> None:
    summary, indicator, details, _ = card()
    assert (summary, indicator) == ("treat", "warning")
    assert "treatment" in details


def test_zoledronic_acid_8_months_ago_is_therapy() -> None:
    assert card(*given("zoledronic_acid", "MedicationAdministration/z", 245))[0] is None
    summary, _, details, _ = run_with_old_dxa(
        given("zoledronic_acid", "MedicationAdministration/z", 245)
    )
    assert summary == "dxa-due"
    assert "therapy-zoledronate" in details
    assert "treatment" not in details


def test_denosumab_due_shows_the_card_although_treated_and_scanned() -> None:
    summary, indicator, details, suggestions = card(
        *given("denosumab", "MedicationAdministration/d", 150)
    )
    assert (summary, indicator) == ("denosumab-due", "info")
    assert details[0] == "denosumab-due"
    assert "treatment" not in details
    assert "therapy-denosumab" not in details  # the due paragraph says it
    assert suggestions == ("denosumab-next-dose",)


def test_denosumab_overdue_leads_and_replaces_the_treatment_prompt() -> None:
    summary, indicator, details, suggestions = card(
        *given("denosumab", "MedicationAdministration/d", 218)
    )
    assert (summary, indicator) == ("denosumab-overdue", "warning")
    assert "treatment" not in details
    assert suggestions[0] == "denosumab-next-dose"


def test_denosumab_facts_name_the_dates() -> None:
    f = facts(
        DXA_CURRENT_HIGH,
        *given("denosumab", "MedicationAdministration/d", 150),
        age=62,
        taken=LONG_TERM,
    )
    finding = run(BONE_HEALTH, f)
    assert finding is not None
    assert finding.facts["denosumab_last"] == "2026-06-27"
    assert finding.facts["denosumab_due"] == "2026-12-27"
    assert "MedicationAdministration/d" in finding.evidence


def test_order_card_reminds_of_an_overdue_denosumab() -> None:
    f = facts(
        DXA_CURRENT_HIGH,
        *given("denosumab", "MedicationAdministration/d", 218),
        planned=[Planned(90, 10)],
    )
    finding = run(ORDER_BONE_HEALTH, f)
    assert finding is not None
    assert "denosumab-overdue" in finding.details
    assert "risk-assessment" not in finding.details
    assert finding.suggestions[0] == "denosumab-next-dose"


def test_order_card_counts_zoledronic_acid_as_therapy() -> None:
    f = facts(
        DXA_CURRENT_HIGH,
        *given("zoledronic_acid", "MedicationAdministration/z", 245),
        planned=[Planned(90, 10)],
    )
    assert run(ORDER_BONE_HEALTH, f) is None  # DXA current and treated


@pytest.mark.parametrize(
    ("case", "ago", "due"),
    [
        ("within its year: current, not due", 300, False),
        ("13 months: the yearly infusion is due", 400, True),
        ("beyond the watch window: no claim", 365 + 366 + 1, False),
    ],
)
def test_lapsed_zoledronate_is_named_with_its_dates(case: str, ago: int, due: bool) -> None:
    finding = run(
        BONE_HEALTH,
        facts(
            DXA_CURRENT_HIGH,
            *given("zoledronic_acid", "MedicationAdministration/z", ago),
            age=62,
            taken=LONG_TERM,
        ),
    )
    assert finding is not None or not due, case
    if finding is None:
        return
    assert ("zoledronate-overdue" in finding.details) is due, case
    if due:
        last = TODAY - timedelta(days=ago)
        assert finding.summary == "zoledronate-overdue"
        assert finding.facts["zoledronate_last"] == last.isoformat()
        assert finding.facts["zoledronate_due"] == (last + timedelta(days=365)).isoformat()
        assert "treatment" not in finding.details  # no generic "none on record" prompt
        assert "MedicationAdministration/z" in finding.evidence


def test_lapsed_zoledronate_with_low_kidney_function_is_not_given() -> None:
    egfr = hit(
        "kidney_function",
        "Observation/egfr",
        ago=10,
        value=22,
        value_unit="mL/min/{1.73_m2}",
        unit="mL/min/{1.73_m2}",
        measure="egfr",
    )
    f = facts(
        DXA_CURRENT_HIGH,
        egfr,
        *given("zoledronic_acid", "MedicationAdministration/z", 400),
        age=62,
        taken=LONG_TERM,
    )
    finding = run(BONE_HEALTH, f)
    assert finding is not None
    assert "zoledronate-overdue" not in finding.details
    assert "treatment-kidney" in finding.details


def test_lapsed_zoledronate_on_the_order_card() -> None:
    f = facts(
        DXA_CURRENT_HIGH,
        *given("zoledronic_acid", "MedicationAdministration/z", 400),
        age=62,
        planned=[Planned(90, 10)],
    )
    finding = run(ORDER_BONE_HEALTH, f)
    assert finding is not None
    assert "zoledronate-overdue" in finding.details
    assert "risk-assessment" not in finding.details
