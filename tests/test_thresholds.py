"""hooks/thresholds.toml leaves: numbers and exact ratios."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from cds_service.errors import ContentError
from cds_service.thresholds import load_thresholds, parse_thresholds

HOOKS = Path(__file__).resolve().parents[1] / "hooks"


@pytest.mark.parametrize(
    ("value", "exact"),
    [
        (5, Fraction(5)),
        (2.5, Fraction(5, 2)),
        (0.833, Fraction(833, 1000)),  # a decimal is exactly the decimal written
        (-3.5, Fraction(-7, 2)),
        ("5/6", Fraction(5, 6)),
        (" 5 / 6 ", Fraction(5, 6)),
        ("5/0.75", Fraction(20, 3)),
        ("5/0.6", Fraction(25, 3)),
        ("5/20", Fraction(1, 4)),
        ("-1/2", Fraction(-1, 2)),
    ],
)
def test_values_and_ratios(value: Any, exact: Fraction) -> None:
    t = parse_thresholds({"x": {"y": {"value": value, "unit": "1", "source": "s"}}})
    assert t.exact("x.y") == exact
    assert t.value("x.y") == float(exact)


@pytest.mark.parametrize("value", ["5/0", "five", "5/6/7", "1e3", True, None, [1]])
def test_bad_values_do_not_load(value: Any) -> None:
    with pytest.raises(ContentError, match=r"x\.y\.value"):
        parse_thresholds({"x": {"y": {"value": value, "unit": "1", "source": "s"}}})


# Each drug at the dose equivalent to 30 mg prednisone: exactly on the >= 30 mg line.
THIRTY_MG = [
    ("22396", 36, "deflazacort"),
    ("1514", 3.6, "betamethasone"),
    ("3264", 4.5, "dexamethasone"),
    ("6902", 24, "methylprednisolone"),
    ("10759", 24, "triamcinolone"),
    ("5492", 120, "hydrocortisone"),
    ("2878", 150, "cortisone"),
    ("8640", 30, "prednisone"),
]


@pytest.mark.parametrize(("code", "mg", "name"), THIRTY_MG)
def test_factors_from_the_file_hit_the_30_mg_line(code: str, mg: float, name: str) -> None:
    factor = load_thresholds(HOOKS / "thresholds.toml").exact(f"prednisone_equivalents.{code}")
    assert float(Fraction(mg) * factor) >= 30, name
    assert round(float(Fraction(mg) * factor), 6) == 30, name


def test_an_unknown_path_is_a_content_error() -> None:
    t = parse_thresholds({"a": {"b": {"value": 1, "unit": "mg", "source": "s"}}})
    assert t.value("a.b") == 1.0
    with pytest.raises(ContentError, match=r"unknown threshold 'a\.c'"):
        t.value("a.c")


def test_a_derived_value_is_built_once_per_thresholds() -> None:
    t = parse_thresholds({"a": {"b": {"value": 2, "unit": "mg", "source": "s"}}})
    built: list[int] = []

    def build(thresholds: Any) -> dict[str, str]:
        built.append(1)
        return {"b": str(thresholds.value("a.b"))}

    first = t.derived("test", build)
    assert first == {"b": "2.0"}
    assert t.derived("test", build) is first
    assert built == [1]
