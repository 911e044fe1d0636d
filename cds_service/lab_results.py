"""What a qualitative test result says: positive, negative, indeterminate, or unclear.

Read from one Observation (or one of its components) as clinical-knowledge-2.md 2.3 sets the
precedence: the coded answer (``valueCodeableConcept``), then ``interpretation``, then
``valueString`` (negations first: "not detected" contains "detected"), then ``valueBoolean``,
then the number (``valueQuantity``) against the test's own cut-off or the reference range. The
answer and interpretation codes are content (hooks/valuesets/result-*.json), the cut-offs are
hooks/thresholds.toml ``[result_cutoffs]``, named by the test concept's ``cutoff`` property.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cds_service.thresholds import Threshold
from cds_service.valuesets import Coding, ValueSet

Result = Literal["positive", "negative", "indeterminate", "unclear", "pending"]
# Answer classes in the order they are tried: a negation must win over the word it negates.
ANSWER_ROLES: tuple[tuple[Result, str], ...] = (
    ("negative", "result_negative"),
    ("indeterminate", "result_indeterminate"),
    ("positive", "result_positive"),
)
LOWER = frozenset({"<", "<="})
UPPER = frozenset({">", ">="})


@dataclass(frozen=True)
class Cutoff:
    """A test's own positive line: at or above ``value`` (in UCUM ``unit``) is positive."""

    value: float
    unit: str


@dataclass(frozen=True)
class ResultRules:
    """The answer value sets by class (tried in ANSWER_ROLES order) and the named cut-offs."""

    answers: tuple[tuple[Result, ValueSet], ...] = ()
    cutoffs: Mapping[str, Cutoff] = field(default_factory=dict)

    @staticmethod
    def of(valuesets: Mapping[str, ValueSet], cutoffs: Mapping[str, Threshold]) -> ResultRules:
        """From a service's value-set roles and the ``[result_cutoffs]`` thresholds section; a
        service without the answer roles reads results from numbers only."""
        return ResultRules(
            answers=tuple(
                (cls, valuesets[role]) for cls, role in ANSWER_ROLES if role in valuesets
            ),
            cutoffs={name: Cutoff(t.value, t.unit) for name, t in cutoffs.items()},
        )

    def classify(self, concept: object) -> Result | None:
        """The class of a CodeableConcept (R4B model): its codes, else its text and displays."""
        if concept is None:
            return None
        found = [
            Coding(c.system, c.code, c.display) for c in getattr(concept, "coding", None) or ()
        ]
        text = getattr(concept, "text", None)
        for cls, valueset in self.answers:
            if any(valueset.match_code(c.system, c.code) for c in found):
                return cls
        return self.classify_text(text, *(c.display for c in found))

    def classify_text(self, *texts: str | None) -> Result | None:
        for cls, valueset in self.answers:
            if any(valueset.match_text(text) for text in texts):
                return cls
        return None


def quantity_of(part: object) -> tuple[float | None, str | None, str | None]:
    """(value, UCUM code or else unit text, comparator) of ``part.valueQuantity``."""
    quantity = getattr(part, "valueQuantity", None)
    value = getattr(quantity, "value", None) if quantity is not None else None
    if value is None:
        return None, None, None
    unit = getattr(quantity, "code", None) or getattr(quantity, "unit", None)
    return float(value), unit, getattr(quantity, "comparator", None)


def read_result(
    part: object, properties: Mapping[str, Any], rules: ResultRules, *, registered: bool
) -> Result | None:
    """The result class of an Observation or component (``part``) of a test whose value-set
    concept has ``properties``. None when there is nothing to read (a panel without a value);
    "pending" for an Observation only registered; "unclear" when a value is present but says
    neither way (an "abnormal" flag alone, a number without cut-off or range)."""
    cls = rules.classify(getattr(part, "valueCodeableConcept", None))
    for interpretation in getattr(part, "interpretation", None) or ():
        cls = cls or rules.classify(interpretation)
    value_string = getattr(part, "valueString", None)
    cls = cls or rules.classify_text(value_string)
    flag = getattr(part, "valueBoolean", None)
    if cls is None and isinstance(flag, bool):
        cls = "positive" if flag else "negative"
    if cls is None:
        cls = _by_number(part, properties, rules)
    if cls is not None:
        return cls
    if _has_value(part):
        return "unclear"
    return "pending" if registered else None


def _has_value(part: object) -> bool:
    fields = ("valueCodeableConcept", "valueQuantity", "valueString", "interpretation")
    return any(getattr(part, name, None) for name in fields)


def _by_number(part: object, properties: Mapping[str, Any], rules: ResultRules) -> Result | None:
    value, unit, comparator = quantity_of(part)
    if value is None:
        return None
    cutoff = rules.cutoffs.get(str(properties.get("cutoff", "")))
    if cutoff is not None and unit == cutoff.unit:
        return _against(value, comparator, cutoff.value, at_or_above=True)
    high = _range_high(part, unit)
    if high is not None:
        return _against(value, comparator, high, at_or_above=False)
    if properties.get("quantity") == "detection" and comparator is None:
        # A viral load: any quantified amount is detected; zero is not.
        return "positive" if value > 0 else "negative"
    return None


def _against(value: float, comparator: str | None, line: float, *, at_or_above: bool) -> Result:
    """Positive above the line (at or above it for a cut-off), negative below; a bound such as
    "<10" counts only when it settles the question."""
    positive = value >= line if at_or_above else value > line
    if comparator in LOWER:
        return "negative" if value <= line else "unclear"
    if comparator in UPPER:
        return "positive" if value >= line else "unclear"
    return "positive" if positive else "negative"


def _range_high(part: object, unit: str | None) -> float | None:
    """The upper reference limit in the value's unit (a range without a unit is the value's)."""
    for reference in getattr(part, "referenceRange", None) or ():
        high = getattr(reference, "high", None)
        limit = getattr(high, "value", None) if high is not None else None
        if limit is None:
            continue
        high_unit = getattr(high, "code", None) or getattr(high, "unit", None)
        if high_unit is None or high_unit == unit:
            return float(limit)
    return None


__all__ = ["Cutoff", "Result", "ResultRules", "quantity_of", "read_result"]
