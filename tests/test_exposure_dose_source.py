"""The dose ladder per course: structured, product strength, weight-based, instruction text,
unknown with a reason. Divided doses are summed per day.

Synthetic data, now at +04:00 (tests/test_exposure_support.py). Orders start on 2024-06-01.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest

from tests.test_exposure_support import (
    PRED,
    admin,
    code,
    day,
    dispense,
    dose,
    knowledge,
    observation,
    req,
    run,
    text,
)

WEIGHT_70 = observation("w1", "29463-7", 70, "kg", "2024-05-20")
HEIGHT_170 = observation("h1", "8302-2", 170, "cm", "2023-01-10")
BSA = math.sqrt(170 * 70 / 3600)
REPEAT = {
    "frequency": 1,
    "period": 1,
    "periodUnit": "d",
    "boundsDuration": {"value": 10, "code": "d"},
}


def structured(value: float, unit: str) -> dict[str, Any]:
    return {
        "doseAndRate": [{"doseQuantity": {"value": value, "unit": unit, "code": unit}}],
        "timing": {"repeat": REPEAT},
    }


def sig(words: str, field: str = "text", **extra: Any) -> dict[str, Any]:
    return {
        field: words,
        "timing": {"repeat": {"boundsDuration": {"value": 10, "code": "d"}}},
        **extra,
    }


LADDER = [
    # label, medication, dosage, observations, PEQ mg/day, dose_source, reason
    ("mg", PRED, structured(20, "mg"), [], 20.0, "structured", None),
    ("g", code("6902"), structured(0.5, "g"), [], 625.0, "structured", None),
    ("micrograms", code("3264"), structured(750, "ug"), [], 5.0, "structured", None),
    ("tablets x strength", code("312617"), structured(2, "{tbl}"), [], 10.0, "product-strength", None),
    ("mL x strength", code("205301"), structured(3, "mL"), [], 15.0, "product-strength", None),
    ("pack x units x strength", code("762675"), structured(1, "{pack}"), [], 105.0, "product-strength", None),
    ("tablets, no strength", PRED, structured(2, "{tbl}"), [], None, "unknown", "strength-missing"),
    ("puffs", PRED, structured(2, "{puff}"), [], None, "unknown", "unit-unknown"),
    ("zero mg", PRED, structured(0, "mg"), [], None, "unknown", "not-positive"),
    ("negative mg", PRED, structured(-20, "mg"), [], None, "unknown", "not-positive"),
    ("zero tablets x strength", code("312617"), structured(0, "{tbl}"), [], None, "unknown", "not-positive"),
    ("mg/kg with a recent weight", PRED, structured(1, "mg/kg"), [WEIGHT_70], 70.0, "weight-based", None),
    ("mg/kg with a weight in pounds", PRED, structured(1, "mg/kg"), [observation("w2", "3141-9", 154.32358, "[lb_av]", "2024-05-20")], 70.0, "weight-based", None),
    ("mg/[lb_av]", PRED, structured(0.5, "mg/[lb_av]"), [WEIGHT_70], 0.5 * 70 / 0.45359237, "weight-based", None),
    ("mg/kg, latest of two weights", PRED, structured(1, "mg/kg"), [WEIGHT_70, observation("w3", "29463-7", 80, "kg", "2024-06-20")], 80.0, "weight-based", None),
    ("mg/kg, weight too old", PRED, structured(1, "mg/kg"), [observation("w4", "29463-7", 70, "kg", "2023-11-01")], None, "unknown", "weight-missing"),
    ("mg/kg, entered-in-error weight", PRED, structured(1, "mg/kg"), [observation("w5", "29463-7", 70, "kg", "2024-05-20", status="entered-in-error")], None, "unknown", "weight-missing"),
    ("mg/kg, weight in an unknown unit", PRED, structured(1, "mg/kg"), [observation("w6", "29463-7", 70, "stone", "2024-05-20")], None, "unknown", "weight-missing"),
    ("mg/kg, no weight", PRED, structured(1, "mg/kg"), [], None, "unknown", "weight-missing"),
    ("mg/m2 with weight and height", PRED, structured(40, "mg/m2"), [WEIGHT_70, HEIGHT_170], 40 * BSA, "weight-based", None),
    ("mg/m2, no height", PRED, structured(40, "mg/m2"), [WEIGHT_70], None, "unknown", "height-missing"),
    ("mg/m2, no weight", PRED, structured(40, "mg/m2"), [HEIGHT_170], None, "unknown", "weight-missing"),
    ("text only", PRED, sig("60 mg daily"), [], 60.0, "instruction-text", None),
    ("patientInstruction only, tablets x strength", code("312617"), sig("take 2 tablets by mouth daily", "patientInstruction"), [], 10.0, "instruction-text", None),
    ("text twice daily", code("6902"), sig("8 mg twice daily"), [], 20.0, "instruction-text", None),
    ("text every other day", PRED, sig("40 mg every other day"), [], 20.0, "instruction-text", None),
    ("text unreadable", PRED, sig("as directed by your doctor"), [], None, "unknown", "unreadable-instruction"),
    ("text tablets, no strength", PRED, sig("1.5 tabs qd"), [], None, "unknown", "strength-missing"),
    ("no dose, no text", PRED, {"timing": {"repeat": REPEAT}}, [], None, "unknown", "no-dose"),
    ("structured beats text", PRED, {**structured(20, "mg"), "text": "40 mg daily"}, [], 20.0, "structured", None),
    ("weight-based beats text", PRED, {**structured(1, "mg/kg"), "text": "40 mg daily"}, [WEIGHT_70], 70.0, "weight-based", None),
    ("mg/kg without weight: text is the next rung", PRED, {**structured(1, "mg/kg"), "text": "60 mg daily"}, [], 60.0, "instruction-text", None),
    ("count without strength: text is the next rung", PRED, {**structured(3, "{tbl}"), "text": "3 tablets (60 mg) daily"}, [], 60.0, "instruction-text", None),
    ("mg/kg in the text is refused", PRED, sig("1 mg/kg daily"), [WEIGHT_70], None, "unknown", "unreadable-instruction"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "med", "dosage", "obs", "peq", "source", "reason"), LADDER)
def test_dose_ladder(
    label: str,
    med: dict[str, Any],
    dosage: dict[str, Any],
    obs: list[Any],
    peq: float | None,
    source: str,
    reason: str | None,
) -> None:
    summary = run([req(med=med, dosages=[dosage])], observations=obs)
    assert len(summary.courses) == 1, (label, summary.courses)
    course = summary.courses[0]
    assert (course.dose_source, course.dose_unknown_reason) == (source, reason), label
    if peq is None:
        assert course.daily_peq_mg is None, label
        assert summary.unknown_dose_sources() == ("MedicationRequest/o1",), label
    else:
        assert course.daily_peq_mg == pytest.approx(peq, abs=1e-4), label
        assert (course.start.isoformat(), course.end.isoformat()) == ("2024-06-01", "2024-06-10")


def test_no_peq_factor() -> None:
    summary = run([req(med=code("1514"), dosages=[structured(1, "mg")])], know=knowledge({"8640": Fraction(1)}))  # fmt: skip
    course = summary.courses[0]
    assert (course.daily_peq_mg, course.dose_source, course.dose_unknown_reason) == (
        None,
        "unknown",
        "no-peq-factor",
    )


# ------------------------------------------------------------------ instruction-text steps


def courses_of(summary: Any) -> list[tuple[str, str, float | None, str, str | None]]:
    return [
        (c.start.isoformat(), c.end.isoformat(), c.daily_peq_mg, c.dose_source, c.dose_unknown_reason)
        for c in summary.courses
    ]  # fmt: skip


def test_text_taper_is_laid_out_in_steps() -> None:
    order = req(dosages=[{"text": "40 mg x 2 days then 30 mg x 2 days then 20 mg x 3 days"}])
    assert courses_of(run([order])) == [
        ("2024-06-01", "2024-06-02", 40.0, "instruction-text", None),
        ("2024-06-03", "2024-06-04", 30.0, "instruction-text", None),
        ("2024-06-05", "2024-06-07", 20.0, "instruction-text", None),
    ]


def test_text_then_taper_leaves_an_unknown_tail() -> None:
    # Active since 2024-04-01 (90 days to 2024-06-29, today 2024-06-30): 60 mg for 28 days,
    # then a taper the text does not spell out, through today.
    order = req(
        med=code("312615"),
        status="active",
        authored="2024-04-01",
        dosages=[{"text": "3 tablets (60 mg) by mouth daily for 4 weeks then taper"}],
    )
    summary = run([order])
    assert courses_of(summary) == [
        ("2024-04-01", "2024-04-28", 60.0, "instruction-text", None),
        ("2024-04-29", "2024-06-30", None, "unknown", "taper-unstated"),
    ]
    assert summary.unknown_dose_sources() == ("MedicationRequest/o1",)
    assert summary.cumulative_peq_mg() == 28 * 60


def test_text_taper_by_rule() -> None:
    order = req(dosages=[{"text": "20 mg daily for 1 week, then taper by 5 mg weekly"}])
    summary = run([order])
    assert [(c.daily_peq_mg, (c.end - c.start).days + 1) for c in summary.courses] == [
        (20.0, 7),
        (15.0, 7),
        (10.0, 7),
        (5.0, 7),
    ]


def test_unstated_length_then_taper_is_the_high_end_open() -> None:
    order = req(status="active", authored=day(-20), dosages=[{"text": "60 mg daily, then taper"}])
    course = run([order]).courses[0]
    assert (course.daily_peq_mg, course.dose_range, course.dose_source) == (
        60.0,
        True,
        "instruction-text",
    )
    assert course.end.isoformat() == day(0)


def test_text_step_lengths_end_with_the_supply() -> None:
    order = req(
        dosages=[{"text": "40 mg x 5 days then taper as directed"}],
        dispenseRequest={"expectedSupplyDuration": {"value": 20, "code": "d"}},
    )
    assert courses_of(run([order])) == [
        ("2024-06-01", "2024-06-05", 40.0, "instruction-text", None),
        ("2024-06-06", "2024-06-20", None, "unknown", "taper-unstated"),
    ]


# ------------------------------------------------------------------ divided doses


def hc(mg: float, when: str, **repeat: Any) -> dict[str, Any]:
    return {
        "doseAndRate": [{"doseQuantity": {"value": mg, "unit": "mg", "code": "mg"}}],
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d", "when": [when], **repeat}},
    }  # fmt: skip


DIVIDED = [
    ("three times of day, no durations", [hc(10, "MORN"), hc(5, "AFT"), hc(5, "EVE")]),
    ("three times of day, each for 10 days", [hc(10, "MORN", boundsDuration={"value": 10, "code": "d"}), hc(5, "AFT", boundsDuration={"value": 10, "code": "d"}), hc(5, "EVE", boundsDuration={"value": 10, "code": "d"})]),
    ("same boundsPeriod each", [hc(10, "MORN", boundsPeriod={"start": "2024-06-01", "end": "2024-06-10"}), hc(5, "AFT", boundsPeriod={"start": "2024-06-01", "end": "2024-06-10"}), hc(5, "EVE", boundsPeriod={"start": "2024-06-01", "end": "2024-06-10"})]),
    ("same sequence", [{**hc(10, "MORN", boundsDuration={"value": 10, "code": "d"}), "sequence": 1}, {**hc(5, "AFT"), "sequence": 1}, {**hc(5, "EVE"), "sequence": 1}]),
    ("text", [{"text": "10 mg in the morning, 5 mg at noon and 5 mg in the evening", "timing": {"repeat": {"boundsDuration": {"value": 10, "code": "d"}}}}]),
]  # fmt: skip


@pytest.mark.parametrize(("label", "dosages"), DIVIDED)
def test_divided_doses_are_one_course_per_day(label: str, dosages: list[Any]) -> None:
    supply = {"expectedSupplyDuration": {"value": 10, "code": "d"}}
    summary = run([req(med=code("5492"), dosages=dosages, dispenseRequest=supply)])
    assert len(summary.courses) == 1, (label, summary.courses)
    course = summary.courses[0]
    assert course.daily_peq_mg == 5.0, label  # (10 + 5 + 5) mg hydrocortisone x 1/4
    assert (course.start.isoformat(), course.end.isoformat()) == ("2024-06-01", "2024-06-10"), label
    assert summary.max_daily_peq_mg() == 5.0, label


def test_same_times_of_day_with_durations_stay_a_taper() -> None:
    taper = [hc(10, "MORN", boundsDuration={"value": 2, "code": "d"}), hc(5, "MORN", boundsDuration={"value": 2, "code": "d"})]  # fmt: skip
    summary = run([req(med=code("5492"), dosages=taper)])
    assert [c.daily_peq_mg for c in summary.courses] == [2.5, 1.25]


# ------------------------------------------------------------------ other record kinds


def test_administration_per_kg() -> None:
    given = admin(mg=10, unit="mg/kg", when="2024-06-10")
    summary = run([given], observations=[WEIGHT_70])
    course = summary.courses[0]
    assert (course.daily_peq_mg, course.dose_source) == (875.0, "weight-based")  # 700 mg MP


@pytest.mark.parametrize(("mg", "unit"), [(0, "mg"), (-500, "mg"), (0, "mg/kg")])
def test_administration_of_zero_or_less_has_an_unknown_dose(mg: float, unit: str) -> None:
    course = run([admin(mg=mg, unit=unit, when="2024-06-10")], observations=[WEIGHT_70]).courses[0]
    assert (course.daily_peq_mg, course.dose_unknown_reason) == (None, "not-positive")


def test_administration_per_kg_without_weight() -> None:
    course = run([admin(mg=10, unit="mg/kg", when="2024-06-10")]).courses[0]
    assert (course.daily_peq_mg, course.dose_unknown_reason) == (None, "weight-missing")


@pytest.mark.parametrize(
    ("kwargs", "peq", "source", "reason"),
    [
        ({"days": 10, "qty": 10}, 20.0, "dispensed-supply", None),
        ({"days": None, "qty": 10}, None, "unknown", "supply-unknown"),
    ],
)
def test_dispense_without_instructions(
    kwargs: dict[str, Any], peq: float | None, source: str, reason: str | None
) -> None:
    course = run([dispense(handed="2024-06-01", **kwargs)]).courses[0]
    assert (course.daily_peq_mg, course.dose_source, course.dose_unknown_reason) == (
        peq,
        source,
        reason,
    )


def test_dispense_with_text_instructions() -> None:
    fill = dispense(handed="2024-06-01", days=10, qty=10, med=code("312617"), dosageInstruction=[{"text": "2 tablets daily"}])  # fmt: skip
    course = run([fill]).courses[0]
    assert (course.daily_peq_mg, course.dose_source) == (10.0, "instruction-text")


@pytest.mark.parametrize(
    ("name", "peq", "reason"),
    [
        ("prednisone 10 MG Oral Tablet", 30.0, None),  # RxNorm name: the strength is known
        ("Prednisone 10 mg tablet", None, "strength-missing"),  # free text: it is not
    ],
)
def test_text_only_medication_name_and_sig(
    name: str, peq: float | None, reason: str | None
) -> None:
    order = req(med=text(name), dosages=[sig("take 3 tablets daily")])
    course = run([order]).courses[0]
    assert (course.daily_peq_mg, course.dose_unknown_reason) == (peq, reason)


def test_structured_dose_unchanged_by_dose_helper() -> None:
    course = run([req(dosages=[dose(20, days=3)])]).courses[0]
    assert (course.dose_source, course.dose_unknown_reason) == ("structured", None)
