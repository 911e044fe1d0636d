"""Units of a FHIR Quantity: UCUM codes and the spellings EHRs put in ``Quantity.unit``.

Generic unit handling only (mass, volume, countable units, time): nothing clinical.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

from cds_service.fhir.views import Quantity

MASS_TO_MG: Mapping[str, float] = {
    "mg": 1.0,
    "milligram": 1.0,
    "milligrams": 1.0,
    "g": 1000.0,
    "gm": 1000.0,
    "gram": 1000.0,
    "grams": 1000.0,
    "ug": 0.001,
    "mcg": 0.001,
    "µg": 0.001,
    "μg": 0.001,
    "microgram": 0.001,
    "micrograms": 0.001,
    "ng": 1e-6,
}
VOLUME_TO_ML: Mapping[str, float] = {
    "ml": 1.0,
    "milliliter": 1.0,
    "milliliters": 1.0,
    "millilitre": 1.0,
    "millilitres": 1.0,
    "cm3": 1.0,
    "l": 1000.0,
}
COUNT_UNITS = frozenset(
    {
        "1",
        "{tbl}",
        "{tablet}",
        "{tablets}",
        "tab",
        "tabs",
        "tablet",
        "tablets",
        "{capsule}",
        "{capsules}",
        "{cap}",
        "cap",
        "caps",
        "capsule",
        "capsules",
        "{pill}",
        "pill",
        "pills",
        "each",
        "ea",
        "{each}",
        "{unit}",
        "{vial}",
        "vial",
        "{syringe}",
        "syringe",
        "{ampule}",
        "ampule",
    }
)
# Body measurements (Observation.valueQuantity): weight in kg, height in cm. The pound is the
# international avoirdupois pound, 0.45359237 kg by definition.
POUND_KG = 0.45359237
BODY_MASS_TO_KG: Mapping[str, float] = {
    "kg": 1.0,
    "g": 0.001,
    "[lb_av]": POUND_KG,
    "lb": POUND_KG,
    "lbs": POUND_KG,
    "pound": POUND_KG,
    "pounds": POUND_KG,
}
LENGTH_TO_CM: Mapping[str, float] = {
    "cm": 1.0,
    "m": 100.0,
    "mm": 0.1,
    "[in_i]": 2.54,
    "in": 2.54,
    "inch": 2.54,
    "inches": 2.54,
}
PACK_UNITS = frozenset({"{pack}", "pack", "packs", "{kit}", "kit", "{package}", "package"})

# FHIR UnitsOfTime (Timing.repeat.periodUnit) and common spellings of Duration units, in days.
UNIT_DAYS: Mapping[str, float] = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "hour": 1 / 24,
    "hours": 1 / 24,
    "d": 1.0,
    "day": 1.0,
    "days": 1.0,
    "wk": 7.0,
    "week": 7.0,
    "weeks": 7.0,
    "mo": 30.0,
    "month": 30.0,
    "months": 30.0,
    "a": 365.0,
    "year": 365.0,
    "years": 365.0,
}

EPS = 1e-9
# Sanity bound on any computed span (data errors such as "boundsDuration 1e9 d").
MAX_SPAN_DAYS = 36500


def to_float(value: Decimal | float | int | None) -> float | None:
    return None if value is None else float(value)


def normalize_unit(quantity: Quantity) -> str:
    """Comparable unit of a Quantity: its code, else its unit text, lower-cased."""
    raw = quantity.code or quantity.unit or ""
    return str(raw).strip().lower()


def mass_mg(value: float, unit: str) -> float | None:
    """``value`` in mg, or None when ``unit`` is not a mass unit."""
    factor = MASS_TO_MG.get(unit)
    return None if factor is None else value * factor


def duration_days(quantity: Quantity | None) -> int | None:
    """A Duration (boundsDuration, expectedSupplyDuration, daysSupply) in whole days.

    None without a value or with a unit that is not a time unit; no unit means days. The
    result is at least 1 and at most ``MAX_SPAN_DAYS``.
    """
    if quantity is None or quantity.value is None:
        return None
    factor = UNIT_DAYS.get(normalize_unit(quantity) or "d")
    if factor is None:
        return None
    days = math.ceil(float(quantity.value) * factor - EPS)
    return min(max(days, 1), MAX_SPAN_DAYS)
