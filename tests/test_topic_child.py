"""Children and adolescents (topics/child.py): every topic's paediatric branch, table-driven."""

from __future__ import annotations

import pytest

from cds_service.facts import Hit
from cds_service.topics.bone_child import DETAILS as CHILD_DETAILS
from cds_service.topics.bone_health import BONE_HEALTH, ORDER_BONE_HEALTH
from cds_service.topics.child import intake_facts, latest_weight, live_vaccine_line, pjp_doses
from cds_service.topics.infection import INFECTION, ORDER_INFECTION
from cds_service.topics.live_vaccine import LIVE_VACCINE
from tests.topic_support import THRESHOLDS, Planned, Taken, facts, hit, run

LONG_TERM = [Taken(ago=200, days=201, mg=40)]  # 40 mg/day up to today
WEIGHT_32 = hit("body_weight", "Observation/wt", ago=10, value=32, value_unit="kg")
FRACTURE = hit("fragility_fracture", "Condition/vfx")
ADULT_ONLY = (
    "frax",
    "under-40",
    "read-frax",
    "read-under-40",
    "risk",
    "treatment",
    "calcium-vitamin-d",
    "risk-assessment",
)


@pytest.mark.parametrize(
    ("case", "f", "summary", "details_in", "suggestion"),
    [
        (
            "12 y, 32 kg, no DXA",
            facts(WEIGHT_32, age=12, taken=LONG_TERM),
            "child-dxa",
            {"child-dose", "dxa-none", "child-reading", "child-treatment", "growth"},
            "dxa-child",
        ),
        (
            "8 y, no weight",
            facts(age=8, taken=LONG_TERM),
            "child-dxa",
            {"child-weight-missing", "child-calcium-vitamin-d"},
            "dxa-child",
        ),
        (
            "16 y with a vertebral fracture",
            facts(FRACTURE, age=16, taken=LONG_TERM),
            "child-fracture",
            {"child-fracture"},  # the bisphosphonate goes to the specialist: no child-treatment
            "dxa-child",
        ),
        (
            "3 y, DXA current",
            facts(
                hit("bone_density", "Observation/dxa", ago=100, value=-1.0, score="z"),
                age=3,
                taken=LONG_TERM,
            ),
            "child-supplements",
            {"growth"},
            None,
        ),
        (
            "infant, no weight",
            facts(age=0, taken=LONG_TERM),
            "child-dxa",
            {"child-weight-missing", "child-calcium-vitamin-d", "growth"},
            "dxa-child",
        ),
        (
            "17 y, very high dose: still no adult category",
            facts(age=17, taken=LONG_TERM, pulses=(10, 11, 12)),
            "child-dxa",
            {"dxa-none", "child-reading"},  # one DXA paragraph: the order, then Z-scores
            "dxa-child",
        ),
    ],
)
def test_patient_view_child(case, f, summary, details_in, suggestion):
    finding = run(BONE_HEALTH, f)
    assert finding is not None, case
    assert finding.summary == summary
    assert details_in <= set(finding.details)
    assert not set(ADULT_ONLY) & set(finding.details), "adult-only text for a child"
    assert "dxa" not in finding.suggestions
    assert (suggestion in finding.suggestions) if suggestion else not finding.suggestions


@pytest.mark.parametrize(
    ("age", "mg", "detail"),
    [
        (18, 40, "read-under-40"),  # after the DXA order: no DXA on file
        (45, 40, "read-frax-high-dose"),  # FRAX underestimates risk at 30 mg/day or more (KB1 A3)
        (45, 29, "read-frax"),
        (None, 40, "age-unknown"),
    ],
)
def test_adult_and_unknown_age(age, mg, detail):
    finding = run(BONE_HEALTH, facts(age=age, taken=[Taken(ago=200, days=201, mg=mg)]))
    assert finding is not None
    assert detail in finding.details
    assert not set(CHILD_DETAILS) & set(finding.details)


def test_per_kg_dose_beside_mg():
    finding = run(BONE_HEALTH, facts(WEIGHT_32, age=12, taken=LONG_TERM))
    assert finding is not None
    assert finding.facts["current_mg_per_kg"] == "1.25"
    assert finding.facts["dose_mg"] == "40"
    assert finding.facts["child_calcium_mg"] == "1300"


def test_order_child():
    f = facts(WEIGHT_32, age=12, planned=[Planned(days=120, mg=40)])
    finding = run(ORDER_BONE_HEALTH, f)
    assert finding is not None
    assert finding.summary == "dxa-baseline"
    assert {"dxa-baseline", "child-reading", "growth", "child-calcium-vitamin-d"} <= set(
        finding.details
    )
    assert not set(ADULT_ONLY) & set(finding.details)
    assert finding.suggestions == ("dxa-child",)


@pytest.mark.parametrize(
    ("age", "calcium", "vitamin_d"),
    [
        (0, "200 (0-6 months) or 260 (7-12 months)", "400"),
        (1, "700", "600"),
        (3, "700", "600"),
        (4, "1000", "600"),
        (8, "1000", "600"),
        (9, "1300", "600"),
        (17, "1300", "600"),
    ],
)
def test_intakes_by_age_band(age, calcium, vitamin_d):
    assert intake_facts(age, THRESHOLDS) == {
        "child_calcium_mg": calcium,
        "child_vitamin_d_iu": vitamin_d,
    }


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ((), None),
        ((hit("body_weight", "Observation/old", ago=200, value=30, value_unit="kg"),), None),
        ((hit("body_weight", "Observation/lb", ago=5, value=66, value_unit="[lb_av]"),), 29.9),
        ((WEIGHT_32, hit("body_weight", "Observation/new", ago=2, value=33, value_unit="kg")), 33),
        ((hit("body_weight", "Observation/nounit", ago=2, value=33),), None),
    ],
)
def test_latest_weight_within_window(weights, expected):
    w = latest_weight(facts(*weights, age=12), THRESHOLDS)
    assert (round(w.kg, 1) if w else None) == expected


@pytest.mark.parametrize(
    ("age", "kg", "tmp", "dapsone", "atovaquone"),
    [
        (12, 32, "160", "64", "960"),  # the patient: not 100 mg / 1500 mg
        (16, 80, "320", "100", "1500"),  # caps
        (1, 10, "50", "20", "450"),  # 12-23 months: atovaquone 45 mg/kg
        (3, 14, "70", "28", "420"),
    ],
)
def test_pjp_doses_by_weight(age, kg, tmp, dapsone, atovaquone):
    w = latest_weight(
        facts(hit("body_weight", "Observation/w", ago=1, value=kg, value_unit="kg"), age=age),
        THRESHOLDS,
    )
    assert w is not None
    doses = pjp_doses(age, w, THRESHOLDS)
    assert doses is not None
    assert (doses["tmp_mg"], doses["dapsone_mg"], doses["atovaquone_mg"]) == (
        tmp,
        dapsone,
        atovaquone,
    )


def test_no_pjp_dose_for_infants():
    w = latest_weight(
        facts(hit("body_weight", "Observation/w", ago=1, value=7, value_unit="kg"), age=0),
        THRESHOLDS,
    )
    assert w is not None
    assert pjp_doses(0, w, THRESHOLDS) is None


@pytest.mark.parametrize(
    ("age", "kg", "line"),
    [
        (30, None, 20),
        (None, None, 20),
        (12, None, 20),
        (12, 32, 20),
        (3, 8, 16),
        (5, 12, 20),
        (1, 9.5, 19),
    ],
)
def test_live_vaccine_line(age, kg, line):
    hits = [hit("body_weight", "Observation/w", ago=1, value=kg, value_unit="kg")] if kg else []
    assert live_vaccine_line(facts(*hits, age=age), THRESHOLDS)[0] == pytest.approx(line)


HIGH_DOSE = [Taken(ago=40, days=41, mg=40)]  # 40 mg/day for 41 days up to today
SULFA = hit("sulfa_allergy", "AllergyIntolerance/sulfa")
ADULT_PJP = {"tmp-smx", "tmp-smx-renal", "dapsone", "atovaquone"}
CHILD_PJP = {"tmp-smx-child", "dapsone-child", "atovaquone-child"}


@pytest.mark.parametrize(
    ("case", "f", "detail", "suggestions"),
    [
        (
            "12 y, 32 kg",
            facts(WEIGHT_32, age=12, taken=HIGH_DOSE),
            "pjp-child",
            ("tmp-smx-child",),  # dapsone and atovaquone doses named in the detail
        ),
        (
            "12 y, sulfonamide allergy",
            facts(WEIGHT_32, SULFA, age=12, taken=HIGH_DOSE),
            "pjp-child-no-tmp-smx",
            ("atovaquone-child",),  # dapsone named in the detail
        ),
        ("8 y, no weight", facts(age=8, taken=HIGH_DOSE), "pjp-child-weight-missing", ()),
        (
            "8 y, weight too old",
            facts(
                hit("body_weight", "Observation/old", ago=120, value=25, value_unit="kg"),
                age=8,
                taken=HIGH_DOSE,
            ),
            "pjp-child-weight-missing",
            (),
        ),
        (
            "infant",
            facts(
                hit("body_weight", "Observation/w", ago=3, value=7, value_unit="kg"),
                age=0,
                taken=HIGH_DOSE,
            ),
            "pjp-infant",
            (),
        ),
        ("age unknown", facts(WEIGHT_32, age=None, taken=HIGH_DOSE), "pjp-age-unknown", ()),
    ],
)
def test_pjp_child_doses(case, f, detail, suggestions):
    finding = run(INFECTION, f)
    assert finding is not None, case
    assert detail in finding.details
    pjp = tuple(s for s in finding.suggestions if s in ADULT_PJP or s in CHILD_PJP)
    assert pjp == suggestions
    assert not ADULT_PJP & set(finding.suggestions), "adult fixed dose for a child"


def test_child_with_reduced_kidney_function_gets_a_renal_note():
    unit = "mL/min/{1.73_m2}"
    egfr = hit("kidney_function", "Observation/egfr", ago=5, value=25, value_unit=unit, unit=unit)
    finding = run(INFECTION, facts(WEIGHT_32, egfr, age=12, taken=HIGH_DOSE))
    assert finding is not None
    assert "pjp-child-renal" in finding.details
    assert "tmp-smx-renal" not in finding.suggestions


def test_pjp_doses_in_the_finding():
    finding = run(ORDER_INFECTION, facts(WEIGHT_32, age=12, planned=[Planned(days=60, mg=40)]))
    assert finding is not None
    assert (finding.facts["tmp_mg"], finding.facts["dapsone_mg"]) == ("160", "64")
    assert finding.facts["atovaquone_mg"] == "960"
    assert "Observation/wt" in finding.evidence


def test_adult_keeps_fixed_doses():
    finding = run(INFECTION, facts(age=18, taken=HIGH_DOSE))
    assert finding is not None
    assert "tmp-smx" in finding.suggestions
    assert "pjp-default" in finding.details  # adult dapsone and atovaquone doses in the text


MMR = hit("vaccines", "Immunization/mmr", ago=0, live=True, group="mmr")
ZVL = hit("vaccines", "Immunization/zvl", ago=0, live=True, group="zoster-live")


def _kg(kg: float) -> Hit:
    return hit("body_weight", "Observation/w", ago=3, value=kg, value_unit="kg")


@pytest.mark.parametrize(
    ("case", "f", "fires"),
    [
        (
            "3 y, 8 kg, 16 mg/day (2 mg/kg) for 20 days",
            facts(_kg(8), MMR, age=3, taken=[Taken(19, 20, 16)], focus=["Immunization/mmr"]),
            True,
        ),
        (
            "3 y, 8 kg, 15 mg/day (1.9 mg/kg)",
            facts(_kg(8), MMR, age=3, taken=[Taken(19, 20, 15)], focus=["Immunization/mmr"]),
            False,
        ),
        (
            "12 y, 32 kg, 20 mg/day: the fixed line",
            facts(WEIGHT_32, MMR, age=12, taken=[Taken(19, 20, 20)], focus=["Immunization/mmr"]),
            True,
        ),
        (
            "12 y, no weight, 16 mg/day: 20 mg/day line",
            facts(MMR, age=12, taken=[Taken(19, 20, 16)], focus=["Immunization/mmr"]),
            False,
        ),
        (
            "adult 16 mg/day",
            facts(_kg(8), MMR, age=30, taken=[Taken(19, 20, 16)], focus=["Immunization/mmr"]),
            False,
        ),
    ],
)
def test_live_vaccine_child_line(case, f, fires):
    finding = run(LIVE_VACCINE, f)
    assert (finding is not None) == fires, case
    if finding is not None and f.age is not None and f.age < 18:
        assert "child-line" in finding.details


def test_no_recombinant_zoster_offered_under_18():
    f = facts(WEIGHT_32, ZVL, age=16, taken=HIGH_DOSE, focus=["Immunization/zvl"])
    finding = run(LIVE_VACCINE, f)
    assert finding is not None
    assert finding.suggestions == ("remove",)
    assert "zoster-alternative" not in finding.details


def test_infection_card_names_the_child_line():
    finding = run(INFECTION, facts(_kg(8), age=3, taken=[Taken(40, 41, 16)]))
    assert finding is not None
    assert "live-vaccines" in finding.details
    assert finding.facts["live_min_mg"] == "16"


@pytest.mark.parametrize(
    ("age", "zoster", "pneumococcal", "influenza", "detail"),
    [
        (12, False, False, "influenza-child", "pneumococcal-child"),
        (17, False, False, "influenza-child", "vaccines-child"),
        (None, False, False, "influenza-child", "vaccines-age-unknown"),
        (18, True, True, "influenza", "vaccines"),
    ],
)
def test_vaccines_by_age(age, zoster, pneumococcal, influenza, detail):
    # 10 mg/day long-term: below the deferral line, so every due vaccine is ordered now
    finding = run(INFECTION, facts(WEIGHT_32, age=age, taken=[Taken(200, 201, 10)]))
    assert finding is not None
    assert ("zoster" in finding.suggestions) == zoster
    assert ("pneumococcal" in finding.suggestions) == pneumococcal
    assert influenza in finding.suggestions
    assert detail in finding.details


def test_child_on_replacement_hydrocortisone_is_information():
    # CAH on hydrocortisone 12 mg/day (3 mg/day prednisone-equivalent): replacement, long-term
    f = facts(
        hit("adrenal_insufficiency", "Condition/cah", cah=True),
        age=9,
        taken=[Taken(200, 201, 3, ingredient="5492")],
    )
    finding = run(BONE_HEALTH, f)
    assert finding is not None
    assert finding.indicator == "info"
    assert "replacement" in finding.details
    assert "child-reading" in finding.details
