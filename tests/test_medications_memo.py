"""The drug knowledge owns its memos: content-keyed, bounded, never shared between owners."""

from __future__ import annotations

from dataclasses import replace

from cds_service.fhir.views import CodeableConcept
from cds_service.medications import (
    IDENTIFY_MEMO_SIZE,
    DrugInfo,
    GlucocorticoidKnowledge,
    identify_drug,
    route_of,
)
from tests.test_exposure_support import PEQ, knowledge

ORAL_PREDNISONE = DrugInfo("8640", "prednisone", None, None, excluded=False, oral_form=True)


def concept(text: str) -> CodeableConcept:
    return CodeableConcept.model_validate({"text": text})


def identify(text: str, know: GlucocorticoidKnowledge) -> DrugInfo | None:
    return identify_drug(concept(text), None, [], {}, know)


def test_each_knowledge_object_has_its_own_memos() -> None:
    first, second = knowledge(), knowledge()
    assert first.identify_memo is not second.identify_memo
    assert first.route_memo is not second.route_memo

    found = identify("prednisone 20 MG Oral Tablet", first)
    assert found is not None
    assert found.ingredient == "8640"
    route_of(concept("by mouth"), first, ORAL_PREDNISONE)
    assert (len(first.identify_memo), len(first.route_memo)) == (1, 1)
    assert (len(second.identify_memo), len(second.route_memo)) == (0, 0)


def test_a_replaced_knowledge_starts_with_empty_memos() -> None:
    """``dataclasses.replace`` builds new content, so it must not carry the old answers."""
    first = knowledge()
    identify("prednisone 20 MG Oral Tablet", first)
    # The excluded value set as ingredients: no systemic glucocorticoid any more.
    without_prednisone = replace(first, ingredients=first.excluded)
    assert len(without_prednisone.identify_memo) == 0
    assert identify("prednisone 20 MG Oral Tablet", without_prednisone) is None
    assert identify("prednisone 20 MG Oral Tablet", first) is not None


def test_memo_keys_are_content_not_identity() -> None:
    know = knowledge(PEQ)
    for _ in range(3):  # a new, equal CodeableConcept each time
        identify("methylprednisolone 4 MG Oral Tablet", know)
        route_of(concept("intravenous"), know, ORAL_PREDNISONE)
    assert (len(know.identify_memo), len(know.route_memo)) == (1, 1)


def test_memos_stay_bounded() -> None:
    know = knowledge()
    assert know.identify_memo.max_entries == IDENTIFY_MEMO_SIZE
    assert know.route_memo.max_entries == IDENTIFY_MEMO_SIZE
    for n in range(IDENTIFY_MEMO_SIZE + 10):
        identify(f"prednisone {n} MG Oral Tablet", know)
        route_of(concept(f"route {n}"), know, ORAL_PREDNISONE)
        assert len(know.identify_memo) <= IDENTIFY_MEMO_SIZE
        assert len(know.route_memo) <= IDENTIFY_MEMO_SIZE
    assert 0 < len(know.identify_memo) <= IDENTIFY_MEMO_SIZE
    # Still correct after a clear.
    found = identify("prednisone 5 MG Oral Tablet", know)
    assert found is not None
    assert found.strength is not None
    assert found.strength.mg_per_unit == 5.0
