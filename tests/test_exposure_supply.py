"""Supplies and drafts: a start-only boundsPeriod with a supply, overlapping dispenses.

Synthetic data, now at +04:00 (tests/test_exposure_support.py). Day offsets are from TODAY.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.test_exposure_support import TODAY, code, day, dispense, dose, req, run

SUPPLY_30: dict[str, Any] = {"expectedSupplyDuration": {"value": 30, "unit": "days", "code": "d"}}


def at(offset: int) -> date:
    return TODAY + timedelta(days=offset)


# ------------------------------------------------------------------ drafts and boundsPeriod.start

DRAFTS = [
    # label, dosage, dispenseRequest, first planned day, last planned day
    ("sandbox: start today, no end, 30 days' supply", dose(start=day(0)), SUPPLY_30, 0, 29),
    ("no start, 30 days' supply", dose(), SUPPLY_30, 0, 29),
    ("start next week, 30 days' supply", dose(start=day(7)), SUPPLY_30, 7, 36),
    ("start yesterday (clock skew): from today", dose(start=day(-1)), SUPPLY_30, 0, 29),
    ("start today, supply x (1 + 2 repeats)", dose(start=day(0)), {**SUPPLY_30, "numberOfRepeatsAllowed": 2}, 0, 89),
    ("start today, quantity / daily tablets", {**dose(1, "{tbl}", start=day(0)), "_med": code("312615")}, {"quantity": {"value": 14, "code": "{tbl}"}}, 0, 13),
    ("start today, count", dose(start=day(0), count=10), {}, 0, 9),
    ("start today and end: its own dates", dose(start=day(0), end=day(9)), SUPPLY_30, 0, 9),
    ("start today, nothing else: first day only", dose(start=day(0)), {}, 0, 0),
]  # fmt: skip


@pytest.mark.parametrize(("label", "dosage", "disp", "first", "last"), DRAFTS)
def test_draft_length(
    label: str, dosage: dict[str, Any], disp: dict[str, Any], first: int, last: int
) -> None:
    dosage = dict(dosage)
    med = dosage.pop("_med", None)
    kwargs: dict[str, Any] = {"dispenseRequest": disp} if disp else {}
    draft = req("d1", med=med, status="draft", authored=None, dosages=[dosage], **kwargs)
    summary = run([], drafts=[draft])
    assert [(c.start, c.end, c.planned) for c in summary.courses] == [
        (at(first), at(last), True)
    ], label
    assert summary.planned_days_at_or_above(20) == last - first + 1, label


def test_active_order_with_start_only_bounds_uses_its_supply() -> None:
    order = req(
        status="active",
        authored=day(-70),
        dosages=[dose(start=day(-60))],
        dispenseRequest={**SUPPLY_30, "numberOfRepeatsAllowed": 1},
    )
    course = next(c for c in run([order]).courses if not c.planned)
    assert (course.start, course.end) == (at(-60), at(-1))


def test_later_step_with_its_own_start_is_placed_there() -> None:
    taper = [dose(40, start=day(-20), end=day(-11)), dose(20, start=day(-10), count=5)]
    summary = run([req(status="active", authored=day(-20), dosages=taper)])
    assert summary.daily[at(-11)] == 40
    assert [summary.daily[at(o)] for o in range(-10, -5)] == [20] * 5
    assert at(-5) not in summary.daily


# ------------------------------------------------------------------ overlapping supplies


def fill(rid: str, handed: int, days: int = 30, **extra: Any) -> Any:
    """30 tablets of prednisone 20 mg for 30 days (20 mg/day), handed over ``handed`` days ago."""
    return dispense(rid, handed=day(handed), days=days, qty=days, **extra)


LINKED: dict[str, Any] = {"authorizingPrescription": [{"reference": "MedicationRequest/o1"}]}

SUPPLIES = [
    # label, resources, max PEQ/day, days covered up to today, last supplied day (offset)
    ("early refill, unlinked: continues", [fill("d1", -50), fill("d2", -25)], 20, 51, 9),
    ("early refill, same prescription: continues", [req("o1", status="active", authored=day(-50), dispenseRequest=SUPPLY_30), fill("d1", -50, **LINKED), fill("d2", -25, **LINKED)], 20, 51, 9),
    ("three fills, each 10 days early", [fill("d1", -70), fill("d2", -50), fill("d3", -30)], 20, 71, 19),
    ("refill after a gap: not moved", [fill("d1", -80), fill("d2", -40)], 20, 60, -11),
    ("refill on the day it runs out: not moved", [fill("d1", -59), fill("d2", -29)], 20, 60, 0),
    ("5 mg and 1 mg tablets the same day add up", [dispense("d1", med=code("312617"), handed=day(-10), days=30, qty=30), dispense("d2", med=code("198144"), handed=day(-10), days=30, qty=30)], 6, 11, 19),
]  # fmt: skip


@pytest.mark.parametrize(("label", "resources", "peak", "covered", "last"), SUPPLIES)
def test_overlapping_supplies(
    label: str, resources: list[Any], peak: float, covered: int, last: int
) -> None:
    summary = run(resources)
    assert summary.max_daily_peq_mg() == peak, label
    assert summary.days_at_or_above(peak) == covered, label
    supplied = [d for d, v in {**summary.daily, **summary.planned_daily}.items() if v > 0]
    assert max(supplied) == at(last), label


def test_dispenses_for_two_prescriptions_are_not_chained() -> None:
    resources = [
        req("o1", status="active", authored=day(-20), med=code("312617"), dosages=[dose(1, "{tbl}")]),
        req("o2", status="active", authored=day(-20), med=code("198144"), dosages=[dose(1, "{tbl}")]),
        dispense("d1", med=code("312617"), handed=day(-20), days=30, qty=30, authorizingPrescription=[{"reference": "MedicationRequest/o1"}]),
        dispense("d2", med=code("198144"), handed=day(-20), days=30, qty=30, authorizingPrescription=[{"reference": "MedicationRequest/o2"}]),
    ]  # fmt: skip
    summary = run(resources)
    assert summary.current_daily_peq_mg() == 6
    assert summary.days_at_or_above(6) == 21


def test_dispense_without_supply_length_is_left_alone() -> None:
    summary = run([fill("d1", -10), dispense("d2", handed=day(-5), days=None, qty=None)])
    assert summary.daily[at(-5)] == 20
    assert summary.max_daily_peq_mg() == 20
