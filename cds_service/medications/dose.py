"""The dose of one administration from structured data, with how it was derived.

The ladder (the issue "never silent"; clinical-knowledge.md D3): a dose in a mass unit
(``structured``); in countable units, mL or packs times the product strength
(``product-strength``); per kg body weight or per m² body surface area (``weight-based``: the
amount per kg or m² is returned, the exposure engine scales it with the patient's
measurements). The instruction text is the next rung (:mod:`~cds_service.medications.sig`,
used by the exposure engine when this gives no dose). When no dose can be read, ``reason``
says why, as a short code the card can show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from cds_service.fhir.views import CodeableConcept, Dosage, Quantity
from cds_service.medications.knowledge import DrugInfo
from cds_service.medications.units import (
    COUNT_UNITS,
    MASS_TO_MG,
    PACK_UNITS,
    POUND_KG,
    VOLUME_TO_ML,
    mass_mg,
    normalize_unit,
)

DoseSource = Literal[
    "structured",
    "product-strength",
    "weight-based",
    "instruction-text",
    "dispensed-supply",
    "unknown",
]
# Why no dose: the codes a card may show (documented on exposure.Course).
DoseReason = Literal[
    "no-dose",
    "unit-unknown",
    "strength-missing",
    "weight-missing",
    "height-missing",
    "unreadable-instruction",
    "taper-unstated",
    "no-peq-factor",
    "supply-unknown",
    "not-positive",
]
BodyBasis = Literal["kg", "m2"]
# Ranked from the most to the least direct: a course summed from several dosages reports the
# least direct source it used.
SOURCE_RANK: dict[DoseSource, int] = {
    "structured": 0,
    "product-strength": 1,
    "dispensed-supply": 2,
    "weight-based": 3,
    "instruction-text": 4,
    "unknown": 5,
}

# "mg/kg", "mg/[lb_av]", "mg/m2", "mg/m²": a mass per unit of body weight or surface area.
_PER_BODY = re.compile(r"^(?P<mass>[a-zµμ]+)\s*/\s*(?P<body>kg|m2|m\^2|m²|\[lb_av\]|lb)$")


@dataclass(frozen=True)
class Dose:
    """One administration: ``mg`` of the ingredient, or None with a ``reason``.

    ``per_body``: a weight-based dose, (basis, mg per kg or per m²), still to be scaled by the
    patient's weight or body surface area (``mg`` is None until then).
    """

    mg: float | None
    dose_range: bool
    source: DoseSource = "unknown"
    reason: DoseReason | None = None
    per_body: tuple[BodyBasis, float] | None = None


NO_DOSE = Dose(None, False, "unknown", "no-dose")


def read_quantity(
    value: float, quantity: Quantity, drug: DrugInfo, *, ranged: bool = False
) -> Dose:
    """``value`` units of ``quantity`` as a dose (mass, count, volume, pack or per body)."""
    unit = normalize_unit(quantity)
    if not unit:
        return Dose(None, ranged, "unknown", "unit-unknown")
    mg = mass_mg(value, unit)
    if mg is not None:
        return Dose(mg, ranged, "structured")
    per_body = _per_body(value, unit)
    if per_body is not None:
        return Dose(None, ranged, "weight-based", per_body=per_body)
    if unit not in COUNT_UNITS and unit not in PACK_UNITS and unit not in VOLUME_TO_ML:
        return Dose(None, ranged, "unknown", "unit-unknown")
    mg = _by_strength(value, unit, drug)
    if mg is None:
        return Dose(None, ranged, "unknown", "strength-missing")
    return Dose(mg, ranged, "product-strength")


def _per_body(value: float, unit: str) -> tuple[BodyBasis, float] | None:
    found = _PER_BODY.match(unit)
    if found is None or found.group("mass") not in MASS_TO_MG:
        return None
    mg = value * MASS_TO_MG[found.group("mass")]
    body = found.group("body")
    if body == "kg":
        return "kg", mg
    if body in ("lb", "[lb_av]"):
        return "kg", mg / POUND_KG  # per pound -> per kg
    return "m2", mg


def _by_strength(value: float, unit: str, drug: DrugInfo) -> float | None:
    strength = drug.strength
    if strength is None:
        return None
    if unit in COUNT_UNITS and strength.mg_per_unit is not None:
        return value * strength.mg_per_unit
    if unit in PACK_UNITS and strength.mg_per_unit is not None and drug.pack_units:
        return value * drug.pack_units * strength.mg_per_unit
    ml = VOLUME_TO_ML.get(unit)
    if ml is not None and strength.mg_per_ml is not None:
        return value * ml * strength.mg_per_ml
    return None


def quantity_mg(value: float, quantity: Quantity, drug: DrugInfo) -> float | None:
    """Ingredient mg in ``value`` units of ``quantity`` (mass, count, volume or pack).

    None for a weight- or area-based unit (mg/kg, mg/m2), no unit, or a count/volume/pack
    unit the product's strength does not cover.
    """
    return read_quantity(value, quantity, drug).mg


def amount_mg(quantity: Quantity | None, drug: DrugInfo) -> float | None:
    """Ingredient mg in a whole Quantity (a dispensed amount, an administered dose)."""
    if quantity is None or quantity.value is None:
        return None
    return quantity_mg(float(quantity.value), quantity, drug)


def amount_dose(quantity: Quantity | None, drug: DrugInfo) -> Dose:
    """A whole Quantity (an administered dose) as a :class:`Dose`."""
    if quantity is None or quantity.value is None:
        return NO_DOSE
    return read_quantity(float(quantity.value), quantity, drug)


def dose_per_administration(dosage: Dosage, drug: DrugInfo) -> Dose:
    """The dose of one administration: ``ordered`` beats ``calculated``; a doseRange gives its
    high value (else its low one) with ``dose_range=True``."""
    entries = list(dosage.doseAndRate or [])
    if not entries:
        return NO_DOSE
    types = [_type_code(e.type) for e in entries]
    if "ordered" in types:
        index = types.index("ordered")
    else:
        index = next((i for i, t in enumerate(types) if t != "calculated"), 0)
    entry = entries[index]
    if entry.doseQuantity is not None and entry.doseQuantity.value is not None:
        return read_quantity(float(entry.doseQuantity.value), entry.doseQuantity, drug)
    rng = entry.doseRange
    if rng is not None:
        bound = rng.high if rng.high is not None and rng.high.value is not None else rng.low
        if bound is not None and bound.value is not None:
            return read_quantity(float(bound.value), bound, drug, ranged=True)
    return NO_DOSE


def _type_code(concept: CodeableConcept | None) -> str:
    """The first code of doseAndRate.type ("" without one)."""
    if concept is None:
        return ""
    for coding in concept.coding or ():
        if coding.code:
            return str(coding.code)
    return ""


def weakest_source(sources: list[DoseSource]) -> DoseSource:
    """The least direct of several sources (a course summed from several dosages)."""
    return max(sources, key=SOURCE_RANK.__getitem__, default="unknown")
