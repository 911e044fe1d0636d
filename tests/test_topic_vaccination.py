"""Vaccines during glucocorticoid therapy: recombinant zoster and pneumococcal series (ACIP),
deferral of non-live vaccines other than influenza at 20 mg/day or more (ACR 2022), pregnancy
(topics/vaccination.py, and through the infection kinds)."""

from __future__ import annotations

from datetime import date

import pytest

from cds_service.facts import Hit
from cds_service.topics.infection import INFECTION, ORDER_INFECTION
from cds_service.topics.vaccination import (
    defer_until,
    plan_vaccines,
    pneumococcal_need,
    zoster_need,
)
from tests.topic_support import THRESHOLDS, Planned, Taken, exposure, facts, hit, run

FLU = hit("vaccines", "Immunization/flu", ago=40, group="influenza")
PCV20 = hit("vaccines", "Immunization/pcv20", ago=300, group="pneumococcal", product="pcv20")


def rzv(ref: str, ago: int) -> Hit:
    return hit("vaccines", f"Immunization/{ref}", ago=ago, group="zoster-recombinant")


def pneumo(ref: str, ago: int, product: str) -> Hit:
    return hit("vaccines", f"Immunization/{ref}", ago=ago, group="pneumococcal", product=product)


@pytest.mark.parametrize(
    ("case", "doses", "suggestion"),
    [
        ("none", (), "zoster"),
        ("one dose 60 days ago: dose 2", (rzv("a", 60),), "zoster-dose-2"),
        ("one dose 10 days ago: dose 2 not due yet", (rzv("a", 10),), None),
        ("two doses 60 days apart: complete", (rzv("a", 120), rzv("b", 60)), None),
        ("two doses 10 days apart: the second does not count", (rzv("a", 100), rzv("b", 90)), "zoster-dose-2"),
        ("a third dose after the early one: complete", (rzv("a", 100), rzv("b", 90), rzv("c", 50)), None),
        ("dose 1 three years ago: dose 2, no restart", (rzv("a", 1100),), "zoster-dose-2"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_recombinant_zoster_series(
    case: str, doses: tuple[Hit, ...], suggestion: str | None
) -> None:
    need, _last = zoster_need(facts(*doses), THRESHOLDS)
    assert (need.suggestion if need else None) == suggestion, case


def test_an_open_zoster_order_is_not_suggested_again() -> None:
    ordered = hit("vaccines", "MedicationRequest/rzv", ago=3, group="zoster-recombinant")
    assert zoster_need(facts(ordered), THRESHOLDS) == (None, None)
    drafted = hit(
        "vaccines", "Immunization/draft", ago=0, group="zoster-recombinant", result="pending"
    )
    assert zoster_need(facts(drafted), THRESHOLDS) == (None, None)


@pytest.mark.parametrize(
    ("case", "doses", "suggestion", "detail"),
    [
        ("none", (), "pneumococcal", None),
        ("PCV20", (pneumo("a", 300, "pcv20"),), None, None),
        ("PCV21", (pneumo("a", 300, "pcv21"),), None, None),
        ("PPSV23 alone (2019)", (pneumo("a", 2600, "ppsv23"),), "pneumococcal", "pneumococcal-complete"),
        ("PCV13 alone", (pneumo("a", 900, "pcv13"),), "pneumococcal", "pneumococcal-complete"),
        ("PCV15 100 days ago: PPSV23", (pneumo("a", 100, "pcv15"),), "pneumococcal-ppsv23", "pneumococcal-ppsv23"),
        ("PCV15 30 days ago: PPSV23 not due yet", (pneumo("a", 30, "pcv15"),), None, None),
        ("PCV15 then PPSV23 60 days later", (pneumo("a", 200, "pcv15"), pneumo("b", 140, "ppsv23")), None, None),
        ("PCV15 then PPSV23 too early", (pneumo("a", 200, "pcv15"), pneumo("b", 180, "ppsv23")), "pneumococcal-ppsv23", "pneumococcal-ppsv23"),
        ("unspecified product: check it first", (pneumo("a", 300, "unspecified"),), None, "pneumococcal-verify"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_pneumococcal_series(
    case: str, doses: tuple[Hit, ...], suggestion: str | None, detail: str | None
) -> None:
    need = pneumococcal_need(facts(*doses), THRESHOLDS)
    assert (need.suggestion if need else None) == suggestion, case
    assert (need.detail if need else None) == detail, case


def test_at_20_mg_non_live_vaccines_wait_but_influenza_does_not() -> None:
    plan = plan_vaccines(facts(), THRESHOLDS, dose_mg=20, pregnant=False)
    assert plan.suggestions == ["influenza"]
    assert [n.suggestion for n in plan.later] == ["zoster", "pneumococcal"]
    assert plan.details == ["vaccines", "vaccines-defer"]
    assert (
        plan.values["vaccines_later"]
        == "recombinant zoster (2 doses), pneumococcal (PCV20 or PCV21)"
    )
    below = plan_vaccines(facts(), THRESHOLDS, dose_mg=19.5, pregnant=False)
    assert below.suggestions == ["zoster", "pneumococcal", "influenza"]
    assert not below.later


def test_the_text_says_when_a_planned_taper_brings_the_dose_below_20() -> None:
    # Two planned orders from today, summed: 20 + 10 = 30 mg for 10 days, then 10 mg.
    f = facts(planned=[Planned(10, 20), Planned(30, 10)])
    assert defer_until(f.exposure, 20) == date(2026, 12, 4)
    plan = plan_vaccines(f, THRESHOLDS, dose_mg=30, pregnant=False)
    assert "vaccines-defer-until" in plan.details
    assert plan.values["defer_until"] == "2026-12-04"
    assert defer_until(exposure(planned=[Planned(30, 40)]), 20) is None  # no step below 20


def test_pregnancy_offers_no_recombinant_zoster_vaccine() -> None:
    plan = plan_vaccines(facts(), THRESHOLDS, dose_mg=5, pregnant=True)
    assert "zoster" not in plan.suggestions
    assert "vaccines-pregnancy" in plan.details


@pytest.mark.parametrize(
    ("age", "detail"),
    [
        (37, "vaccines-pregnancy"),  # "give recombinant zoster after delivery"
        (17, "vaccines-pregnancy-child"),  # no RZV under 18, after delivery either
        (None, "vaccines-pregnancy-child"),
    ],
)
def test_pregnancy_names_zoster_after_delivery_only_for_adults(
    age: int | None, detail: str
) -> None:
    plan = plan_vaccines(facts(age=age), THRESHOLDS, dose_mg=5, pregnant=True)
    pregnancy = [d for d in plan.details if d.startswith("vaccines-pregnancy")]
    assert pregnancy == [detail]


def test_pregnant_teen_on_a_high_dose_gets_one_live_vaccine_paragraph_without_zoster() -> None:
    f = facts(hit("pregnancy", "Condition/preg"), age=17, taken=[Taken(ago=60, days=61, mg=30)])
    finding = run(INFECTION, f)
    assert finding is not None
    assert "live-vaccines-pregnancy-child" in finding.details
    assert not {"live-vaccines-pregnancy", "vaccines-pregnancy", "live-vaccines"} & set(
        finding.details
    )


# ---------------------------------------------------------------------------------------------
# Through the infection kinds


def screened() -> tuple[Hit, ...]:
    return (
        hit("pjp_drugs", "MedicationRequest/atq", agent="atovaquone"),
        hit("tb_tests", "Observation/igra", result="negative"),
        hit("hbv_tests", "Observation/s", result="negative", marker="hbsag"),
        hit("hbv_tests", "Observation/c", result="negative", marker="anti-hbc"),
        hit("hbv_tests", "Observation/b", result="negative", marker="anti-hbs"),
    )


def test_at_30_mg_with_only_deferred_vaccines_the_card_says_later() -> None:
    finding = run(INFECTION, facts(*screened(), FLU, taken=[Taken(60, 61, 30)]))
    assert finding is not None
    assert finding.summary == "vaccines-later"
    assert finding.suggestions == ()
    assert "vaccines-defer" in finding.details
    assert "vaccines" not in finding.details  # nothing to order now


def test_one_rzv_dose_is_not_a_complete_series() -> None:
    f = facts(*screened(), FLU, PCV20, rzv("a", 90), taken=[Taken(200, 201, 5)])
    finding = run(INFECTION, f)
    assert finding is not None
    assert finding.summary == "vaccines"
    assert finding.suggestions == ("zoster-dose-2",)
    assert finding.facts["rzv_last"] == "2026-08-26"


def test_pregnant_on_20_mg_gets_no_zoster_vaccine() -> None:
    """The issue's case: pregnant, 20 mg/day: recombinant zoster vaccine was offered."""
    f = facts(
        *screened(), PCV20, hit("pregnancy", "Condition/preg", ago=90), taken=[Taken(60, 61, 20)]
    )
    finding = run(INFECTION, f)
    assert finding is not None
    # inactivated influenza without the high-dose or adjuvanted preference (clinical review 3f)
    assert finding.suggestions == ("influenza-pregnancy",)
    assert finding.facts["vaccines_due"] == "inactivated influenza"
    # one live-vaccine paragraph for pregnancy and the dose (clinical review 2d)
    assert "live-vaccines-pregnancy" in finding.details
    assert not {"vaccines-pregnancy", "live-vaccines"} & set(finding.details)
    assert "recombinant zoster" not in finding.facts["vaccines_later"]


def test_order_hook_defers_by_the_dose_being_ordered() -> None:
    f = facts(*screened(), FLU, planned=[Planned(56, 40)])
    finding = run(ORDER_INFECTION, f)
    assert finding is not None
    assert finding.summary == "vaccines-later"
    assert not {"zoster", "pneumococcal"} & set(finding.suggestions)


@pytest.mark.parametrize(
    ("case", "extra", "rest"),
    [
        ("only dose 2 waits: its plan line alone", (PCV20,), None),
        (
            "dose 2 and pneumococcal wait: the list keeps the rest",
            (),
            "pneumococcal (PCV20 or PCV21)",
        ),
    ],
)
def test_a_deferred_rzv_dose_2_is_planned_not_given(
    case: str, extra: tuple[Hit, ...], rest: str | None
) -> None:
    """Clinical review 2, finding 3: at 40 mg/day dose 2 waits, so the card has its plan line
    ("do not restart the series") and not "Give recombinant zoster dose 2"."""
    f = facts(*screened(), FLU, rzv("a", 90), *extra, planned=[Planned(56, 40)])
    finding = run(ORDER_INFECTION, f)
    assert finding is not None, case
    assert "zoster-dose-2-later" in finding.details, case
    assert "zoster-dose-2" not in finding.details, case
    assert "zoster-dose-2" not in finding.suggestions, case
    assert ("vaccines-defer" in finding.details) is (rest is not None), case
    assert finding.facts["vaccines_later_rest"] == (rest or "none"), case
    assert "recombinant zoster dose 2" in finding.facts["vaccines_later"], case
