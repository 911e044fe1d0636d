"""The cheaper paths of the exposure step give exactly what the plain computation gives:
PEQ mg without Fraction objects, a segment moved without ``dataclasses.replace``, the dose
entry chosen in one pass, and the parameters a loaded service keeps instead of reading them
from the thresholds on every call."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.catalog import Service, load_catalog
from cds_service.decide import _role_days, exposure_params
from cds_service.exposure import ExposureParams
from cds_service.exposure.measurements import BodyWindows
from cds_service.exposure.segments import Segment
from cds_service.fhir.views import Dosage
from cds_service.medications import DrugInfo, dose_per_administration
from cds_service.topics import KINDS
from tests.test_exposure_support import KNOWLEDGE, PEQ

REPO = Path(__file__).resolve().parents[1]

FACTORS = st.one_of(
    st.sampled_from(sorted(PEQ.values())),
    st.fractions(min_value=Fraction(1, 10**6), max_value=10**6),
)
DOSES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True),
    st.floats(min_value=0.001, max_value=100_000),
    st.integers(min_value=-(10**6), max_value=10**6),
)


def _reference_peq(mg: float, factor: Fraction) -> float:
    """The computation ``peq_mg`` replaced: exact ratio, rounded once by Fraction."""
    return float(Fraction(mg) * factor)


@settings(max_examples=2000, deadline=None)
@given(mg=DOSES, factor=FACTORS)
def test_peq_mg_equals_the_fraction_computation(mg: float, factor: Fraction) -> None:
    knowledge = replace(KNOWLEDGE, peq_factor={"x": factor})
    try:
        expected: float | type[Exception] = _reference_peq(mg, factor)
    except OverflowError:
        expected = OverflowError
    if expected is OverflowError:
        with pytest.raises(OverflowError):
            knowledge.peq_mg("x", mg)
        return
    found = knowledge.peq_mg("x", mg)
    assert found == expected
    assert math.copysign(1.0, found or 0.0) == math.copysign(1.0, float(expected) or 0.0)


@pytest.mark.parametrize("mg", [math.inf, -math.inf, math.nan])
def test_peq_mg_of_a_non_finite_dose_fails_as_before(mg: float) -> None:
    with pytest.raises((OverflowError, ValueError)) as before:
        _reference_peq(mg, Fraction(5, 4))
    with pytest.raises(before.type):
        replace(KNOWLEDGE, peq_factor={"x": Fraction(5, 4)}).peq_mg("x", mg)


@pytest.mark.parametrize("ingredient", sorted(PEQ))
@pytest.mark.parametrize("mg", [0.5, 1.0, 2.5, 4.0, 5.0, 7.5, 12.5, 20.0, 36.0, 40.0, 1000.0])
def test_peq_mg_of_every_test_factor(ingredient: str, mg: float) -> None:
    assert KNOWLEDGE.peq_mg(ingredient, mg) == _reference_peq(mg, PEQ[ingredient])


DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1))


@st.composite
def segments(draw: st.DrawFn) -> Segment:
    return Segment(
        ingredient=draw(st.sampled_from(sorted(PEQ))),
        name=draw(st.text(max_size=5)),
        start=draw(st.none() | DAYS),
        end=draw(st.none() | DAYS),
        peq=draw(st.none() | st.floats(0, 1000)),
        route=draw(st.sampled_from(["oral", "iv", "im", "sc", "unknown-systemic"])),
        dose_range=draw(st.booleans()),
        undated=draw(st.booleans()),
        weekdays=draw(st.none() | st.frozensets(st.integers(0, 6), min_size=1)),
        alternate=draw(st.booleans()),
        mg_per_day=draw(st.none() | st.floats(0, 1000)),
        source=draw(st.sampled_from(["structured", "instruction-text", "unknown"])),
        reason=draw(st.none() | st.sampled_from(["no-dose", "unit-unknown"])),
        start_unknown=draw(st.booleans()),
    )


@settings(max_examples=200, deadline=None)
@given(seg=segments(), start=DAYS, end=DAYS)
def test_on_days_equals_dataclasses_replace(seg: Segment, start: date, end: date) -> None:
    moved = seg.on_days(start, end)
    expected = replace(seg, start=start, end=end)
    assert moved is not seg
    for f in fields(Segment):
        assert getattr(moved, f.name) == getattr(expected, f.name), f.name
    assert (seg.start, seg.end) != (start, end) or moved == seg


@pytest.fixture(scope="module")
def service() -> Service:
    found = load_catalog(REPO / "hooks", KINDS).find("glucocorticoid-safety")
    assert found is not None
    return found


@pytest.mark.parametrize("lookback", [None, 30, 365])
def test_kept_params_equal_the_per_call_ones(service: Service, lookback: int | None) -> None:
    t = service.thresholds
    kept = service.derived(("exposure.params", lookback), lambda: exposure_params(t, lookback))
    assert kept == ExposureParams.from_thresholds(t, lookback)
    assert service.derived(("exposure.params", lookback), _never) is kept


def test_body_windows_are_read_once_and_equal_fresh_ones(service: Service) -> None:
    params = exposure_params(service.thresholds, None)
    fresh = BodyWindows(
        params.body_weight_max_age_days, params.body_height_max_age_days, params.bsa_divisor
    )
    assert params.body_windows == fresh
    assert params.body_windows is params.body_windows
    assert replace(params, bsa_divisor=1.0).body_windows.bsa_divisor == 1.0


def test_role_days_equal_the_current_use_section(service: Service) -> None:
    t = service.thresholds
    role_days = _role_days(t)
    assert dict(role_days) == {role: v.value for role, v in t.section("current_use").items()}
    with pytest.raises(TypeError):
        role_days["x"] = 1.0  # type: ignore[index]


def _never() -> Any:
    raise AssertionError("built again")


def _reference_entry(entries: list[Any]) -> Any:
    """The doseAndRate entry the two-pass search picked before (ordered, else not calculated,
    else the first)."""

    def type_code(entry: Any) -> str:
        concept = entry.type
        if concept is None:
            return ""
        return next((str(c.code) for c in (concept.coding or []) if c.code), "")

    entry = next((e for e in entries if type_code(e) == "ordered"), None)
    return entry or next((e for e in entries if type_code(e) != "calculated"), entries[0])


TYPE_CODES = st.lists(
    st.sampled_from([None, "ordered", "calculated", "other", ""]), min_size=1, max_size=4
)


@settings(max_examples=200, deadline=None)
@given(codes=TYPE_CODES)
def test_dose_entry_choice_equals_the_two_pass_search(codes: list[str | None]) -> None:
    entries = [
        {
            **({"type": {"coding": [{"code": code}] if code else []}} if code is not None else {}),
            "doseQuantity": {"value": index + 1, "code": "mg", "unit": "mg"},
        }
        for index, code in enumerate(codes)
    ]
    dosage = Dosage.model_validate({"doseAndRate": entries})
    expected = _reference_entry(list(dosage.doseAndRate or []))
    drug = DrugInfo("8640", "prednisone", None, None, excluded=False, oral_form=True)
    found = dose_per_administration(dosage, drug)
    assert found.mg == float(expected.doseQuantity.value)
