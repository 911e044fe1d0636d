"""Which systemic glucocorticoid a FHIR medication record names, with its strength.

Identification order (clinical-knowledge.md D2, D6):

1. ``glucocorticoid-excluded`` matched by *code* (budesonide, fludrocortisone, dental paste,
   non-systemic ATC) -> excluded, whatever else is said.
2. ``glucocorticoid-products`` by code -> ingredient, strength, pack units, dose form.
3. ``glucocorticoid-ingredients`` by code (IN, PIN or ATC; the ``ingredient`` property maps a
   PIN/ATC to the IN), then ``Medication.ingredient[].itemCodeableConcept``, then the text
   fallback: ingredient names from the value set's ``ingredient-name`` property, matched as
   whole words, longest first (``methylprednisolone`` never reads as ``prednisolone``,
   ``hydrocortisone``/``fludrocortisone`` never as ``cortisone``).
4. A systemic GC whose product text, dose form or route matches ``glucocorticoid-excluded``
   or ``nonsystemic-routes`` is excluded (inhaled, topical, ophthalmic, intra-articular...).
   The route comes from ``Dosage.route`` (with its site and method), the dose form and the
   product only, never from the instruction text.

Strength: the product's ``strength`` property, else ``Medication.ingredient[].strength``,
else the RxNorm name parsed from text/displays (:mod:`~cds_service.medications.rxnorm_names`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cds_service.fhir.references import relative_reference
from cds_service.fhir.views import CodeableConcept, Medication, Reference, Resource
from cds_service.medications.concepts import (
    codings_of,
    concept_key,
    quantity_key,
    texts_of,
)
from cds_service.medications.knowledge import (
    DrugInfo,
    GlucocorticoidKnowledge,
    IdentifyKey,
    MedicationKey,
)
from cds_service.medications.rxnorm_names import ORAL_FORM, ParsedName, parse_rxnorm_name
from cds_service.medications.strength import Strength, ratio_dict_strength, ratio_strength
from cds_service.valuesets import Coding

# An excluded glucocorticoid (by code or by name): reported, never counted.
_EXCLUDED = DrugInfo("", "", None, None, excluded=True, oral_form=False)
_ORAL_DOSE_FORMS = ("tablet", "solution", "pack")


def identify_drug(
    concept: CodeableConcept | None,
    reference: Reference | None,
    contained: Sequence[Resource],
    medications: Mapping[str, Medication],
    knowledge: GlucocorticoidKnowledge,
    extra_texts: Iterable[str] = (),
) -> DrugInfo | None:
    """Identify the glucocorticoid in ``medication[x]``; None if the record is not one.

    ``extra_texts`` are the dosages' route, site and method texts, checked against the
    exclusion patterns. A GC excluded by code (budesonide...) comes back with ``excluded=True``.
    Memoised on ``knowledge`` by the content identification reads.
    """
    med = _resolve_medication(reference, contained, medications)
    texts = tuple(extra_texts)
    return knowledge.identify_memo.get(
        _identify_key(concept, reference, med, texts),
        lambda: identify(concept, reference, med, knowledge, texts),
    )


def _resolve_medication(
    reference: Reference | None,
    contained: Sequence[Resource],
    medications: Mapping[str, Medication],
) -> Medication | None:
    if reference is None or not reference.reference:
        return None
    ref = str(reference.reference)
    if ref.startswith("#"):
        for res in contained:
            if isinstance(res, Medication) and res.id == ref[1:]:
                return res
        return None
    return medications.get(relative_reference(ref))


def _identify_key(
    concept: CodeableConcept | None,
    reference: Reference | None,
    med: Medication | None,
    extra_texts: tuple[str, ...],
) -> IdentifyKey:
    """Memo key: every field :func:`identify` reads once the Medication is resolved."""
    if concept is None and med is not None:
        concept = med.code
    med_key: MedicationKey | None = None
    if med is not None:
        items = tuple(
            (
                concept_key(i.itemCodeableConcept),
                None
                if i.strength is None
                else (quantity_key(i.strength.numerator), quantity_key(i.strength.denominator)),
            )
            for i in (med.ingredient or [])
        )
        med_key = (concept_key(med.form), items)
    display = reference.display if reference is not None else None
    return (concept_key(concept), display, med_key, extra_texts)


def identify(
    concept: CodeableConcept | None,
    reference: Reference | None,
    med: Medication | None,
    knowledge: GlucocorticoidKnowledge,
    extra_texts: Sequence[str],
) -> DrugInfo | None:
    """:func:`identify_drug` without the memo, the Medication already resolved."""
    if concept is None and med is not None:
        concept = med.code
    codings = codings_of(concept)
    texts = texts_of(concept)
    if reference is not None and reference.display:
        texts.append(str(reference.display))
    form_texts: list[str] = []
    item_concepts: list[CodeableConcept | None] = []
    if med is not None:
        form_texts = texts_of(med.form)
        item_concepts = [i.itemCodeableConcept for i in (med.ingredient or [])]

    if _excluded_by_code(codings, item_concepts, knowledge):
        return _EXCLUDED
    info = _identify_systemic(codings, texts, med, item_concepts, knowledge)
    if info is None:
        excluded_names = knowledge.excluded_name_pattern
        if excluded_names is not None and any(excluded_names.search(t) for t in texts):
            return _EXCLUDED
        return None
    return _apply_form_and_route(info, texts, form_texts, extra_texts, knowledge)


def _excluded_by_code(
    codings: list[Coding],
    item_concepts: list[CodeableConcept | None],
    knowledge: GlucocorticoidKnowledge,
) -> bool:
    """A code of the medication or of one of its ingredients is in ``glucocorticoid-excluded``."""
    for coding in codings + [c for ic in item_concepts for c in codings_of(ic)]:
        if knowledge.excluded.match_code(coding.system, coding.code) is not None:
            return True
    return False


def _apply_form_and_route(
    info: DrugInfo,
    texts: list[str],
    form_texts: list[str],
    extra_texts: Sequence[str],
    knowledge: GlucocorticoidKnowledge,
) -> DrugInfo:
    """Excluded when a text, dose form or route is non-systemic; oral when the form says so."""
    exclusion_texts = [*texts, *form_texts, *extra_texts]
    if any(knowledge.excluded.match_text(t) for t in exclusion_texts) or any(
        knowledge.nonsystemic_routes.match_text(t) for t in [*form_texts, *extra_texts]
    ):
        return DrugInfo(info.ingredient, info.ingredient_name, None, None, True, False)
    if not info.oral_form and any(ORAL_FORM.search(t) for t in form_texts):
        return DrugInfo(
            info.ingredient, info.ingredient_name, info.strength, info.pack_units, False, True
        )
    return info


def _identify_systemic(
    codings: list[Coding],
    texts: list[str],
    med: Medication | None,
    item_concepts: list[CodeableConcept | None],
    knowledge: GlucocorticoidKnowledge,
) -> DrugInfo | None:
    """A systemic GC by product code, else by ingredient code, Medication item or text."""
    parsed = next((p for p in map(parse_rxnorm_name, texts) if p is not None), None)
    for coding in codings:
        product = knowledge.products.match_code(coding.system, coding.code)
        if product is not None:
            return _product_drug(product.properties, parsed, knowledge)

    ingredient, name = _ingredient_from_codes(codings, knowledge)
    med_strength: Strength | None = None
    item = _ingredient_item(med, item_concepts, ingredient, knowledge)
    if item is not None:
        ingredient, name, med_strength = item
    if not ingredient:
        ingredient, name = _ingredient_from_text(texts, knowledge)
        if not _named_by_text(ingredient, texts, codings, knowledge):
            return None
    strength = med_strength or (parsed.strength if parsed else None)
    oral = parsed.oral if parsed else False
    return DrugInfo(ingredient, name, strength, parsed.pack_units if parsed else None, False, oral)


def _product_drug(
    props: Mapping[str, Any], parsed: ParsedName | None, knowledge: GlucocorticoidKnowledge
) -> DrugInfo:
    """A product concept's drug: its properties, with the parsed name filling the gaps.

    ``Any``: concept properties are content JSON.
    """
    ingredient = str(props.get("ingredient", ""))
    name = knowledge.ingredient_names.get(ingredient, str(props.get("ingredient-name", "")))
    strength_prop = props.get("strength")
    strength = ratio_dict_strength(strength_prop) if isinstance(strength_prop, Mapping) else None
    pack = props.get("pack-units")
    pack_units = int(pack) if isinstance(pack, int) else None
    if parsed is not None:
        strength = parsed.strength if strength is None else strength
        pack_units = parsed.pack_units if pack_units is None else pack_units
    form = str(props.get("dose-form", "")).lower()
    oral = (parsed.oral if parsed else False) or form in _ORAL_DOSE_FORMS
    return DrugInfo(ingredient, name, strength, pack_units, False, oral)


def _ingredient_item(
    med: Medication | None,
    item_concepts: list[CodeableConcept | None],
    ingredient: str,
    knowledge: GlucocorticoidKnowledge,
) -> tuple[str, str, Strength | None] | None:
    """The first ``Medication.ingredient`` naming a GC (``ingredient`` itself, when known):
    its code, name and strength."""
    if med is None:
        return None
    for item, concept in zip(med.ingredient or [], item_concepts, strict=False):
        code, item_name = _ingredient_from_codes(codings_of(concept), knowledge)
        if not code:
            code, item_name = _ingredient_from_text(texts_of(concept), knowledge)
        if code and (not ingredient or code == ingredient):
            return code, item_name, ratio_strength(item.strength)
    return None


def _named_by_text(
    ingredient: str, texts: list[str], codings: list[Coding], knowledge: GlucocorticoidKnowledge
) -> bool:
    """Whether a record with no GC code counts as one from its texts."""
    by_pattern = any(knowledge.ingredients.match_text(t) for t in texts)
    vetoed = any(knowledge.ingredients.is_excluded(c.system, c.code) for c in codings)
    if vetoed or not (ingredient or by_pattern):
        return False
    # The value set's own text rules (text-exclude-pattern) have the last word.
    return knowledge.ingredients.text_pattern is None or by_pattern


def _ingredient_from_codes(
    codings: list[Coding], knowledge: GlucocorticoidKnowledge
) -> tuple[str, str]:
    match = knowledge.ingredients.match(codings, None)
    if match is None or match.concept is None:
        return "", ""
    props = match.concept.properties
    code = str(props.get("ingredient") or match.concept.code)
    name = knowledge.ingredient_names.get(code) or str(
        props.get("ingredient-name") or match.concept.display
    )
    return code, name


def _ingredient_from_text(texts: list[str], knowledge: GlucocorticoidKnowledge) -> tuple[str, str]:
    pattern = knowledge.name_pattern
    if pattern is None:
        return "", ""
    text_exclude = knowledge.ingredients.text_exclude
    for text in texts:
        if text_exclude is not None and text_exclude.search(text):
            continue
        found = pattern.search(text)
        if found is not None:
            code = knowledge.code_by_name[found.group(1).lower()]
            return code, knowledge.ingredient_names[code]
    return "", ""
