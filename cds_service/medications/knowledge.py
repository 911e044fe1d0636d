"""The offline drug knowledge of a loaded service, and the memoised answers it gives.

:class:`GlucocorticoidKnowledge` holds the value sets and PEQ factors from ``hooks/``. It is
built once per loaded service, so it owns the memos of what is derived from its content
(:class:`~cds_service.memo.Memo`): which drug a medication names and which route a Dosage gives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Literal

from cds_service.medications.concepts import ConceptKey, QuantityKey
from cds_service.medications.rxnorm_names import parse_rxnorm_name
from cds_service.medications.strength import Strength
from cds_service.memo import Memo
from cds_service.valuesets import ValueSet

Route = Literal["oral", "iv", "im", "sc", "unknown-systemic"]


@dataclass(frozen=True)
class DrugInfo:
    """What a medication record is, as far as the exposure engine cares.

    ``excluded`` is True for a glucocorticoid that never counts as systemic exposure;
    ``ingredient`` is then informational. ``oral_form`` is True when the product or its
    name says it is an oral form (route fallback when the dosage has none).
    """

    ingredient: str
    ingredient_name: str
    strength: Strength | None
    pack_units: int | None
    excluded: bool
    oral_form: bool


# Memo keys: every field identification reads once the Medication is resolved (code, reference
# display, Medication form and ingredients with strengths, dosage texts), and what the route
# reads (the Dosage.route concept and whether the product is an oral form).
IngredientKey = tuple[ConceptKey, tuple[QuantityKey, QuantityKey] | None]
MedicationKey = tuple[ConceptKey, tuple[IngredientKey, ...]]
IdentifyKey = tuple[ConceptKey, str | None, MedicationKey | None, tuple[str, ...]]
RouteKey = tuple[ConceptKey, bool]

# The same products and routes recur across records, patients and calls; real records name few
# distinct ones, so a clear when full is rare.
IDENTIFY_MEMO_SIZE = 4096


def _identify_memo() -> Memo[IdentifyKey, DrugInfo | None]:
    return Memo("gc-identify", IDENTIFY_MEMO_SIZE)


def _route_memo() -> Memo[RouteKey, Route]:
    return Memo("gc-route", IDENTIFY_MEMO_SIZE)


@dataclass(frozen=True)
class GlucocorticoidKnowledge:
    """Offline content for the exposure engine (all of it from hooks/).

    The memos are not constructor arguments (``init=False``): every knowledge object, also one
    made by ``dataclasses.replace``, starts with its own empty memos.
    """

    ingredients: ValueSet
    products: ValueSet
    excluded: ValueSet
    nonsystemic_routes: ValueSet
    intravenous_routes: ValueSet
    # RxNorm IN code -> mg prednisone per mg of the drug, exact (5/6, not 0.833).
    peq_factor: Mapping[str, Fraction]
    # Observation codes of body weight and height (weight-based doses); None: not read.
    body_weight: ValueSet | None = None
    body_height: ValueSet | None = None
    identify_memo: Memo[IdentifyKey, DrugInfo | None] = field(
        default_factory=_identify_memo, init=False, repr=False, compare=False
    )
    route_memo: Memo[RouteKey, Route] = field(
        default_factory=_route_memo, init=False, repr=False, compare=False
    )

    def peq_mg(self, ingredient: str, mg: float | None) -> float | None:
        """Prednisone-equivalent mg of ``mg`` of ``ingredient``, computed exactly from the
        ratio and rounded once, to the nearest float: 36 mg deflazacort x 5/6 is 30.0, not
        29.99. None without a dose or without a factor for the ingredient."""
        factor = self.peq_factor.get(ingredient)
        if mg is None or not factor:
            return None
        # float(Fraction(mg) * factor) without building Fractions: the same exact product, and
        # int / int is the same correctly rounded division Fraction.__float__ does.
        numerator, denominator = mg.as_integer_ratio()
        return (numerator * factor.numerator) / (denominator * factor.denominator)

    @cached_property
    def ingredient_names(self) -> Mapping[str, str]:
        """IN code -> ingredient name, from the ``ingredients`` value set properties."""
        names: dict[str, str] = {}
        for concept in self.ingredients.concepts.values():
            code = concept.properties.get("ingredient")
            name = concept.properties.get("ingredient-name")
            if isinstance(code, str) and isinstance(name, str) and code not in names:
                names[code] = name
        return names

    @cached_property
    def name_pattern(self) -> re.Pattern[str] | None:
        """Whole-word alternation of ingredient names, longest first (substring traps)."""
        names = sorted({n.lower() for n in self.ingredient_names.values()}, key=len, reverse=True)
        if not names:
            return None
        alternation = "|".join(re.escape(n) for n in names)
        return re.compile(rf"(?<![a-z])({alternation})(?![a-z])", re.IGNORECASE)

    @cached_property
    def excluded_name_pattern(self) -> re.Pattern[str] | None:
        """Whole-word names of excluded drugs (budesonide, fludrocortisone...).

        Taken from the ``excluded`` concepts' ``ingredient-name`` property or display (the
        ingredient words of an RxNorm name); names of systemic GC ingredients are skipped so
        that a dental paste entry never excludes every triamcinolone record.
        """
        systemic = {n.lower() for n in self.ingredient_names.values()}
        names: set[str] = set()
        for concept in self.excluded.concepts.values():
            raw = str(concept.properties.get("ingredient-name") or concept.display or "")
            parsed = parse_rxnorm_name(raw)
            words = re.findall(r"[a-z]+", (parsed.ingredient_words if parsed else raw).lower())
            if words and len(words[0]) >= 5 and not systemic.intersection(words):
                names.add(words[0])
        if not names:
            return None
        alternation = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        return re.compile(rf"(?<![a-z])({alternation})(?![a-z])", re.IGNORECASE)

    @cached_property
    def code_by_name(self) -> Mapping[str, str]:
        return {name.lower(): code for code, name in sorted(self.ingredient_names.items())}
