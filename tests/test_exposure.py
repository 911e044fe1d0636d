"""Table-driven tests for the glucocorticoid exposure engine (synthetic data, now at +04:00)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tests.test_exposure_support import (
    ATC,
    PRED,
    TODAY,
    admin,
    code,
    day,
    dispense,
    dose,
    knowledge,
    medication,
    req,
    run,
    stmt,
    text,
)


def only_course(summary: Any) -> Any:
    assert len(summary.courses) == 1, summary.courses
    return summary.courses[0]


# ------------------------------------------------------------------ drug identification

IDENTIFY = [
    ("product code x tablets", code("312615"), dose(2, "{tbl}"), "8640", 40.0),
    ("ingredient code, mg", PRED, dose(20), "8640", 20.0),
    ("ATC code", code("H02AB07", ATC), dose(10), "8640", 10.0),
    ("PIN maps to IN", code("9990001"), dose(8), "6902", 10.0),
    ("text methylprednisolone not prednisolone", text("methylprednisolone 4 mg tabs"), dose(4), "6902", 5.0),
    ("text prednisolone", text("Prednisolone oral"), dose(10), "8638", 10.0),
    ("text hydrocortisone not cortisone", text("hydrocortisone"), dose(20), "5492", 5.0),
    ("text cortisone acetate", text("cortisone acetate"), dose(25), "2878", 5.0),
    ("RxNorm name, count unit", text("prednisone 20 MG Oral Tablet"), dose(2, "TAB"), "8640", 40.0),
    ("local code with RxNorm display", code("L-77", "urn:local", "dexamethasone 4 MG Oral Tablet"), dose(1, "tablet"), "3264", 80 / 3),
    ("pack name", text("{21 (methylprednisolone 4 MG Oral Tablet) } Pack"), dose(2, "{tbl}"), "6902", 10.0),
    ("pack product code", code("762675"), dose(6, "{tbl}"), "6902", 30.0),
    ("syringe name, mL", text("1 ML methylprednisolone acetate 40 MG/ML Injectable Suspension"), dose(1, "mL"), "6902", 50.0),
    ("syringe name, count", text("1 ML methylprednisolone acetate 40 MG/ML Injectable Suspension"), dose(1, "1"), "6902", 50.0),
    ("solution product, mL", code("205301"), dose(4, "mL"), "8640", 20.0),
    ("brand suffix", text("methylprednisolone 16 MG Oral Tablet [Medrol]"), dose(1, "{tbl}"), "6902", 20.0),
]  # fmt: skip


@pytest.mark.parametrize(("label", "med", "dosage", "ingredient", "peq"), IDENTIFY)
def test_identify_drug(label: str, med: dict[str, Any], dosage: dict[str, Any], ingredient: str, peq: float) -> None:  # fmt: skip
    course = only_course(
        run([req(med=med, dosages=[{**dose(days=10), "doseAndRate": dosage["doseAndRate"]}])])
    )
    assert course.ingredient == ingredient, label
    assert course.daily_peq_mg == pytest.approx(peq), label


@pytest.mark.parametrize(
    ("label", "kwargs", "meds", "peq", "name"),
    [
        (
            "bundle Medication with strength",
            {"medicationReference": {"reference": "Medication/m1"}},
            {
                "Medication/m1": medication(
                    "m1",
                    code=PRED,
                    ingredient=[
                        {
                            "itemCodeableConcept": PRED,
                            "strength": {
                                "numerator": {"value": 5, "code": "mg"},
                                "denominator": {"value": 1, "code": "TAB"},
                            },
                        }
                    ],
                )
            },
            10.0,
            "prednisone",
        ),
        (
            "absolute reference",
            {"medicationReference": {"reference": "https://ehr.example/fhir/Medication/m2"}},
            {"Medication/m2": medication("m2", code=text("prednisone 5 MG Oral Tablet"))},
            10.0,
            "prednisone",
        ),
        (
            "contained Medication with mL strength",
            {
                "medicationReference": {"reference": "#c1"},
                "contained": [
                    {
                        "resourceType": "Medication",
                        "id": "c1",
                        "code": text("Pediapred liquid"),
                        "ingredient": [
                            {
                                "itemCodeableConcept": code("8638"),
                                "strength": {
                                    "numerator": {"value": 5, "code": "mg"},
                                    "denominator": {"value": 1, "code": "mL"},
                                },
                            }
                        ],
                    }
                ],
            },
            {},
            10.0,
            "prednisolone",
        ),
    ],
)
def test_identify_medication_reference(label: str, kwargs: dict[str, Any], meds: Any, peq: float, name: str) -> None:  # fmt: skip
    unit = "mL" if "contained" in kwargs else "{tbl}"
    course = only_course(run([req(dosages=[dose(2, unit, days=5)], **kwargs)], medications=meds))
    assert course.daily_peq_mg == pytest.approx(peq), label
    assert course.ingredient_name == name


EXCLUDED = [
    ("budesonide by code", {"med": code("19831")}),
    ("fludrocortisone product", {"med": code("313979")}),
    ("fludrocortisone by text", {"med": text("fludrocortisone 0.1 mg tablet")}),
    ("dental paste product", {"med": code("1085728")}),
    ("hydrocortisone cream by text", {"med": text("hydrocortisone 1% cream")}),
    ("dexamethasone eye drops", {"med": text("dexamethasone 0.1% eye drops")}),
    ("inhaled route", {"dosages": [dose(route="Inhalation")]}),
    ("intra-articular triamcinolone", {"med": code("10759"), "dosages": [dose(40, route="Intra-articular")]}),
    ("nasal form on Medication", {"medicationReference": {"reference": "Medication/n1"}}),
    ("ophthalmic route", {"dosages": [dose(route="Ophthalmic")]}),
    ("nasal route coding display", {"dosages": [{**dose(), "route": {"coding": [{"system": "urn:local", "code": "NAS", "display": "Nasal"}]}}]}),
    ("nasal site", {"dosages": [{**dose(), "site": {"text": "Nasal cavity"}}]}),
    ("inhale method", {"dosages": [{**dose(), "method": {"text": "Inhalation"}}]}),
    ("ophthalmic product text", {"med": text("prednisolone acetate 1% ophthalmic suspension")}),
]  # fmt: skip


@pytest.mark.parametrize(("label", "kwargs"), EXCLUDED)
def test_excluded_products_and_routes(label: str, kwargs: dict[str, Any]) -> None:
    meds = {"Medication/n1": medication("n1", code=code("8640"), form=text("Nasal Spray"))}
    summary = run([req(**kwargs)], medications=meds)
    assert summary.excluded_sources == ("MedicationRequest/o1",), label
    assert summary.courses == ()
    assert summary.daily == {}


INSTRUCTION_WORDS = [
    ("text mentions the eyes", {"text": "60 mg by mouth daily; report eye pain or blurred vision"}),
    ("patientInstruction eye", {"patientInstruction": "For eye inflammation (uveitis). Take in the morning."}),
    ("patientInstruction nasal", {"patientInstruction": "Keep using your nasal spray as well."}),
    ("additionalInstruction topical", {"additionalInstruction": [{"text": "Do not apply topical steroids at the same time"}]}),
    ("text inhaled", {"text": "Continue inhaled fluticasone separately"}),
]  # fmt: skip


@pytest.mark.parametrize(("label", "extra"), INSTRUCTION_WORDS)
def test_instruction_words_never_exclude(label: str, extra: dict[str, Any]) -> None:
    summary = run([req(dosages=[{**dose(60, route="Oral", days=10), **extra}], note=[{"text": "nasal polyps"}])])  # fmt: skip
    assert summary.excluded_sources == (), label
    assert only_course(summary).daily_peq_mg == 60.0, label


@pytest.mark.parametrize(
    "med", [text("amoxicillin 500 mg"), text("albuterol inhaler"), code("723")]
)
def test_non_glucocorticoids_are_ignored(med: dict[str, Any]) -> None:
    summary = run([req(med=med)])
    assert summary.courses == ()
    assert summary.excluded_sources == ()
    assert summary.unknown_dose_sources() == ()


# ------------------------------------------------------------------ dose

DOSES = [
    ("grams", dose(0.02, "g"), 20.0, False),
    ("micrograms ug", dose(20000, "ug"), 20.0, False),
    ("micrograms mcg", dose(20000, "mcg"), 20.0, False),
    ("spelled milligrams", dose(20, "milligrams"), 20.0, False),
    ("count {tbl} x product strength", {**dose(4, "{tbl}"), "_med": code("312617")}, 20.0, False),
    ("count TAB", {**dose(4, "TAB"), "_med": code("312617")}, 20.0, False),
    ("count 1", {**dose(4, "1"), "_med": code("312617")}, 20.0, False),
    ("mL x mg/mL", {**dose(4, "mL"), "_med": code("205301")}, 20.0, False),
    ("dose range uses high", {"doseAndRate": [{"doseRange": {"low": {"value": 1, "code": "{tbl}"}, "high": {"value": 2, "code": "{tbl}"}}}], "_med": code("312615")}, 40.0, True),
    ("ordered beats calculated", {"doseAndRate": [
        {"type": {"coding": [{"code": "calculated"}]}, "doseQuantity": {"value": 50, "code": "mg"}},
        {"type": {"coding": [{"code": "ordered"}]}, "doseQuantity": {"value": 20, "code": "mg"}},
    ]}, 20.0, False),
    ("weight based is unknown", dose(1, "mg/kg"), None, False),
    ("count without strength is unknown", dose(2, "{tbl}"), None, False),
    ("no dose at all is unknown", {}, None, False),
]  # fmt: skip


@pytest.mark.parametrize(("label", "dosage", "peq", "dose_range"), DOSES)
def test_dose_units(
    label: str, dosage: dict[str, Any], peq: float | None, dose_range: bool
) -> None:
    dosage = dict(dosage)
    med = dosage.pop("_med", PRED)
    dosage["timing"] = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "boundsDuration": {"value": 3, "code": "d"}}}  # fmt: skip
    summary = run([req(med=med, dosages=[dosage])])
    course = only_course(summary)
    assert course.daily_peq_mg == (pytest.approx(peq) if peq is not None else None), label
    assert course.dose_range is dose_range
    if peq is None:
        assert summary.unknown_dose_sources() == ("MedicationRequest/o1",)
        assert summary.daily == {}
    else:
        assert summary.cumulative_peq_mg() == pytest.approx(3 * peq)


EXACT_LINE = [
    ("deflazacort 36 mg", "22396", 36.0, 1),
    ("betamethasone 3.6 mg", "1514", 3.6, 1),
    ("dexamethasone 4.5 mg", "3264", 4.5, 1),
    ("dexamethasone 1.5 mg three times a day", "3264", 1.5, 3),
    ("methylprednisolone 12 mg twice a day", "6902", 12.0, 2),
    ("hydrocortisone 40 mg three times a day", "5492", 40.0, 3),
    ("cortisone 50 mg three times a day", "2878", 50.0, 3),
]


@pytest.mark.parametrize(("label", "ingredient", "mg", "per_day"), EXACT_LINE)
def test_equivalent_of_30_mg_is_exactly_30(
    label: str, ingredient: str, mg: float, per_day: int
) -> None:
    summary = run([req(med=code(ingredient), dosages=[dose(mg, freq=per_day, period=1, days=20)])])
    assert only_course(summary).daily_peq_mg == 30.0, label
    assert summary.longest_run_at_or_above(30) == 20, label
    assert summary.cumulative_peq_mg() == 20 * 30.0, label


# ------------------------------------------------------------------ frequency

FREQUENCIES = [
    ("twice a day", dose(10, freq=2, period=1), 20.0, False),
    ("every 12 hours", dose(10, freq=1, period=12, period_unit="h"), 20.0, False),
    ("frequencyMax", dose(10, freq=2, period=1, frequencyMax=3), 30.0, False),
    ("periodMax ignored (shorter interval)", dose(10, freq=1, period=8, period_unit="h", periodMax=12), 30.0, False),
    ("BID code", dose(10, timing_code="BID"), 20.0, False),
    ("TID code", dose(10, timing_code="TID"), 30.0, False),
    ("QID code", dose(5, timing_code="QID"), 20.0, False),
    ("QD code", dose(20, timing_code="QD"), 20.0, False),
    ("AM code", dose(20, timing_code="AM"), 20.0, False),
    ("Q6H code", dose(5, timing_code="Q6H"), 20.0, False),
    ("Q8H code", dose(5, timing_code="Q8H"), 15.0, False),
    ("Q4H code", dose(5, timing_code="Q4H"), 30.0, False),
    ("Q12H code", dose(10, timing_code="Q12H"), 20.0, False),
    ("QOD code averaged", dose(40, timing_code="QOD"), 20.0, True),
    ("every other day averaged", dose(40, freq=1, period=2), 20.0, True),
    ("weekly code averaged", dose(70, timing_code="WK"), 10.0, False),
    ("weekly period averaged", dose(70, freq=1, period=1, period_unit="wk"), 10.0, False),
    ("two times, when", dose(10, when=["MORN", "EVE"]), 20.0, False),
    ("no timing: once daily", {"doseAndRate": [{"doseQuantity": {"value": 15, "code": "mg"}}]}, 15.0, False),
]  # fmt: skip


@pytest.mark.parametrize(("label", "dosage", "peq", "alternate"), FREQUENCIES)
def test_frequency(label: str, dosage: dict[str, Any], peq: float, alternate: bool) -> None:
    course = only_course(run([req(dosages=[dosage], status="active", authored=day(-5))]))
    assert course.daily_peq_mg == pytest.approx(peq), label
    assert course.alternate_day is alternate


def test_day_of_week_counts_only_listed_days() -> None:
    # 2024-06-30 is a Sunday. Mon/Wed/Fri, 10 mg once on those days, 14 days.
    summary = run([req(dosages=[dose(10, days=14, dayOfWeek=["mon", "wed", "fri"])], authored="2024-06-03")])  # fmt: skip
    assert sorted(summary.daily) == [date(2024, 6, d) for d in (3, 5, 7, 10, 12, 14)]
    assert set(summary.daily.values()) == {10.0}


def test_weekly_on_a_weekday_puts_the_dose_on_that_day() -> None:
    dosage = dose(30, freq=1, period=1, period_unit="wk", dayOfWeek=["mon"], days=14)
    summary = run([req(dosages=[dosage], authored="2024-06-03")])
    assert summary.daily == {date(2024, 6, 3): 30.0, date(2024, 6, 10): 30.0}


# ------------------------------------------------------------------ duration

DURATIONS = [
    ("boundsPeriod", {"dosages": [dose(start="2024-06-01", end="2024-06-10")]}, "2024-06-01", "2024-06-10"),
    ("boundsDuration days", {"dosages": [dose(days=10)]}, "2024-06-01", "2024-06-10"),
    ("boundsDuration weeks", {"dosages": [dose(days=2, days_unit="wk")]}, "2024-06-01", "2024-06-14"),
    ("repeat.count with BID", {"dosages": [dose(10, timing_code="BID", count=10)]}, "2024-06-01", "2024-06-05"),
    ("expectedSupplyDuration x fills", {"dosages": [dose()], "dispenseRequest": {"expectedSupplyDuration": {"value": 5, "code": "d"}, "numberOfRepeatsAllowed": 1}}, "2024-06-01", "2024-06-10"),
    ("quantity / units per day", {"med": code("312615"), "dosages": [dose(1, "{tbl}")], "dispenseRequest": {"quantity": {"value": 14, "code": "{tbl}"}}}, "2024-06-01", "2024-06-14"),
    ("quantity with BID", {"med": code("312617"), "dosages": [dose(1, "{tbl}", timing_code="BID")], "dispenseRequest": {"quantity": {"value": 20, "code": "{tbl}"}}}, "2024-06-01", "2024-06-10"),
    ("no duration, completed: one day", {"dosages": [dose()]}, "2024-06-01", "2024-06-01"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "kwargs", "start", "end"), DURATIONS)
def test_request_duration(label: str, kwargs: dict[str, Any], start: str, end: str) -> None:
    course = only_course(run([req(**kwargs)]))
    assert (course.start.isoformat(), course.end.isoformat()) == (start, end), label


def test_statement_dispense_administration_dates() -> None:
    summary = run(
        [
            stmt(effectivePeriod={"start": "2024-05-01", "end": "2024-05-03"}),
            dispense(handed="2024-04-01", days=5, qty=5),
            admin(when="2024-03-01T23:30:00+00:00"),  # 2024-03-02 at +04:00
        ]
    )
    spans = {c.source: (c.start.isoformat(), c.end.isoformat()) for c in summary.courses}
    assert spans == {
        "MedicationStatement/s1": ("2024-05-01", "2024-05-03"),
        "MedicationDispense/d1": ("2024-04-01", "2024-04-05"),
        "MedicationAdministration/a1": ("2024-03-02", "2024-03-02"),
    }
    assert summary.daily[date(2024, 4, 3)] == 20.0  # 30 tabs x 20 mg / 30 days... 5 x 20 / 5


def test_dispense_without_sig_spreads_supply() -> None:
    summary = run([dispense(handed=day(-9), days=10, qty=10, med=code("312617"))])
    assert summary.current_daily_peq_mg() == 5.0
    assert summary.cumulative_peq_mg() == 50.0


def test_administration_period_over_several_days_is_spread() -> None:
    ma = admin(when="", mg=300, route="oral", effectivePeriod={"start": "2024-06-01", "end": "2024-06-03"})  # fmt: skip
    summary = run([ma])
    assert summary.daily == {date(2024, 6, d): 125.0 for d in (1, 2, 3)}


def test_infusion_crossing_midnight_is_one_day() -> None:
    ma = admin(when="", mg=1000, effectivePeriod={"start": "2024-06-01T23:30:00+04:00", "end": "2024-06-02T00:30:00+04:00"})  # fmt: skip
    summary = run([ma])
    assert summary.daily == {date(2024, 6, 1): 1250.0}


# ------------------------------------------------------------------ tapers


def test_taper_sequences_are_consecutive() -> None:
    taper = [dose(40, days=2, seq=1), dose(30, days=2, seq=2), dose(20, days=3, seq=3)]
    summary = run([req(dosages=taper)])
    assert [summary.daily[date(2024, 6, d)] for d in range(1, 8)] == [40, 40, 30, 30, 20, 20, 20]
    assert len(summary.courses) == 3
    assert date(2024, 6, 8) not in summary.daily


def test_same_sequence_is_concurrent() -> None:
    summary = run([req(dosages=[dose(10, days=3, seq=1), dose(5, days=3, seq=1)])])
    assert summary.daily == {date(2024, 6, d): 15.0 for d in (1, 2, 3)}


def test_unsequenced_steps_with_durations_are_consecutive() -> None:
    summary = run([req(dosages=[dose(40, days=1), dose(20, days=1)])])
    assert summary.daily == {date(2024, 6, 1): 40.0, date(2024, 6, 2): 20.0}


def test_entries_with_own_bounds_use_their_dates() -> None:
    taper = [dose(40, start="2024-06-10", end="2024-06-11"), dose(10, start="2024-06-01", end="2024-06-02")]  # fmt: skip
    summary = run([req(dosages=taper)])
    assert summary.daily == {
        date(2024, 6, 1): 10.0, date(2024, 6, 2): 10.0,
        date(2024, 6, 10): 40.0, date(2024, 6, 11): 40.0,
    }  # fmt: skip


# ------------------------------------------------------------------ status


@pytest.mark.parametrize(
    "resource",
    [
        req(status="entered-in-error"),
        req(status="cancelled"),
        req(status="draft"),
        req(intent="proposal"),
        req(doNotPerform=True),
        stmt(status="not-taken", effectiveDateTime="2024-06-01"),
        stmt(status="entered-in-error", effectiveDateTime="2024-06-01"),
        admin(status="not-done"),
        admin(status="entered-in-error"),
        dispense(status="cancelled"),
        dispense(status="declined"),
    ],
    ids=lambda r: f"{r.get_resource_type()}-{r.status}",
)
def test_ignored_statuses(resource: Any) -> None:
    summary = run([resource])
    assert summary.courses == ()
    assert summary.daily == {}
    assert summary.unknown_dose_sources() == ()


STATUS = [
    ("active open, recent: to today", "active", day(-10), [dose()], day(-10), day(0), 11),
    ("active open, old: still to today", "active", day(-200), [dose()], day(-200), day(0), 201),
    ("active with future end: past part", "active", day(-5), [dose(days=20)], day(-5), day(0), 6),
    ("on-hold: days before today", "on-hold", day(-10), [dose()], day(-10), day(-1), 10),
    ("completed: planned end", "completed", day(-30), [dose(days=10)], day(-30), day(-21), 10),
    ("stopped: planned end capped at today", "stopped", day(-5), [dose(days=30)], day(-5), day(0), 6),
    ("completed without duration: last evidence", "completed", day(-30), [dose()], day(-30), day(-30), 1),
]  # fmt: skip


@pytest.mark.parametrize(("label", "status", "authored", "dosages", "start", "end", "days"), STATUS)
def test_status_policy(label: str, status: str, authored: str, dosages: Any, start: str, end: str, days: int) -> None:  # fmt: skip
    summary = run([req(status=status, authored=authored, dosages=dosages)])
    actual = [c for c in summary.courses if not c.planned]
    assert len(actual) == 1, label
    assert (actual[0].start.isoformat(), actual[0].end.isoformat()) == (start, end), label
    assert summary.days_at_or_above(20) == days, label


def test_active_order_future_part_is_planned() -> None:
    summary = run([req(status="active", authored=day(-5), dosages=[dose(days=100)])])
    planned = [c for c in summary.courses if c.planned]
    assert len(planned) == 1
    assert planned[0].start == TODAY + timedelta(days=1)
    assert planned[0].end.isoformat() == day(94)
    assert summary.planned_days_at_or_above(20) == 95  # today .. day 94
    assert summary.current_run_at_or_above(20, include_planned=False) == 6
    assert summary.current_run_at_or_above(20, include_planned=True) == 6 + 94


def test_linked_dispense_confirms_an_old_open_order() -> None:
    order = req(status="active", authored=day(-200), dosages=[dose()])
    fill = dispense(handed=day(-20), days=None, qty=None, authorizingPrescription=[{"reference": "MedicationRequest/o1"}])  # fmt: skip
    summary = run([order, fill])
    assert summary.current_daily_peq_mg() == 20.0
    assert summary.longest_run_at_or_above(20) == 201
    course = next(c for c in summary.courses if c.source == "MedicationRequest/o1")
    assert (course.ordered_on, course.last_evidence_on) == (
        TODAY - timedelta(days=200),
        TODAY - timedelta(days=20),
    )
    assert not course.unconfirmed_current


def test_intended_statement_is_planned_only() -> None:
    summary = run([stmt(status="intended", effectivePeriod={"start": day(2), "end": day(11)})])
    assert summary.daily == {}
    assert summary.planned_days_at_or_above(20) == 10


# ------------------------------------------------------------------ missing dates

MISSING = [
    ("boundsPeriod start", {"authored": None, "dosages": [dose(start="2024-06-01", days=None)], "status": "active"}, "2024-06-01", False),
    ("validityPeriod start", {"authored": None, "status": "active", "dispenseRequest": {"validityPeriod": {"start": "2024-06-02"}}}, "2024-06-02", False),
    ("meta.lastUpdated is weak", {"authored": None, "status": "active", "meta": {"lastUpdated": "2024-06-03T01:00:00+00:00"}}, "2024-06-03", True),
    ("partial authoredOn is weak", {"authored": "2024-06", "status": "active"}, "2024-06-01", True),
    ("nothing at all, active: today", {"authored": None, "status": "active"}, day(0), True),
]  # fmt: skip


@pytest.mark.parametrize(("label", "kwargs", "start", "undated"), MISSING)
def test_missing_dates(label: str, kwargs: dict[str, Any], start: str, undated: bool) -> None:
    summary = run([req(**kwargs)])
    course = next(c for c in summary.courses if not c.planned)
    assert course.start.isoformat() == start, label
    assert course.undated is undated, label


def test_statement_date_asserted_is_weak() -> None:
    course = only_course(run([stmt(dateAsserted="2024-06-20")]))
    assert course.start == date(2024, 6, 20)
    assert course.undated


def test_undated_ended_record_is_reported_not_placed() -> None:
    summary = run([req(authored=None, status="completed"), stmt(status="completed")])
    assert summary.courses == ()
    assert summary.daily == {}
    assert summary.unknown_dose_sources() == ("MedicationRequest/o1", "MedicationStatement/s1")


def test_datetime_is_read_in_the_offset_of_now() -> None:
    # 22:30 UTC on the 29th is 02:30 on the 30th at +04:00.
    course = only_course(run([req(authored="2024-06-29T22:30:00+00:00", dosages=[dose(days=1)])]))
    assert course.start == date(2024, 6, 30)


def test_source_for_resource_without_id() -> None:
    summary = run([req(rid=None)])
    assert summary.courses[0].source == "MedicationRequest/#0"


# ------------------------------------------------------------------ dedup

DEDUP = [
    ("statement derivedFrom order", [req(dosages=[dose(days=10)]), stmt(effectivePeriod={"start": "2024-06-01", "end": "2024-06-10"}, derivedFrom=[{"reference": "MedicationRequest/o1"}])], 200.0),
    ("statement basedOn order", [req(dosages=[dose(days=10)]), stmt(effectivePeriod={"start": "2024-06-01", "end": "2024-06-10"}, basedOn=[{"reference": "MedicationRequest/o1"}])], 200.0),
    ("dispense for the order", [req(dosages=[dose(days=10)]), dispense(handed="2024-06-01", days=10, qty=10, authorizingPrescription=[{"reference": "MedicationRequest/o1"}])], 200.0),
    ("administrations for the order add up to it", [req(dosages=[dose(10, timing_code="BID", days=1)]), admin("a1", med=PRED, mg=10, when="2024-06-01", route="oral", request={"reference": "MedicationRequest/o1"}), admin("a2", med=PRED, mg=10, when="2024-06-01", route="oral", request={"reference": "MedicationRequest/o1"})], 20.0),
    ("two concurrent orders are summed", [req("o1", med=code("312617"), dosages=[dose(1, "{tbl}", days=10)]), req("o2", med=code("198144"), dosages=[dose(1, "{tbl}", days=10)])], 60.0),
    ("renewal is not double counted", [req("o1", dosages=[dose(days=20)]), req("o2", authored="2024-06-11", dosages=[dose(10, days=10)], priorPrescription={"reference": "MedicationRequest/o1"})], 300.0),
    ("unlinked statement duplicating an order: max", [req(dosages=[dose(days=10)]), stmt(effectivePeriod={"start": "2024-06-01", "end": "2024-06-10"})], 200.0),
    ("two ingredients add up", [req("o1", dosages=[dose(days=10)]), req("o2", med=code("6902"), dosages=[dose(8, days=10)])], 300.0),
    ("unlinked administrations add up", [admin("a1", mg=500, when="2024-06-01"), admin("a2", mg=500, when="2024-06-01")], 1250.0),
]  # fmt: skip


@pytest.mark.parametrize(("label", "resources", "cumulative"), DEDUP)
def test_dedup(label: str, resources: list[Any], cumulative: float) -> None:
    summary = run(resources)
    assert summary.cumulative_peq_mg() == pytest.approx(cumulative), label
    assert summary.cumulative_peq_mg() == pytest.approx(sum(summary.daily.values()))


# ------------------------------------------------------------------ route, pulses, window


def test_iv_pulses_count_in_full() -> None:
    pulses = [admin(f"a{i}", when=f"2024-06-0{i}", mg=1000) for i in (1, 2, 3)]
    small = admin("a9", when="2024-06-05", mg=40)
    summary = run([*pulses, small])
    assert summary.iv_pulse_days() == tuple(
        (date(2024, 6, i), 1250.0, f"MedicationAdministration/a{i}") for i in (1, 2, 3)
    )
    assert summary.cumulative_peq_mg() == 3 * 1250 + 50
    assert summary.max_daily_peq_mg() == 1250
    assert {c.route for c in summary.courses} == {"iv"}


def test_iv_order_and_its_administration_are_one_pulse() -> None:
    order = req(med=code("6902"), dosages=[dose(1000, days=1, route="IV")])
    given = admin(when="2024-06-01", request={"reference": "MedicationRequest/o1"})
    summary = run([order, given])
    assert len(summary.iv_pulse_days()) == 1
    assert summary.cumulative_peq_mg() == 1250


@pytest.mark.parametrize(
    ("route", "med", "expected"),
    [
        (
            "Intramuscular",
            text("1 ML methylprednisolone acetate 40 MG/ML Injectable Suspension"),
            "im",
        ),
        ("subcutaneous", PRED, "sc"),
        ("Oral", PRED, "oral"),
        ("intravenous", PRED, "iv"),
        (None, code("312615"), "oral"),
        (None, PRED, "unknown-systemic"),
    ],
)
def test_route(route: str | None, med: dict[str, Any], expected: str) -> None:
    course = only_course(run([req(med=med, dosages=[dose(1, "mL", days=1, route=route)])]))
    assert course.route == expected


def test_lookback_window() -> None:
    summary = run([req("old", authored=day(-400), dosages=[dose(days=40)]), req("edge", med=code("6902"), authored=day(-364), dosages=[dose(4, days=1)])])  # fmt: skip
    assert min(summary.daily) == TODAY - timedelta(days=364)
    assert summary.cumulative_peq_mg() == 4 * 20 + 5  # days -364..-361 of "old" + "edge"
    assert all(d >= summary.window_start for d in summary.daily)


# ------------------------------------------------------------------ drafts


def test_draft_order_is_planned_from_today() -> None:
    draft = req("d1", status="draft", authored=None, dosages=[dose(days=100)])
    summary = run([], drafts=[draft])
    assert summary.daily == {}
    assert summary.planned_days_at_or_above(20) == 100
    assert min(summary.planned_daily) == TODAY
    assert only_course(summary).planned
    assert summary.current_run_at_or_above(20, include_planned=True) == 100
    assert summary.current_run_at_or_above(20, include_planned=False) == 0


def test_draft_renewal_replaces_from_tomorrow() -> None:
    current = req("o1", status="active", authored=day(-9), dosages=[dose(days=30)])
    draft = req("d1", status="draft", authored=None, dosages=[dose(5, days=30)], priorPrescription={"reference": "MedicationRequest/o1"})  # fmt: skip
    summary = run([current], drafts=[draft])
    assert summary.current_daily_peq_mg() == 20
    assert summary.planned_daily[TODAY + timedelta(days=1)] == 5


def test_draft_status_in_resources_is_ignored_but_counts_as_draft_order() -> None:
    order = req("d1", status="draft", authored=None, dosages=[dose(days=5)])
    assert run([order]).planned_daily == {}
    assert run([], drafts=[order]).planned_days_at_or_above(20) == 5


# ------------------------------------------------------------------ summary methods


def test_run_and_threshold_methods() -> None:
    resources = [
        req("a", authored=day(-20), dosages=[dose(30, days=5)]),
        req("b", authored=day(-10), dosages=[dose(10, days=3)]),
        req("c", authored=day(-2), status="active", dosages=[dose(25)]),
    ]
    summary = run(resources)
    assert summary.days_at_or_above(20) == 5 + 3
    assert summary.days_at_or_above(5) == 11
    assert summary.longest_run_at_or_above(5) == 5
    assert summary.current_run_at_or_above(25, include_planned=False) == 3
    assert summary.sources_for_days_at_or_above(25) == (
        "MedicationRequest/a",
        "MedicationRequest/c",
    )
    assert summary.sources_for_days_at_or_above(500) == ()
    assert summary.current_daily_peq_mg() == 25
    assert summary.max_daily_peq_mg() == 30


@pytest.mark.parametrize("mg", [0, -1.0])
def test_non_positive_threshold_is_refused(mg: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        run([]).days_at_or_above(mg)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run([], now=datetime(2024, 6, 30, 10, 0))  # noqa: DTZ001


def test_unknown_peq_factor_is_unknown_dose() -> None:
    summary = run(
        [req(med=code("1514"), dosages=[dose(1, days=2)])], know=knowledge({"8640": Fraction(1)})
    )
    assert summary.unknown_dose_sources() == ("MedicationRequest/o1",)
    assert only_course(summary).daily_peq_mg is None


def test_no_clinical_constants_in_engine() -> None:
    root = Path(__file__).resolve().parent.parent / "cds_service"
    files = [
        *sorted((root / "medications").glob("*.py")),
        *sorted((root / "exposure").glob("*.py")),
    ]
    assert len(files) > 2
    for path in files:
        name, source = path.name, path.read_text(encoding="utf-8").lower()
        for banned in ("nlm.nih.gov", "snomed", "loinc.org", "whocc"):
            assert banned not in source, (name, banned)
        assert not re.search(
            r"\b(h02ab\w*|8640|6902|8638|3264|5492|1\.25|6\.67|0\.25)\b", source
        ), name


def test_budesonide_by_text_is_excluded_but_other_drugs_are_not_reported() -> None:
    summary = run([req("b", med=text("Budesonide 9 mg EC capsule")), req("x", med=text("albuterol inhaler"))])  # fmt: skip
    assert summary.excluded_sources == ("MedicationRequest/b",)


def test_huge_duration_is_bounded() -> None:
    summary = run([req(status="active", authored=day(-3), dosages=[dose(days=1e9)])])
    assert summary.current_daily_peq_mg() == 20
    assert summary.planned_days_at_or_above(20) == 366  # today .. today + lookback_days


def test_partial_period_end_is_the_last_day_of_the_month() -> None:
    course = only_course(run([stmt(effectivePeriod={"start": "2024-05", "end": "2024-05"})]))
    assert (course.start, course.end, course.undated) == (date(2024, 5, 1), date(2024, 5, 31), True)
