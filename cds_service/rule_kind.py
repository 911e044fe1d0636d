"""What a rule kind is: a pure function (facts, steroid status, thresholds) -> Finding | None,
with the content it declares (value-set roles, thresholds, summary variants, detail fragments,
suggestion ids, template placeholders) so catalog.py can check hooks/ against it at startup.

A kind decides *whether* a card is due and *which* pieces of content apply; the words, codes and
suggestions live in hooks/<service>/service.toml. The kinds themselves are in ``topics/``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cds_service.facts import ClinicalFacts
from cds_service.steroid_status import SteroidStatus
from cds_service.thresholds import Thresholds

Indicator = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Finding:
    """What a rule concluded; cards.py renders it with the rule's content."""

    summary: str  # summary variant id
    details: tuple[str, ...]  # detail fragment ids, in order
    indicator: Indicator
    facts: Mapping[str, str]  # template placeholder values
    evidence: tuple[str, ...]  # relative references of the triggering resources
    suggestions: tuple[str, ...] = ()
    recommended: tuple[str, ...] = ()
    # suggestion id -> "Type/id" of the draft orders its ``delete`` actions remove (order hooks)
    delete_targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


Evaluate = Callable[[ClinicalFacts, SteroidStatus, Thresholds], "Finding | None"]


@dataclass(frozen=True)
class RuleKind:
    name: str
    roles: tuple[str, ...]
    thresholds: tuple[str, ...]
    summaries: tuple[str, ...]
    details: tuple[str, ...]
    suggestions: tuple[str, ...]
    sample_facts: Mapping[str, str]  # longest realistic values: used to check summary length
    evaluate: Evaluate = field(repr=False)
    # Detail fragments that continue the paragraph before them (a second sentence of it)
    # instead of starting their own: e.g. how to read a DXA, after the DXA order.
    sentences: frozenset[str] = frozenset()
