"""The route of one Dosage: the ``intravenous-routes`` value set, then IM/SC/oral words."""

from __future__ import annotations

import re

from cds_service.fhir.views import CodeableConcept
from cds_service.medications.concepts import codings_of, concept_key, texts_of
from cds_service.medications.knowledge import DrugInfo, GlucocorticoidKnowledge, Route

# Generic route words (not codes): the IV codes and texts are content, in the value set.
_ROUTE_WORDS: tuple[tuple[re.Pattern[str], Route], ...] = (
    (re.compile(r"intramuscular|\bIM\b", re.IGNORECASE), "im"),
    (re.compile(r"subcutaneous|\bSC\b|\bSQ\b|\bSUBQ\b", re.IGNORECASE), "sc"),
    (re.compile(r"\boral|\bby mouth\b|\bPO\b|\benteral\b", re.IGNORECASE), "oral"),
)


def route_of(
    route_concept: CodeableConcept | None, knowledge: GlucocorticoidKnowledge, drug: DrugInfo
) -> Route:
    """The route of a Dosage.route; without one, oral for an oral form, else unknown-systemic.

    Memoised on ``knowledge`` by the route concept's content and the drug's oral form.
    """
    return knowledge.route_memo.get(
        (concept_key(route_concept), drug.oral_form),
        lambda: read_route(route_concept, knowledge, drug),
    )


def read_route(
    route_concept: CodeableConcept | None, knowledge: GlucocorticoidKnowledge, drug: DrugInfo
) -> Route:
    """:func:`route_of` without the memo."""
    if route_concept is not None:
        texts = texts_of(route_concept)
        routes = knowledge.intravenous_routes
        if routes.match(codings_of(route_concept), texts[0] if texts else None) or any(
            routes.match_text(t) for t in texts
        ):
            return "iv"
        for pattern, name in _ROUTE_WORDS:
            if any(pattern.search(t) for t in texts):
                return name
    return "oral" if drug.oral_form else "unknown-systemic"
