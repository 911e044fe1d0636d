"""Body weight and height from Observations, for weight-based doses (mg/kg, mg/m²).

The Observations come from the record (the prefetch asks for the ``body_weight`` and
``body_height`` value-set roles); which codes count is content (``GlucocorticoidKnowledge``),
how old a measurement may be is a threshold (``ExposureParams``). A dose per kg uses the latest
weight, per m² the body surface area from the latest weight and height (Mosteller: the square
root of height in cm times weight in kg over ``bsa_divisor``). "Latest" means measured on or
before today and no longer than the window before the course starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo

from cds_service.exposure.dates import to_day
from cds_service.fhir.views import Observation, Resource
from cds_service.medications import (
    BODY_MASS_TO_KG,
    LENGTH_TO_CM,
    Dose,
    normalize_unit,
)
from cds_service.valuesets import ValueSet

_USABLE_STATUSES = frozenset({"final", "amended", "corrected", "preliminary"})


@dataclass(frozen=True)
class BodyMeasurements:
    """(day, value) series sorted by day: weight in kg, height in cm."""

    weights: tuple[tuple[date, float], ...] = ()
    heights: tuple[tuple[date, float], ...] = ()


@dataclass(frozen=True)
class BodyWindows:
    """How old a measurement may be (days before the course start), and the BSA divisor."""

    weight_days: int
    height_days: int
    bsa_divisor: float


def read_measurements(
    resources: Sequence[Resource],
    weight: ValueSet | None,
    height: ValueSet | None,
    tz: tzinfo | None,
) -> BodyMeasurements:
    """Weights and heights among ``resources`` (Observations coded in the value sets, with a
    usable status, a date and a quantity in a mass or length unit); others are ignored."""
    weights: list[tuple[date, float]] = []
    heights: list[tuple[date, float]] = []
    for resource in resources:
        if not isinstance(resource, Observation) or str(resource.status) not in _USABLE_STATUSES:
            continue
        if weight is not None and _coded_in(resource, weight):
            _append(weights, resource, BODY_MASS_TO_KG, tz)
        elif height is not None and _coded_in(resource, height):
            _append(heights, resource, LENGTH_TO_CM, tz)
    return BodyMeasurements(tuple(sorted(weights)), tuple(sorted(heights)))


def _coded_in(obs: Observation, valueset: ValueSet) -> bool:
    codings = obs.code.coding or ()  # Observation.code is required
    return any(valueset.match_code(c.system, c.code) is not None for c in codings)


def _append(
    out: list[tuple[date, float]], obs: Observation, units: Mapping[str, float], tz: tzinfo | None
) -> None:
    quantity = obs.valueQuantity
    if quantity is None or quantity.value is None:
        return
    factor = units.get(normalize_unit(quantity))
    period = obs.effectivePeriod
    raw = obs.effectiveDateTime or obs.effectiveInstant or (period.start if period else None)
    day = to_day(raw or obs.issued, tz)
    value = float(quantity.value) * factor if factor is not None else 0.0
    if day is not None and value > 0:
        out.append((day.value, value))


def _latest(series: tuple[tuple[date, float], ...], since: date, today: date) -> float | None:
    found = [value for day, value in series if since <= day <= today]
    return found[-1] if found else None


def scale_dose(
    dose: Dose, body: BodyMeasurements, windows: BodyWindows, on: date, today: date
) -> Dose:
    """The structured dose of an order, statement or administration in mg for a course starting
    ``on``: a weight-based dose (``Dose.per_body``) scaled, any other unchanged. Without the
    measurement the dose stays unknown ("weight-missing", "height-missing"); zero or less is an
    entry error, not "no glucocorticoid", so it is unknown too ("not-positive")."""
    scaled = _scaled(dose, body, windows, on, today)
    if scaled.mg is not None and scaled.mg <= 0:
        return Dose(None, scaled.dose_range, "unknown", "not-positive")
    return scaled


def _scaled(
    dose: Dose, body: BodyMeasurements, windows: BodyWindows, on: date, today: date
) -> Dose:
    if dose.per_body is None:
        return dose
    basis, per_unit = dose.per_body
    kg = _latest(body.weights, on - timedelta(days=windows.weight_days), today)
    if kg is None:
        return Dose(None, dose.dose_range, "unknown", "weight-missing")
    if basis == "kg":
        return Dose(per_unit * kg, dose.dose_range, "weight-based")
    cm = _latest(body.heights, on - timedelta(days=windows.height_days), today)
    if cm is None:
        return Dose(None, dose.dose_range, "unknown", "height-missing")
    bsa = math.sqrt(cm * kg / windows.bsa_divisor)
    return Dose(per_unit * bsa, dose.dose_range, "weight-based")
