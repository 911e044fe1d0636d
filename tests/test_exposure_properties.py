"""Property-based tests of the exposure engine (hypothesis)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.exposure import ExposureSummary
from tests.test_exposure_support import (
    PEQ,
    admin,
    code,
    day,
    dose,
    knowledge,
    req,
    run,
    stmt,
)

SETTINGS = settings(max_examples=60, deadline=None)
INGREDIENTS = ["8640", "6902", "3264", "5492"]


@st.composite
def records(draw: st.DrawFn) -> list[Any]:
    """A random mix of orders, statements and administrations, some linked to an order."""
    out: list[Any] = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["request", "request", "statement", "admin"]))
        ing = draw(st.sampled_from(INGREDIENTS))
        start = draw(st.integers(-420, 20))
        length = draw(st.integers(1, 120))
        mg = draw(st.sampled_from([1, 2.5, 5, 7.5, 10, 20, 40, 500, 1000]))
        if kind == "request":
            status = draw(st.sampled_from(["active", "completed", "stopped", "on-hold"]))
            bounded = draw(st.booleans())
            dosage = dose(mg, days=length if bounded else None, seq=1)
            out.append(
                req(f"o{i}", med=code(ing), status=status, authored=day(start), dosages=[dosage])
            )
        elif kind == "statement":
            link: dict[str, Any] = {}
            if i % 2:
                link["derivedFrom"] = [{"reference": "MedicationRequest/o0"}]
            period = {"start": day(start), "end": day(start + length)}
            out.append(stmt(f"s{i}", med=code(ing), dosages=[dose(mg)], effectivePeriod=period, **link))  # fmt: skip
        else:
            link = {"request": {"reference": "MedicationRequest/o0"}} if i % 2 else {}
            out.append(admin(f"a{i}", med=code(ing), mg=mg, when=day(min(start, 0)), **link))
    return out


def observable(summary: ExposureSummary) -> tuple[Any, ...]:
    return (
        dict(summary.daily),
        dict(summary.planned_daily),
        summary.cumulative_peq_mg(),
        summary.courses,
        summary.excluded_sources,
        summary.iv_pulse_days(),
        summary.unknown_dose_sources(),
        summary.sources_for_days_at_or_above(5),
    )


@SETTINGS
@given(
    start=st.integers(-400, 0),
    length=st.integers(2, 90),
    cut=st.integers(1, 89),
    mg=st.sampled_from([2.5, 5.0, 7.5, 20.0, 60.0]),
)
def test_splitting_a_course_into_adjacent_orders_changes_nothing(
    start: int, length: int, cut: int, mg: float
) -> None:
    cut = min(cut, length - 1)
    whole = run([req("w", authored=day(start), dosages=[dose(mg, days=length)])])
    split = run(
        [
            req("p1", authored=day(start), dosages=[dose(mg, days=cut)]),
            req("p2", authored=day(start + cut), dosages=[dose(mg, days=length - cut)]),
        ]
    )
    assert split.daily == whole.daily
    assert split.cumulative_peq_mg() == whole.cumulative_peq_mg()
    for threshold in (2.5, mg):
        assert split.longest_run_at_or_above(threshold) == whole.longest_run_at_or_above(threshold)
        assert split.days_at_or_above(threshold) == whole.days_at_or_above(threshold)
        assert split.current_run_at_or_above(
            threshold, include_planned=False
        ) == whole.current_run_at_or_above(threshold, include_planned=False)


@SETTINGS
@given(resources=records())
def test_cumulative_is_the_sum_of_daily(resources: list[Any]) -> None:
    summary = run(resources)
    assert abs(summary.cumulative_peq_mg() - sum(summary.daily.values())) < 1e-6
    assert all(v > 0 for v in summary.daily.values())
    assert all(summary.window_start <= d <= summary.today for d in summary.daily)
    assert all(d >= summary.today for d in summary.planned_daily)


@SETTINGS
@given(resources=records(), low=st.floats(0.1, 2000), high=st.floats(0.1, 2000))
def test_days_at_or_above_is_monotone(resources: list[Any], low: float, high: float) -> None:
    low, high = sorted((low, high))
    summary = run(resources)
    assert summary.days_at_or_above(low) >= summary.days_at_or_above(high)
    assert summary.longest_run_at_or_above(low) >= summary.longest_run_at_or_above(high)
    assert summary.days_at_or_above(low) >= summary.longest_run_at_or_above(low)
    assert summary.planned_days_at_or_above(low) >= summary.planned_days_at_or_above(high)


@SETTINGS
@given(data=st.data(), resources=records())
def test_resource_order_does_not_matter(data: st.DataObject, resources: list[Any]) -> None:
    shuffled = data.draw(st.permutations(resources))
    assert observable(run(shuffled)) == observable(run(resources))


@SETTINGS
@given(resources=records(), factor=st.sampled_from([Fraction(1, 2), Fraction(2), Fraction(4)]))
def test_peq_factor_scales_the_dose(resources: list[Any], factor: Fraction) -> None:
    base = run(resources)
    scaled = run(resources, know=knowledge({k: v * factor for k, v in PEQ.items()}))
    assert set(scaled.daily) == set(base.daily)
    for d, value in base.daily.items():
        assert abs(scaled.daily[d] - value * float(factor)) < 1e-4
