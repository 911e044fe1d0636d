"""FHIR data-type plumbing: codings and texts of a CodeableConcept, content keys, references."""

from __future__ import annotations

from decimal import Decimal

from cds_service.fhir.views import CodeableConcept, Quantity
from cds_service.valuesets import Coding

# Everything the engine reads from a CodeableConcept / Quantity, as hashable memo keys.
CodingKey = tuple[str | None, str | None, str | None]
ConceptKey = tuple[str | None, tuple[CodingKey, ...]] | None
QuantityKey = tuple[Decimal | None, str | None, str | None] | None


def codings_of(concept: CodeableConcept | None) -> list[Coding]:
    """Plain codings of a CodeableConcept (None -> [])."""
    if concept is None:
        return []
    return [Coding(c.system, c.code, c.display) for c in (concept.coding or [])]


def texts_of(concept: CodeableConcept | None) -> list[str]:
    """``text`` then coding displays of a CodeableConcept (None -> [])."""
    if concept is None:
        return []
    out = [concept.text] if concept.text else []
    out.extend(c.display for c in (concept.coding or []) if c.display)
    return out


def concept_key(concept: CodeableConcept | None) -> ConceptKey:
    """Everything ``codings_of``/``texts_of`` read from a CodeableConcept, as a hashable key."""
    if concept is None:
        return None
    return (concept.text, tuple((c.system, c.code, c.display) for c in (concept.coding or [])))


def quantity_key(quantity: Quantity | None) -> QuantityKey:
    """Everything the strength and dose readers take from a Quantity, as a hashable key."""
    if quantity is None:
        return None
    return (quantity.value, quantity.code, quantity.unit)
