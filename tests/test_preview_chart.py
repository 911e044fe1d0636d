"""The exposure chart's data (no browser): day runs, dose lines read from the thresholds file,
courses and pulses from an exposure summary, and the bundled-case library."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from cds_service.errors import ContentError
from cds_service.exposure import Course, ExposureSummary
from cds_service.preview.chart import day_runs, exposure_chart
from cds_service.preview.fixtures import FixtureLibrary
from cds_service.settings import Settings
from cds_service.steroid_status import DOSE_LINES, dose_lines
from cds_service.thresholds import Threshold, Thresholds, load_thresholds

THRESHOLDS = load_thresholds(Settings().hooks_dir / "thresholds.toml")
D0 = date(2026, 3, 1)


def _days(start: date, values: list[float]) -> dict[date, float]:
    return {start + timedelta(days=i): v for i, v in enumerate(values) if v}


def test_day_runs_merge_consecutive_equal_days_only() -> None:
    daily = _days(D0, [10, 10, 10, 5, 0, 5, 5])
    assert day_runs(daily) == [
        {"start": "2026-03-01", "end": "2026-03-03", "mg": 10},
        {"start": "2026-03-04", "end": "2026-03-04", "mg": 5},
        {"start": "2026-03-06", "end": "2026-03-07", "mg": 5},  # a gap day splits the run
    ]
    assert day_runs({}) == []


def test_dose_lines_are_the_rules_values_from_the_thresholds_file() -> None:
    lines = dose_lines(THRESHOLDS)
    assert [line["mg"] for line in lines] == [2.5, 7.5, 20.0, 30.0]
    for line in lines:
        for path in line["paths"]:
            assert THRESHOLDS.value(path) == line["mg"]
    assert {p for line in lines for p in line["paths"]} == {p for p, _ in DOSE_LINES}
    assert "PJP prophylaxis" in next(line["label"] for line in lines if line["mg"] == 20.0)


def test_dose_lines_follow_the_file_not_the_code() -> None:
    items = dict(THRESHOLDS.items())
    items["exposure.very_high_daily_mg"] = replace(items["exposure.very_high_daily_mg"], value=25.0)
    assert [line["mg"] for line in dose_lines(Thresholds(items))] == [2.5, 7.5, 20.0, 25.0]


def test_a_dose_line_in_another_unit_is_a_content_error() -> None:
    items = dict(THRESHOLDS.items())
    items["bone.under40_moderate_daily_mg"] = Threshold(7.5, "mg", "test")
    with pytest.raises(ContentError, match="unit must be mg/d"):
        dose_lines(Thresholds(items))
    del items["bone.under40_moderate_daily_mg"]
    with pytest.raises(ContentError, match="unknown threshold"):
        dose_lines(Thresholds(items))


def test_exposure_chart_from_a_summary() -> None:
    today = date(2026, 11, 24)
    course = Course(
        source="MedicationRequest/mr-1",
        ingredient="8640",
        ingredient_name="prednisone",
        start=date(2026, 10, 1),
        end=date(2026, 11, 30),
        daily_peq_mg=40.0,
        route="oral",
        planned=False,
        dose_range=False,
        undated=False,
    )
    pulse = replace(course, source="MedicationAdministration/ma-1", start=D0, end=D0, route="iv")
    summary = ExposureSummary(
        courses=(course, pulse),
        excluded_sources=(),
        daily={**_days(date(2026, 10, 1), [40.0] * 55), D0: 1250.0},
        planned_daily=_days(today, [40.0] * 7),
        today=today,
        window_start=date(2025, 11, 25),
        pulses=((D0, 1250.0, "MedicationAdministration/ma-1"),),
    )
    chart = exposure_chart(summary, THRESHOLDS)
    assert chart["window_start"] == "2025-11-25"
    assert chart["today"] == "2026-11-24"
    assert chart["daily"] == [
        {"start": "2026-03-01", "end": "2026-03-01", "mg": 1250.0},
        {"start": "2026-10-01", "end": "2026-11-24", "mg": 40.0},
    ]
    assert chart["planned"] == [{"start": "2026-11-24", "end": "2026-11-30", "mg": 40.0}]
    assert [c["source"] for c in chart["courses"]] == [pulse.source, course.source]  # by start
    assert chart["courses"][1] == {
        "drug": "prednisone",
        "source": "MedicationRequest/mr-1",
        "start": "2026-10-01",
        "end": "2026-11-30",
        "mg": 40.0,
        "route": "oral",
        "planned": False,
    }
    assert chart["pulses"] == [
        {"day": "2026-03-01", "mg": 1250.0, "source": "MedicationAdministration/ma-1"}
    ]
    assert json.loads(json.dumps(chart)) == chart  # JSON-ready


def test_fixture_library_lists_cases_by_name_and_skips_odd_files(tmp_path: Path) -> None:
    good = tmp_path / "svc" / "case-one"
    good.mkdir(parents=True)
    (good / "request.json").write_text(json.dumps({"hook": "patient-view", "context": {}}))
    for name, text in (("not-json", "{"), ("no-hook", "[]"), ("Bad.Name", '{"hook": "x"}')):
        (tmp_path / "svc" / name).mkdir()
        (tmp_path / "svc" / name / "request.json").write_text(text)
    library = FixtureLibrary(tmp_path)
    assert [f.as_json() for f in library.listing()] == [
        {"name": "case-one", "service": "svc", "hook": "patient-view"}
    ]
    assert library.request("case-one") == {"hook": "patient-view", "context": {}}
    assert library.request("not-json") is None
    assert library.request("../svc/case-one") is None
    assert FixtureLibrary(tmp_path / "absent").listing() == []
