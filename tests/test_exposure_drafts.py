"""Draft orders (order-select/sign) are planned exposure from today, whatever their old dates."""

from __future__ import annotations

import pytest

from tests.test_exposure_support import TODAY, day, dose, req, run


@pytest.mark.parametrize(
    "dates",
    [
        {"authored": "2018-04-26"},  # the spec's examples are dated 2018
        {"authored": None, "meta": {"lastUpdated": "2018-04-26T10:00:00Z"}},
        {"authored": day(-3)},  # drafted three days ago, not yet signed
    ],
)
def test_old_dated_draft_starts_today(dates: dict[str, object]) -> None:
    draft = req("d1", status="draft", dosages=[dose(40, days=56)], **dates)  # type: ignore[arg-type]
    summary = run([], drafts=[draft])
    assert summary.current_daily_peq_mg() == 0  # nothing taken yet
    assert summary.planned_daily[TODAY] == 40
    assert summary.planned_days_at_or_above(20) == 56


def test_draft_with_later_explicit_start_keeps_it() -> None:
    draft = req("d1", status="draft", authored=None, dosages=[dose(40, start=day(7), end=day(20))])
    summary = run([], drafts=[draft])
    assert TODAY not in summary.planned_daily
    assert summary.planned_days_at_or_above(20) == 14
