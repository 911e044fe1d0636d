"""Current use follows the record: open active orders, their bounds, replacements, confirmation.

Synthetic data, now at +04:00 (tests/test_exposure_support.py). Day offsets are from TODAY.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest

from tests.test_exposure_support import (
    TODAY,
    admin,
    code,
    day,
    dispense,
    dose,
    req,
    run,
    stmt,
)


def at(offset: int) -> date:
    return TODAY + timedelta(days=offset)


def actual(summary: Any, source: str = "MedicationRequest/o1") -> Any:
    found = [c for c in summary.courses if c.source == source and not c.planned]
    assert len(found) == 1, summary.courses
    return found[0]


# ------------------------------------------------------------------ where a current order ends

OLD_ORDER: dict[str, Any] = {"status": "active", "authored": day(-730), "dosages": [dose(7.5)]}
SUPPLY: dict[str, Any] = {
    "expectedSupplyDuration": {"value": 30, "code": "d"},
    "numberOfRepeatsAllowed": 2,
}

ENDS = [
    # label, request kwargs, first day, last day (offsets; the actual course)
    ("old open order: through today", OLD_ORDER, -730, 0),
    ("refills without a supply size: through today", {**OLD_ORDER, "dispenseRequest": {"numberOfRepeatsAllowed": 11}}, -730, 0),
    ("boundsPeriod.end in the past", {"status": "active", "authored": day(-100), "dosages": [dose(7.5, start=day(-100), end=day(-40))]}, -100, -40),
    ("validityPeriod.end in the past", {"status": "active", "authored": day(-100), "dispenseRequest": {"validityPeriod": {"start": day(-100), "end": day(-20)}}, "dosages": [dose(7.5)]}, -100, -20),
    ("validityPeriod.end in the future", {"status": "active", "authored": day(-100), "dispenseRequest": {"validityPeriod": {"end": day(30)}}, "dosages": [dose(7.5)]}, -100, 0),
    ("supply x (1 + repeats) ended", {"status": "active", "authored": day(-200), "dispenseRequest": SUPPLY, "dosages": [dose(7.5)]}, -200, -111),
    ("supply x (1 + repeats) beats validity", {"status": "active", "authored": day(-200), "dispenseRequest": {**SUPPLY, "validityPeriod": {"end": day(100)}}, "dosages": [dose(7.5)]}, -200, -111),
    ("quantity x fills / daily tablets", {"status": "active", "authored": day(-50), "med": code("312617"), "dispenseRequest": {"quantity": {"value": 10, "code": "{tbl}"}, "numberOfRepeatsAllowed": 1}, "dosages": [dose(1, "{tbl}")]}, -50, -31),
]  # fmt: skip


@pytest.mark.parametrize(("label", "kwargs", "first", "last"), ENDS)
def test_current_order_ends_where_the_record_says(
    label: str, kwargs: dict[str, Any], first: int, last: int
) -> None:
    course = actual(run([req(**kwargs)]))
    assert (course.start, course.end) == (at(first), at(last)), label


def test_old_open_order_counts_the_whole_lookback() -> None:
    summary = run([req(**OLD_ORDER)])
    assert summary.current_daily_peq_mg() == 7.5
    assert summary.days_at_or_above(2.5) == 365
    assert summary.planned_daily == {TODAY: 7.5}


def test_future_start_open_order_is_one_planned_day() -> None:
    summary = run([req(status="active", authored=day(-1), dosages=[dose(start=day(5))])])
    assert [(c.start, c.end, c.planned) for c in summary.courses] == [(at(5), at(5), True)]


# ------------------------------------------------------------------ confirmation of current use

CONFIRM = [
    # label, extra resources, unconfirmed, last evidence offset
    ("only the old order", [], True, -730),
    ("recent unlinked dispense of the ingredient", [dispense("d1", handed=day(-20), days=30, qty=30)], False, -20),
    ("dispense just inside the window", [dispense("d1", handed=day(-180), days=30, qty=30)], False, -180),
    ("dispense just outside the window", [dispense("d1", handed=day(-181), days=30, qty=30)], True, -181),
    ("recent administration", [admin("a1", med=code("8640"), mg=7.5, when=day(-3), route="oral")], False, -3),
    ("statement asserted recently", [stmt("s1", status="active", effectiveDateTime=day(-700), dateAsserted=day(-10))], False, -10),
    ("dispense of another drug does not confirm", [dispense("d1", med=code("197582"), handed=day(-5), days=2, qty=2)], True, -730),
]  # fmt: skip


@pytest.mark.parametrize(("label", "extra", "unconfirmed", "last"), CONFIRM)
def test_unconfirmed_current(label: str, extra: list[Any], unconfirmed: bool, last: int) -> None:
    course = actual(run([req(**OLD_ORDER), *extra]))
    assert course.unconfirmed_current is unconfirmed, label
    assert course.ordered_on == at(-730), label
    assert course.last_evidence_on == at(last), label


@pytest.mark.parametrize(
    ("label", "kwargs", "unconfirmed"),
    [
        ("recent order", {"status": "active", "authored": day(-100), "dosages": [dose(7.5)]}, False),
        ("ended old order is history, not current", {"status": "completed", "authored": day(-300), "dosages": [dose(7.5, days=30)]}, False),
        ("old order whose supply reaches today", {"status": "active", "authored": day(-200), "med": code("312617"), "dispenseRequest": {"quantity": {"value": 90, "code": "{tbl}"}, "numberOfRepeatsAllowed": 3}, "dosages": [dose(1, "{tbl}")]}, True),
        ("missing authoredOn: no ordered_on, start from lastUpdated", {"status": "active", "authored": None, "meta": {"lastUpdated": f"{day(-400)}T08:00:00+04:00"}, "dosages": [dose(7.5)]}, True),
    ],
)  # fmt: skip
def test_unconfirmed_only_for_current_courses(
    label: str, kwargs: dict[str, Any], unconfirmed: bool
) -> None:
    course = actual(run([req(**kwargs)]))
    assert course.unconfirmed_current is unconfirmed, label
    if kwargs.get("authored") is None:
        assert course.ordered_on is None


def test_old_active_statement_is_unconfirmed() -> None:
    summary = run([stmt("s1", status="active", effectiveDateTime=day(-400), dosage=[dose(5)])])
    course = actual(summary, "MedicationStatement/s1")
    assert (course.start, course.end) == (at(-400), TODAY)
    assert course.unconfirmed_current
    assert course.ordered_on is None


def test_planned_part_carries_the_flags() -> None:
    summary = run([req(status="active", authored=day(-400), dosages=[dose(days=500)])])
    planned = [c for c in summary.courses if c.planned]
    assert len(planned) == 1
    assert planned[0].unconfirmed_current
    assert planned[0].ordered_on == at(-400)


def test_drafts_are_never_unconfirmed_and_are_not_evidence() -> None:
    draft = req("d1", status="draft", authored=None, dosages=[dose(7.5, days=30)])
    summary = run([req(**OLD_ORDER)], drafts=[draft])
    assert actual(summary).unconfirmed_current
    assert not any(c.unconfirmed_current for c in summary.courses if c.source.endswith("/d1"))


# ------------------------------------------------------------------ on hold


@pytest.mark.parametrize(
    ("label", "meta", "last"),
    [
        ("no lastUpdated: up to yesterday", None, -1),
        ("lastUpdated is the hold day", {"lastUpdated": f"{day(-50)}T09:00:00+04:00"}, -50),
        (
            "lastUpdated before the start is ignored",
            {"lastUpdated": f"{day(-150)}T09:00:00+04:00"},
            -1,
        ),
    ],
)
def test_on_hold_order_ends_at_the_hold(label: str, meta: Any, last: int) -> None:
    extra = {"meta": meta} if meta else {}
    course = actual(run([req(status="on-hold", authored=day(-100), dosages=[dose()], **extra)]))
    assert (course.start, course.end) == (at(-100), at(last)), label
    assert not course.unconfirmed_current


# ------------------------------------------------------------------ re-prescriptions

REPLACE = [
    # label, resources, PEQ today, PEQ 150 days ago
    ("same product re-ordered: the later replaces", [req("o1", **OLD_ORDER), req("o2", status="active", authored=day(-100), dosages=[dose(7.5)])], 7.5, 7.5),
    ("four quarterly re-orders never stack", [req(f"o{i}", status="active", authored=day(-90 * i), dosages=[dose(7.5)]) for i in range(1, 5)], 7.5, 7.5),
    ("re-ordered at a new dose", [req("o1", **OLD_ORDER), req("o2", status="active", authored=day(-100), dosages=[dose(5)])], 5.0, 7.5),
    ("different products written on different days add up", [req("o1", status="active", authored=day(-300), med=code("312617"), dosages=[dose(1, "{tbl}")]), req("o2", status="active", authored=day(-100), med=code("198144"), dosages=[dose(1, "{tbl}")])], 6.0, 5.0),
    ("two ingredients add up", [req("o1", **OLD_ORDER), req("o2", status="active", authored=day(-100), med=code("6902"), dosages=[dose(4)])], 12.5, 7.5),
    ("same-day orders of the same product stay concurrent", [req("o1", status="active", authored=day(-300), dosages=[dose(5)]), req("o2", status="active", authored=day(-300), dosages=[dose(2.5)])], 7.5, 7.5),
    ("re-recorded statements never stack", [stmt("s1", status="active", effectiveDateTime=day(-300), dosage=[dose(7.5)]), stmt("s2", status="active", effectiveDateTime=day(-100), dosage=[dose(7.5)])], 7.5, 7.5),
    ("an order and an unlinked statement: max, not sum", [req("o1", **OLD_ORDER), stmt("s1", status="active", effectiveDateTime=day(-100), dosage=[dose(7.5)])], 7.5, 7.5),
]  # fmt: skip


@pytest.mark.parametrize(("label", "resources", "today", "earlier"), REPLACE)
def test_re_prescriptions(label: str, resources: list[Any], today: float, earlier: float) -> None:
    summary = run(resources)
    assert summary.current_daily_peq_mg() == pytest.approx(today), label
    assert summary.daily[at(-150)] == pytest.approx(earlier), label


def test_burst_of_the_same_product_then_the_chronic_order_resumes() -> None:
    chronic = req("o1", status="active", authored=day(-300), dosages=[dose(5)])
    burst = req("o2", status="completed", authored=day(-100), dosages=[dose(40, days=5)])
    summary = run([chronic, burst])
    assert [summary.daily[at(o)] for o in (-101, -100, -96, -95, 0)] == [5, 40, 40, 5, 5]
    spans = [(c.start, c.end) for c in summary.courses if c.source == "MedicationRequest/o1"]
    assert spans == [(at(-300), at(-101)), (at(-95), TODAY)]


def test_draft_of_the_same_product_replaces_from_tomorrow() -> None:
    draft = req("d1", status="draft", authored=None, dosages=[dose(5, days=30)])
    summary = run([req(**OLD_ORDER)], drafts=[draft])
    assert summary.current_daily_peq_mg() == 7.5
    assert summary.planned_daily[at(1)] == 5
    assert summary.planned_daily[at(29)] == 5


@pytest.mark.parametrize("seed", range(20))
def test_latest_started_order_of_a_product_counts_each_day(seed: int) -> None:
    """Random re-orders of one product: each day is the dose of the covering order that
    started last (orders starting the same day add up)."""
    rng = random.Random(seed)
    orders: list[tuple[int, int | None, float]] = []
    for _ in range(rng.randint(2, 8)):
        length = rng.choice([None, 3, 10, 40])
        orders.append((rng.randint(-120, -1), length, float(rng.choice([5, 7.5, 10, 20, 40]))))
    resources = [
        req(f"o{i}", status="active" if n is None else "completed", authored=day(s), dosages=[dose(mg, days=n)])
        for i, (s, n, mg) in enumerate(orders)
    ]  # fmt: skip
    summary = run(resources)
    for offset in range(-120, 1):
        covering = [
            (s, mg) for s, n, mg in orders if s <= offset <= (0 if n is None else min(s + n - 1, 0))
        ]
        want = (
            sum(mg for s, mg in covering if s == max(c[0] for c in covering)) if covering else 0.0
        )
        assert summary.daily.get(at(offset), 0.0) == pytest.approx(want), (seed, offset, orders)


# ------------------------------------------------------- an active order with no date at all

START_UNKNOWN = [
    # label, request kwargs, drafts, start_unknown on the actual (or planned) course
    ("active, no date at all: start unknown", {"status": "active", "authored": None, "dosages": [dose(20)]}, False, True),
    ("active with authoredOn: start known", {"status": "active", "authored": day(-3), "dosages": [dose(20)]}, False, False),
    ("active with only a boundsPeriod start", {"status": "active", "authored": None, "dosages": [dose(20, start=day(-10))]}, False, False),
    ("active with only meta.lastUpdated: dates inferred", {"status": "active", "authored": None, "meta": {"lastUpdated": day(-5) + "T08:00:00+04:00"}, "dosages": [dose(20)]}, False, False),
    ("a draft with no date starts today: known", {"status": "draft", "authored": None, "dosages": [dose(20)]}, True, False),
]  # fmt: skip


@pytest.mark.parametrize(("label", "kwargs", "draft", "expected"), START_UNKNOWN)
def test_an_active_order_with_no_date_has_an_unknown_start(
    label: str, kwargs: dict[str, Any], draft: bool, expected: bool
) -> None:
    order = req(**kwargs)
    summary = run([], drafts=[order]) if draft else run([order])
    courses = [c for c in summary.courses if c.source == "MedicationRequest/o1"]
    assert courses, label
    assert all(c.start_unknown is expected for c in courses), (label, courses)
    if expected:  # still counted on today only, at its dose
        assert [(c.start, c.end, c.daily_peq_mg) for c in courses] == [(TODAY, TODAY, 20.0)]


# ------------------------------------------------ exact duplicate orders count once, others sum

TABLET_20 = code("312615")  # prednisone 20 MG Oral Tablet: another product than the ingredient


def _order(rid: str, mg: float = 20, *, start: int = -30, end: int = 60, route: str | None = None, tablets: bool = False) -> Any:  # fmt: skip
    amount = dose(mg / 20, "{tbl}", start=day(start), end=day(end), route=route) if tablets else dose(mg, start=day(start), end=day(end), route=route)  # fmt: skip
    return req(rid, status="active", authored=day(start), med=TABLET_20 if tablets else None, dosages=[amount])  # fmt: skip


def _statement(rid: str) -> Any:
    return stmt(rid, status="active", dosages=[dose(20, start=day(-30), end=day(60))])


DUPLICATES = [
    # label, records, PEQ mg today
    ("two identical orders, different ids: counted once", [_order("o1"), _order("o2")], 20.0),
    ("three identical orders: counted once", [_order("o1"), _order("o2"), _order("o3")], 20.0),
    ("the same id repeated: counted once", [_order("o1"), _order("o1")], 20.0),
    ("two identical statements: counted once", [_statement("s1"), _statement("s2")], 20.0),
    ("different doses, same dates: summed", [_order("o1", 20), _order("o2", 5)], 25.0),
    ("same dose, different end: both counted", [_order("o1", end=60), _order("o2", end=30)], 40.0),
    ("same dose, different start (other product): both counted", [_order("o1", start=-30), _order("o2", start=-10, tablets=True)], 40.0),
    ("same dose, different route: both counted", [_order("o1", route="oral"), _order("o2", route="iv")], 40.0),
    ("identical administrations are two doses: summed", [admin("a1", mg=16, when=day(0)), admin("a2", mg=16, when=day(0))], 40.0),
]  # fmt: skip


@pytest.mark.parametrize(("label", "records", "today_mg"), DUPLICATES)
def test_exact_duplicate_orders_count_once(label: str, records: list[Any], today_mg: float) -> None:
    summary = run(records)
    assert summary.current_daily_peq_mg() == pytest.approx(today_mg), (label, summary.courses)
    sources = {r.get_resource_type() + "/" + str(r.id) for r in records}
    assert {c.source for c in summary.courses} == sources, label  # every record stays listed
