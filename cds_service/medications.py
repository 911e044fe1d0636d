"""Which systemic glucocorticoid a FHIR medication record names, its strength and its route.

Pure functions over R4B models and offline value sets; no I/O. Clinical content (codes, the
product table, route and dose-form word lists) arrives in :class:`GlucocorticoidKnowledge`.
What lives here is generic: UCUM/common unit spellings, the RxNorm normalised-name grammar
(clinical-knowledge.md D6) and FHIR data-type plumbing.

Identification order (clinical-knowledge.md D2, D6):

1. ``glucocorticoid-excluded`` matched by *code* (budesonide, fludrocortisone, dental paste,
   non-systemic ATC) -> excluded, whatever else is said.
2. ``glucocorticoid-products`` by code -> ingredient, strength, pack units, dose form.
3. ``glucocorticoid-ingredients`` by code (IN, PIN or ATC; the ``ingredient`` property maps a
   PIN/ATC to the IN), then ``Medication.ingredient[].itemCodeableConcept``, then the text
   fallback: ingredient names from the value set's ``ingredient-name`` property, matched as
   whole words, longest first (``methylprednisolone`` never reads as ``prednisolone``,
   ``hydrocortisone``/``fludrocortisone`` never as ``cortisone``).
4. A systemic GC whose text, dose form or route matches ``glucocorticoid-excluded`` or
   ``nonsystemic-routes`` is excluded (inhaled, topical, ophthalmic, intra-articular...).

Strength: the product's ``strength`` property, else ``Medication.ingredient[].strength``,
else the RxNorm name parsed from text/displays ("prednisone 20 MG Oral Tablet",
"1 ML methylprednisolone acetate 40 MG/ML Injectable Suspension",
"{21 (methylprednisolone 4 MG Oral Tablet) } Pack").

The second half reads one FHIR Dosage: mg per administration (mass units, or count/volume
units times the strength), administrations per day from Timing, Duration units, and the route
(``intravenous-routes`` value set, then generic IM/SC/oral words). The exposure policies that
use them are documented in :mod:`cds_service.exposure`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

from cds_service.fhir.models import Medication
from cds_service.fhir.references import relative_reference
from cds_service.valuesets import Coding, ValueSet

# UCUM codes and the spellings EHRs put in Quantity.unit (generic unit handling, not clinical).
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
PACK_UNITS = frozenset({"{pack}", "pack", "packs", "{kit}", "kit", "{package}", "package"})

# RxNorm normalised name (clinical-knowledge.md D6): optional "N ML " volume prefix, ingredient
# words, strength, unit, dose form. Packs wrap one component: "{21 (... Oral Tablet) } Pack".
_RXNORM_NAME = re.compile(
    r"^(?:(?P<qty>\d+(?:\.\d+)?) (?:HR|ML|ACTUAT) )?"
    r"(?P<ing>[a-z][a-z ,\-]+?) (?P<num>\d+(?:\.\d+)?) "
    r"(?P<unit>MG|MCG|MG/ML|MCG/ML|MG/MG) (?P<form>[A-Z].*)$"
)
_PACK_NAME = re.compile(r"^\{\s*(?P<n>\d+)\s*\((?P<inner>[^()]*)\)\s*\}\s*Pack\b")
_ORAL_FORM = re.compile(r"\boral\b", re.IGNORECASE)

_EPS = 1e-9
# Sanity bound on any computed span (data errors such as "boundsDuration 1e9 d").
MAX_SPAN_DAYS = 36500
Route = Literal["oral", "iv", "im", "sc", "unknown-systemic"]

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
# HL7 v3 GTSAbbreviation timing codes (Timing.code) and frequent EHR spellings:
# administrations per day, averaged for sparser schedules.
TIMING_CODE_PER_DAY: Mapping[str, float] = {
    "QD": 1.0,
    "DAILY": 1.0,
    "AM": 1.0,
    "PM": 1.0,
    "QAM": 1.0,
    "QPM": 1.0,
    "BED": 1.0,
    "QHS": 1.0,
    "Q24H": 1.0,
    "BID": 2.0,
    "Q12H": 2.0,
    "TID": 3.0,
    "Q8H": 3.0,
    "QID": 4.0,
    "Q6H": 4.0,
    "Q4H": 6.0,
    "Q3H": 8.0,
    "Q2H": 12.0,
    "Q1H": 24.0,
    "QOD": 0.5,
    "Q48H": 0.5,
    "WK": 1 / 7,
    "QWK": 1 / 7,
    "MO": 1 / 30,
}
WEEKDAYS: Mapping[str, int] = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_WEIGHT_BASED = re.compile(r"/\s*(kg|m2|\[lb_av\]|lb)\b")
_IM = re.compile(r"intramuscular|\bIM\b", re.IGNORECASE)
_SC = re.compile(r"subcutaneous|\bSC\b|\bSQ\b|\bSUBQ\b", re.IGNORECASE)
_ORAL = re.compile(r"\boral|\bby mouth\b|\bPO\b|\benteral\b", re.IGNORECASE)


@dataclass(frozen=True)
class GlucocorticoidKnowledge:
    """Offline content for the exposure engine (all of it from hooks/)."""

    ingredients: ValueSet
    products: ValueSet
    excluded: ValueSet
    nonsystemic_routes: ValueSet
    intravenous_routes: ValueSet
    peq_factor: Mapping[str, float]  # RxNorm IN code -> mg prednisone per mg of the drug

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


@dataclass(frozen=True)
class Strength:
    """Amount of ingredient in mg per countable unit (tablet, vial) and/or per mL."""

    mg_per_unit: float | None = None
    mg_per_ml: float | None = None


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


def codings_of(concept: Any) -> list[Coding]:
    """Plain codings of a CodeableConcept-like model (None -> [])."""
    if concept is None:
        return []
    return [Coding(c.system, c.code, c.display) for c in (concept.coding or [])]


def texts_of(concept: Any) -> list[str]:
    """``text`` then coding displays of a CodeableConcept-like model."""
    if concept is None:
        return []
    out = [concept.text] if concept.text else []
    out.extend(c.display for c in (concept.coding or []) if c.display)
    return out


def to_float(value: Decimal | float | int | None) -> float | None:
    return None if value is None else float(value)


def normalize_unit(quantity: Any) -> str:
    """Comparable unit of a Quantity: its code, else its unit text, lower-cased."""
    raw = quantity.code or quantity.unit or ""
    return str(raw).strip().lower()


def mass_mg(value: float, unit: str) -> float | None:
    """``value`` in mg, or None when ``unit`` is not a mass unit."""
    factor = MASS_TO_MG.get(unit)
    return None if factor is None else value * factor


def _ratio_dict_strength(ratio: Mapping[str, Any]) -> Strength | None:
    num = ratio.get("numerator") or {}
    den = ratio.get("denominator") or {}
    num_value, den_value = num.get("value"), den.get("value", 1)
    num_unit = str(num.get("code") or num.get("unit") or "").lower()
    den_unit = str(den.get("code") or den.get("unit") or "1").lower()
    return _strength(num_value, num_unit, den_value, den_unit)


def _strength(num_value: Any, num_unit: str, den_value: Any, den_unit: str) -> Strength | None:
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


def ratio_strength(ratio: Any) -> Strength | None:
    """Strength from a FHIR Ratio model (Medication.ingredient.strength)."""
    if ratio is None or ratio.numerator is None:
        return None
    den = ratio.denominator
    den_value = to_float(den.value) if den is not None else 1.0
    den_unit = normalize_unit(den) if den is not None else "1"
    return _strength(
        to_float(ratio.numerator.value), normalize_unit(ratio.numerator), den_value, den_unit or "1"
    )


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
    value, unit = float(m.group("num")), m.group("unit")
    qty = m.group("qty")
    if unit in ("MG", "MCG"):
        strength = Strength(mg_per_unit=value * (0.001 if unit == "MCG" else 1.0))
    elif unit in ("MG/ML", "MCG/ML"):
        per_ml = value * (0.001 if unit == "MCG/ML" else 1.0)
        vol = float(qty) if qty is not None and " ML " in f" {text} " else None
        strength = Strength(mg_per_unit=per_ml * vol if vol else None, mg_per_ml=per_ml)
    else:  # MG/MG: pastes and creams; never a countable systemic dose
        return None
    return ParsedName(m.group("ing").strip(), strength, pack_units, bool(_ORAL_FORM.search(text)))


def _resolve_medication(
    reference: Any, contained: Sequence[Any], medications: Mapping[str, Medication]
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


def _concept_key(concept: Any) -> tuple[Any, ...] | None:
    """Everything ``codings_of``/``texts_of`` read from a CodeableConcept, as a hashable key."""
    if concept is None:
        return None
    return (concept.text, tuple((c.system, c.code, c.display) for c in (concept.coding or [])))


def _quantity_key(quantity: Any) -> tuple[Any, ...] | None:
    if quantity is None:
        return None
    return (quantity.value, quantity.code, quantity.unit)


def _identify_key(
    concept: Any, reference: Any, med: Medication | None, extra_texts: tuple[str, ...]
) -> tuple[Any, ...]:
    """Memo key: every field :func:`identify_drug` reads once the Medication is resolved."""
    if concept is None and med is not None:
        concept = med.code
    med_key: tuple[Any, ...] | None = None
    if med is not None:
        items = tuple(
            (
                _concept_key(i.itemCodeableConcept),
                None
                if i.strength is None
                else (_quantity_key(i.strength.numerator), _quantity_key(i.strength.denominator)),
            )
            for i in (med.ingredient or [])
        )
        med_key = (_concept_key(med.form), items)
    display = reference.display if reference is not None else None
    return (_concept_key(concept), display, med_key, extra_texts)


# Memo of identify_drug(): the same products recur across records and calls. Keyed by the
# identity of the value sets (kept alive by the entry, so an id is never reused while its
# entry exists) and by the content the identification reads. Bounded, cleared when full.
IDENTIFY_MEMO_SIZE = 4096
_identify_memo: dict[tuple[Any, ...], tuple[tuple[ValueSet, ...], DrugInfo | None]] = {}


def identify_drug(
    concept: Any,
    reference: Any,
    contained: Sequence[Any],
    medications: Mapping[str, Medication],
    knowledge: GlucocorticoidKnowledge,
    extra_texts: Iterable[str] = (),
) -> DrugInfo | None:
    """Identify the glucocorticoid in ``medication[x]``; None if the record is not one.

    ``extra_texts`` are dose form / route / SIG texts checked against the exclusion
    patterns. A GC excluded by code (budesonide...) comes back with ``excluded=True``.
    """
    med = _resolve_medication(reference, contained, medications)
    texts = tuple(extra_texts)
    sets = (
        knowledge.ingredients,
        knowledge.products,
        knowledge.excluded,
        knowledge.nonsystemic_routes,
    )
    key = (*map(id, sets), _identify_key(concept, reference, med, texts))
    try:
        hit = _identify_memo.get(key)
    except TypeError:  # an unhashable value in the record: identify without the memo
        return _identify(concept, reference, med, knowledge, texts)
    if hit is not None and all(a is b for a, b in zip(hit[0], sets, strict=True)):
        return hit[1]
    info = _identify(concept, reference, med, knowledge, texts)
    if len(_identify_memo) >= IDENTIFY_MEMO_SIZE:
        _identify_memo.clear()
    _identify_memo[key] = (sets, info)
    return info


def _identify(
    concept: Any,
    reference: Any,
    med: Medication | None,
    knowledge: GlucocorticoidKnowledge,
    extra_texts: Sequence[str],
) -> DrugInfo | None:
    if concept is None and med is not None:
        concept = med.code
    codings = codings_of(concept)
    texts = texts_of(concept)
    if reference is not None and reference.display:
        texts.append(str(reference.display))
    form_texts = texts_of(med.form) if med is not None else []
    item_concepts = [i.itemCodeableConcept for i in (med.ingredient or [])] if med else []

    for coding in codings + [c for ic in item_concepts for c in codings_of(ic)]:
        if knowledge.excluded.match_code(coding.system, coding.code) is not None:
            return DrugInfo("", "", None, None, excluded=True, oral_form=False)

    info = _identify_systemic(codings, texts, med, item_concepts, knowledge)
    if info is None:
        excluded_names = knowledge.excluded_name_pattern
        if excluded_names is not None and any(excluded_names.search(t) for t in texts):
            return DrugInfo("", "", None, None, excluded=True, oral_form=False)
        return None
    exclusion_texts = [*texts, *form_texts, *extra_texts]
    if any(knowledge.excluded.match_text(t) for t in exclusion_texts) or any(
        knowledge.nonsystemic_routes.match_text(t) for t in [*form_texts, *extra_texts]
    ):
        return DrugInfo(info.ingredient, info.ingredient_name, None, None, True, False)
    if not info.oral_form and any(_ORAL_FORM.search(t) for t in form_texts):
        return DrugInfo(
            info.ingredient, info.ingredient_name, info.strength, info.pack_units, False, True
        )
    return info


def _identify_systemic(
    codings: list[Coding],
    texts: list[str],
    med: Medication | None,
    item_concepts: list[Any],
    knowledge: GlucocorticoidKnowledge,
) -> DrugInfo | None:
    parsed = next((p for p in map(parse_rxnorm_name, texts) if p is not None), None)
    oral = parsed.oral if parsed else False
    for coding in codings:
        product = knowledge.products.match_code(coding.system, coding.code)
        if product is None:
            continue
        props = product.properties
        ingredient = str(props.get("ingredient", ""))
        name = knowledge.ingredient_names.get(ingredient, str(props.get("ingredient-name", "")))
        strength_prop = props.get("strength")
        strength = (
            _ratio_dict_strength(strength_prop) if isinstance(strength_prop, Mapping) else None
        )
        if strength is None and parsed is not None:
            strength = parsed.strength
        pack = props.get("pack-units")
        form = str(props.get("dose-form", "")).lower()
        pack_units = int(pack) if isinstance(pack, int) else None
        if pack_units is None and parsed is not None:
            pack_units = parsed.pack_units
        oral = oral or form in ("tablet", "solution", "pack")
        return DrugInfo(ingredient, name, strength, pack_units, False, oral)

    ingredient, name = _ingredient_from_codes(codings, knowledge)
    med_strength: Strength | None = None
    for item, concept in zip(med.ingredient or [] if med else [], item_concepts, strict=False):
        code, item_name = _ingredient_from_codes(codings_of(concept), knowledge)
        if not code:
            code, item_name = _ingredient_from_text(texts_of(concept), knowledge)
        if code and (not ingredient or code == ingredient):
            ingredient, name = code, item_name
            med_strength = ratio_strength(item.strength)
            break
    if not ingredient:
        ingredient, name = _ingredient_from_text(texts, knowledge)
        by_pattern = any(knowledge.ingredients.match_text(t) for t in texts)
        vetoed = any(knowledge.ingredients.is_excluded(c.system, c.code) for c in codings)
        if vetoed or not (ingredient or by_pattern):
            return None
        if knowledge.ingredients.text_pattern is not None and not by_pattern:
            return None  # the value set's own text rules (text-exclude-pattern) have the last word
    strength = med_strength or (parsed.strength if parsed else None)
    return DrugInfo(ingredient, name, strength, parsed.pack_units if parsed else None, False, oral)


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
    for text in texts:
        if (
            knowledge.ingredients.text_exclude is not None
            and knowledge.ingredients.text_exclude.search(text)
        ):
            continue
        found = pattern.search(text)
        if found is not None:
            code = knowledge.code_by_name[found.group(1).lower()]
            return code, knowledge.ingredient_names[code]
    return "", ""


# --------------------------------------------------------------------------- dosage


def duration_days(quantity: Any) -> int | None:
    """A Duration (boundsDuration, expectedSupplyDuration, daysSupply) in whole days."""
    if quantity is None or quantity.value is None:
        return None
    factor = UNIT_DAYS.get(normalize_unit(quantity) or "d")
    if factor is None:
        return None
    days = math.ceil(float(quantity.value) * factor - _EPS)
    return min(max(days, 1), MAX_SPAN_DAYS)


@dataclass(frozen=True)
class Schedule:
    per_day: float  # administrations per dosing day (weekdays) or average per day
    weekdays: frozenset[int] | None
    alternate: bool
    count: float | None  # repeat.count (max with countMax)


def schedule(timing: Any) -> Schedule:
    """Administrations per day from Timing (see module docstring, "Frequency")."""
    if timing is None:
        return Schedule(1.0, None, False, None)  # no timing with a dose: once daily
    repeat = timing.repeat
    codes = [str(c.code).upper() for c in codings_of(timing.code) if c.code]
    if not codes and timing.code is not None and timing.code.text:
        codes = [str(timing.code.text).strip().upper()]
    code = codes[0] if codes else ""
    period_days = 1.0
    rate: float | None = None
    count: float | None = None
    weekdays: frozenset[int] | None = None
    if repeat is not None:
        if repeat.frequency is not None or repeat.period is not None:
            freq = float(max(repeat.frequency or 1, repeat.frequencyMax or 0))
            unit = str(repeat.periodUnit or "d")
            period_days = float(repeat.period or 1) * UNIT_DAYS.get(unit, 1.0)
            rate = freq / period_days if period_days > 0 else freq
        elif repeat.when or repeat.timeOfDay:
            rate = float(len(repeat.when or []) + len(repeat.timeOfDay or []))
        if repeat.count is not None:
            count = float(max(repeat.count, repeat.countMax or 0))
        if repeat.dayOfWeek:
            weekdays = frozenset(WEEKDAYS[d] for d in repeat.dayOfWeek if d in WEEKDAYS) or None
    if rate is None and code in TIMING_CODE_PER_DAY:
        rate = TIMING_CODE_PER_DAY[code]
        period_days = max(1.0, 1 / rate) if rate < 1 else 1.0
    if rate is None:
        rate = 1.0
    if weekdays is not None and period_days > 1:
        rate = rate * 7 / len(weekdays)  # doses per week spread over the listed days
    alternate = weekdays is None and abs(rate - 0.5) < _EPS
    return Schedule(rate, weekdays, alternate, count)


@dataclass(frozen=True)
class Dose:
    mg: float | None  # ingredient mg per administration
    dose_range: bool


def quantity_mg(value: float, quantity: Any, drug: DrugInfo) -> float | None:
    """Ingredient mg in ``value`` units of ``quantity`` (mass, count, volume or pack)."""
    unit = normalize_unit(quantity)
    if not unit or _WEIGHT_BASED.search(unit):
        return None
    mg = mass_mg(value, unit)
    if mg is not None:
        return mg
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


def dose_per_administration(dosage: Any, drug: DrugInfo) -> Dose:
    entries = list(dosage.doseAndRate or [])
    if not entries:
        return Dose(None, False)

    def type_code(entry: Any) -> str:
        return next((str(c.code) for c in codings_of(entry.type) if c.code), "")

    entry = next((e for e in entries if type_code(e) == "ordered"), None)
    entry = entry or next((e for e in entries if type_code(e) != "calculated"), entries[0])
    if entry.doseQuantity is not None and entry.doseQuantity.value is not None:
        value = float(entry.doseQuantity.value)
        return Dose(quantity_mg(value, entry.doseQuantity, drug), False)
    rng = entry.doseRange
    if rng is not None:
        bound = rng.high if rng.high is not None and rng.high.value is not None else rng.low
        if bound is not None and bound.value is not None:
            return Dose(quantity_mg(float(bound.value), bound, drug), True)
    return Dose(None, False)


_route_memo: dict[tuple[Any, ...], tuple[ValueSet, Route]] = {}


def route_of(route_concept: Any, knowledge: GlucocorticoidKnowledge, drug: DrugInfo) -> Route:
    """The route of a Dosage.route (memoised per route concept, as identify_drug)."""
    routes = knowledge.intravenous_routes
    key = (id(routes), _concept_key(route_concept), drug.oral_form)
    try:
        hit = _route_memo.get(key)
    except TypeError:
        return _route_of(route_concept, knowledge, drug)
    if hit is not None and hit[0] is routes:
        return hit[1]
    route = _route_of(route_concept, knowledge, drug)
    if len(_route_memo) >= IDENTIFY_MEMO_SIZE:
        _route_memo.clear()
    _route_memo[key] = (routes, route)
    return route


def _route_of(route_concept: Any, knowledge: GlucocorticoidKnowledge, drug: DrugInfo) -> Route:
    codings, texts = codings_of(route_concept), texts_of(route_concept)
    if route_concept is not None:
        if knowledge.intravenous_routes.match(codings, texts[0] if texts else None) or any(
            knowledge.intravenous_routes.match_text(t) for t in texts
        ):
            return "iv"
        routes: tuple[tuple[re.Pattern[str], Route], ...] = (
            (_IM, "im"),
            (_SC, "sc"),
            (_ORAL, "oral"),
        )
        for pattern, name in routes:
            if any(pattern.search(t) for t in texts):
                return name
    return "oral" if drug.oral_form else "unknown-systemic"


def dosage_texts(items: Iterable[Any]) -> list[str]:
    """Route, site, method and SIG texts of dosages: checked against the exclusion lists."""
    out: list[str] = []
    for d in items:
        for concept in (
            getattr(d, "route", None),
            getattr(d, "site", None),
            getattr(d, "method", None),
        ):
            out.extend(texts_of(concept))
        for attr in ("text", "patientInstruction"):
            value = getattr(d, attr, None)
            if value:
                out.append(str(value))
    return out
