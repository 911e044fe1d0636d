"""A product's strength: mg of ingredient per countable unit and/or per mL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cds_service.fhir.views import Ratio
from cds_service.medications.units import (
    COUNT_UNITS,
    VOLUME_TO_ML,
    mass_mg,
    normalize_unit,
    to_float,
)


@dataclass(frozen=True)
class Strength:
    """Amount of ingredient in mg per countable unit (tablet, vial) and/or per mL."""

    mg_per_unit: float | None = None
    mg_per_ml: float | None = None


# A number as value-set JSON or a FHIR model gives it (Decimal, float, int, numeric text).
Number = Decimal | float | int | str


def strength_of(
    num_value: Number | None, num_unit: str, den_value: Number | None, den_unit: str
) -> Strength | None:
    """Strength of ``num_value num_unit`` per ``den_value den_unit``; None unless the
    numerator is a mass and the denominator a countable unit or a volume."""
    if num_value is None or not den_value:
        return None
    mg = mass_mg(float(num_value), num_unit)
    if mg is None:
        return None
    per = mg / float(den_value)
    if den_unit in COUNT_UNITS:
        return Strength(mg_per_unit=per)
    ml = VOLUME_TO_ML.get(den_unit)
    if ml is not None:
        return Strength(mg_per_ml=per / ml)
    return None


def ratio_dict_strength(ratio: Mapping[str, Any]) -> Strength | None:
    """Strength from a Ratio written as JSON (the products value set's ``strength`` property).

    ``Any``: the property is content JSON, so any value may sit in it.
    """
    num = ratio.get("numerator") or {}
    den = ratio.get("denominator") or {}
    num_value, den_value = num.get("value"), den.get("value", 1)
    num_unit = str(num.get("code") or num.get("unit") or "").lower()
    den_unit = str(den.get("code") or den.get("unit") or "1").lower()
    return strength_of(num_value, num_unit, den_value, den_unit)


def ratio_strength(ratio: Ratio | None) -> Strength | None:
    """Strength from a FHIR Ratio (Medication.ingredient.strength); no denominator means 1."""
    if ratio is None or ratio.numerator is None:
        return None
    den = ratio.denominator
    den_value = to_float(den.value) if den is not None else 1.0
    den_unit = normalize_unit(den) if den is not None else "1"
    return strength_of(
        to_float(ratio.numerator.value), normalize_unit(ratio.numerator), den_value, den_unit or "1"
    )
