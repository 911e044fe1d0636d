"""The view primitive types (cds_service.fhir.primitives) decide and convert exactly as
fhir_core's: same accepted values, same rejected ones, same Python value and type."""

from __future__ import annotations

import datetime
import decimal
import enum
import itertools
from typing import Any

import fhir_core.types as fhir
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from cds_service.fhir import primitives

PAIRS = {
    "dateTime": (primitives.DateTimeType, fhir.DateTimeType),
    "date": (primitives.DateType, fhir.DateType),
    "instant": (primitives.InstantType, fhir.InstantType),
    "time": (primitives.TimeType, fhir.TimeType),
    "decimal": (primitives.DecimalType, fhir.DecimalType),
}
ADAPTERS: dict[str, tuple[TypeAdapter[Any], TypeAdapter[Any]]] = {
    name: (TypeAdapter(ours), TypeAdapter(theirs)) for name, (ours, theirs) in PAIRS.items()
}


def _outcome(adapter: TypeAdapter[Any], value: Any) -> tuple[str, Any, str]:
    try:
        result = adapter.validate_python(value)
    except (ValidationError, ValueError, TypeError):
        return ("rejected", None, "")
    return ("accepted", type(result), repr(result))  # repr: Decimal('1.0') != Decimal('1.00')


def _same(kind: str, value: Any) -> None:
    ours, theirs = ADAPTERS[kind]
    assert _outcome(ours, value) == _outcome(theirs, value), (kind, value)


# Forms of each part: valid, at the edges, and just off them.
YEARS = ["2019", "0001", "0000", "1000", "9999", "199", "20190", "٢٠١٩"]
MONTHS = ["", "-01", "-12", "-00", "-13", "-1", "-02"]
DAYS = ["", "-01", "-28", "-29", "-30", "-31", "-32", "-00", "-7"]
TIMES = [
    "", "T10:00:00", "T23:59:59", "T24:00:00", "T23:60:00", "T23:59:60", "T10:00",
    "T10:00:00.5", "T10:00:00.123456789", "T00:00:00.000", "T10:00:00.", " 10:00:00",
]  # fmt: skip
ZONES = ["", "Z", "+00:00", "-05:00", "+14:00", "+14:01", "-13:59", "+15:00", "+0500", "z"]
TEXT = [
    "", " ", "2019-04-02 ", " 2019-04-02", "2019-04-02\n", "2019\n", "2019-04-02T10:00:00Z\n",
    "1700000000", "2019-W14", "2019-092", "20190402", "2019/04/02", "now", "today",
    "2016-12-31T23:59:60Z", "2016-12-31T23:59:60.5+01:00", "2019-02-29", "2020-02-29",
    "2019-04-31", "2019-04-02T10:00:00.1234567+05:00",
]  # fmt: skip
OTHER: list[Any] = [
    None, True, False, 0, 1, -1, 1700000000, 1.5, 20190402, [], {}, b"2019-04-02",
    datetime.date(2019, 4, 2), datetime.datetime(2019, 4, 2, 10, 0),  # noqa: DTZ001 (naive on purpose)
    datetime.datetime(2019, 4, 2, 10, 0, tzinfo=datetime.UTC), datetime.time(10, 0),
]  # fmt: skip


def _date_strings() -> list[str]:
    return [
        year + month + day + time + zone
        for year, month, day, time, zone in itertools.product(YEARS, MONTHS, DAYS, TIMES, ZONES)
    ]


@pytest.mark.parametrize("kind", ["dateTime", "date", "instant"])
def test_dates_and_times_of_every_form(kind: str) -> None:
    for value in [*_date_strings(), *TEXT, *OTHER]:
        _same(kind, value)


def test_times() -> None:
    for value in [t[1:] + zone for t in TIMES for zone in ZONES] + TEXT + OTHER:
        _same("time", value)
    for value in ["10:00:00", "23:59:60", "24:00:00", "08:00", "08:00:00.5", "8:00:00"]:
        _same("time", value)


def test_the_usual_values_keep_fhir_cores_types() -> None:
    """A partial date stays the string, a full date is a date, a leap second stays a string."""
    ours = ADAPTERS["dateTime"][0]
    assert ours.validate_python("2019") == "2019"
    assert ours.validate_python("2019-04") == "2019-04"
    assert type(ours.validate_python("2019-04-02")) is datetime.date
    utc = datetime.datetime(2019, 4, 2, 10, 0, tzinfo=datetime.UTC)
    assert ours.validate_python("2019-04-02T10:00:00Z") == utc
    assert ours.validate_python("2016-12-31T23:59:60Z") == "2016-12-31T23:59:60Z"
    assert ADAPTERS["decimal"][0].validate_python(10.50) == decimal.Decimal("10.5")


class _Level(enum.IntEnum):
    HIGH = 3


class _Ratio(float):
    pass


DECIMALS: list[Any] = [
    0, 1, -1, 5, 2**31, 2**70, -(2**70), 0.0, -0.0, 1.0, 10.5, 10.50, 0.1, 1e2, 1e16, 1e-7,
    1.5e300, 5e-324, 123456789.123456789, float("inf"), float("nan"), True, False, None,
    "5", "5.0", "10.50", "1e2", "1E+2", "-0", "-0.0", "00", "01", "+1", ".5", "5.", " 5",
    "5 ", "1_000", "NaN", "Infinity", "0x10", "", "abc", [], {},
    decimal.Decimal("1.0"), decimal.Decimal("NaN"), decimal.Decimal("-0"), decimal.Decimal("1.50"),
    _Level.HIGH, _Ratio(2.50),
]  # fmt: skip


def test_decimals() -> None:
    for value in DECIMALS:
        _same("decimal", value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True)))
def test_any_json_number_as_a_decimal(value: int | float) -> None:
    _same("decimal", value)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789-+:.TZ ", max_size=30))
def test_any_string_of_date_characters(value: str) -> None:
    for kind in ("dateTime", "date", "instant", "time", "decimal"):
        _same(kind, value)


def test_in_a_model_a_field_is_dumped_as_fhir_core_dumps_it() -> None:
    class Ours(BaseModel):
        when: primitives.DateTimeType | None = None
        value: primitives.DecimalType | None = None

    class Theirs(BaseModel):
        when: fhir.DateTimeType | None = None
        value: fhir.DecimalType | None = None

    for raw in ({"when": "2019-04", "value": 1.5}, {"when": "2019-04-02T10:00:00Z", "value": 2}):
        ours, theirs = Ours.model_validate(raw), Theirs.model_validate(raw)
        for mode in ("python", "json"):
            dumped = ours.model_dump(mode=mode, warnings=False)
            assert dumped == theirs.model_dump(mode=mode, warnings=False)
