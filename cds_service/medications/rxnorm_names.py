"""RxNorm normalised product names taken apart (clinical-knowledge.md D6).

"prednisone 20 MG Oral Tablet", "1 ML methylprednisolone acetate 40 MG/ML Injectable
Suspension", "{21 (methylprednisolone 4 MG Oral Tablet) } Pack": the grammar is generic, the
ingredient names come from the value sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cds_service.medications.strength import Strength

# Optional "N ML " volume prefix, ingredient words, strength, unit, dose form. Packs wrap one
# component: "{21 (... Oral Tablet) } Pack".
_RXNORM_NAME = re.compile(
    r"^(?:(?P<qty>\d+(?:\.\d+)?) (?:HR|ML|ACTUAT) )?"
    r"(?P<ing>[a-z][a-z ,\-]+?) (?P<num>\d+(?:\.\d+)?) "
    r"(?P<unit>MG|MCG|MG/ML|MCG/ML|MG/MG) (?P<form>[A-Z].*)$"
)
_PACK_NAME = re.compile(r"^\{\s*(?P<n>\d+)\s*\((?P<inner>[^()]*)\)\s*\}\s*Pack\b")
ORAL_FORM = re.compile(r"\boral\b", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedName:
    """An RxNorm normalised product name taken apart."""

    ingredient_words: str
    strength: Strength
    pack_units: int | None
    oral: bool


def parse_rxnorm_name(name: str) -> ParsedName | None:
    """Parse "prednisone 20 MG Oral Tablet"-style names; None if the grammar does not fit."""
    pack_units: int | None = None
    text = name.strip()
    pack = _PACK_NAME.match(text)
    if pack is not None:
        pack_units = int(pack.group("n"))
        text = pack.group("inner").strip()
    text = re.sub(r"\s*\[[^\]]*\]", "", text)  # SBD brand suffix "[Medrol]"
    m = _RXNORM_NAME.match(text)
    if m is None:
        return None
    strength = _name_strength(float(m.group("num")), m.group("unit"), m.group("qty"), text)
    if strength is None:
        return None
    return ParsedName(m.group("ing").strip(), strength, pack_units, bool(ORAL_FORM.search(text)))


def _name_strength(value: float, unit: str, qty: str | None, text: str) -> Strength | None:
    """Strength from the name's number and unit; a "N ML" prefix gives the mg per unit."""
    if unit in ("MG", "MCG"):
        return Strength(mg_per_unit=value * (0.001 if unit == "MCG" else 1.0))
    if unit in ("MG/ML", "MCG/ML"):
        per_ml = value * (0.001 if unit == "MCG/ML" else 1.0)
        vol = float(qty) if qty is not None and " ML " in f" {text} " else None
        return Strength(mg_per_unit=per_ml * vol if vol else None, mg_per_ml=per_ml)
    return None  # MG/MG: pastes and creams; never a countable systemic dose
