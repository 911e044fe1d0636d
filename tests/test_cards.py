"""Cards: compiled suggestion templates fill like the plain filler, and the outgoing
self-check catches every CDS Hooks 2.0 card rule violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cds_service.cards import (
    CardContext,
    _empty_paths,
    _fill,
    _has_empty,
    check_card,
    compile_template,
)
from cds_service.catalog import load_catalog
from cds_service.cdshooks import Card, dump
from cds_service.topics import KINDS

REPO = Path(__file__).resolve().parent.parent

FIELDS = st.fixed_dictionaries(
    {
        "patient_id": st.text(min_size=1, max_size=8),
        "patient_reference": st.text(max_size=8),
        "encounter_reference": st.sampled_from(["", "Encounter/e1"]),
        "today": st.sampled_from(["2026-11-25", ""]),
    }
)
LEAVES = st.one_of(
    st.sampled_from(["{patient_reference}", "{encounter_reference}", "x {today}", "", "plain"]),
    st.integers(),
    st.booleans(),
    st.none(),
)
TEMPLATES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abcd"), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(TEMPLATES, FIELDS)
def test_compiled_template_fills_like_the_plain_filler(template: Any, fields: Any) -> None:
    assert compile_template(template)(fields) == _fill(template, fields)


def test_every_bundled_suggestion_template_compiles_to_the_same_resource() -> None:
    catalog = load_catalog(REPO / "hooks", KINDS)
    for encounter in (None, "enc-1"):
        fields = CardContext("pt-1", encounter, "2026-11-25").fields()
        for service in catalog.services:
            for rule in service.rules:
                # a suggestion may also use the finding's values (sample_facts of the kind)
                values = {**rule.kind.sample_facts, **fields}
                for suggestion in rule.definition.suggestions.values():
                    for action in suggestion.actions:
                        if action.resource:
                            compiled = compile_template(action.resource)(values)
                            assert compiled == _fill(action.resource, values)
                            assert "encounter" not in compiled or encounter is not None


@given(TEMPLATES, FIELDS)
def test_the_empty_value_pre_check_agrees_with_the_paths(template: Any, fields: Any) -> None:
    for value in (template, {"resource": compile_template(template)(fields)}):
        assert _has_empty(value) == bool(_empty_paths(value))


def card(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "uuid": "c1",
        "summary": "A summary",
        "indicator": "info",
        "source": {"label": "Guideline"},
        "suggestions": [
            {
                "label": "Do it",
                "uuid": "s1",
                "actions": [
                    {
                        "type": "create",
                        "description": "d",
                        "resource": {"resourceType": "ServiceRequest", "status": "draft"},
                    }
                ],
            }
        ],
        "selectionBehavior": "any",
        "overrideReasons": [{"system": "urn:x", "code": "already-done", "display": "Already done"}],
        "links": [{"label": "l", "url": "https://example.org", "type": "absolute"}],
    }
    wire = dump(Card.model_validate(base))  # a valid card, as the wire model writes it
    wire.update(changes)
    return wire


def test_valid_card_passes() -> None:
    assert check_card(card()) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"summary": "x" * 140}, "summary"),
        ({"uuid": None}, "card uuid"),
        ({"selectionBehavior": None}, "selectionBehavior"),
        (
            {
                "suggestions": [
                    {
                        "label": "a",
                        "actions": [{"type": "create", "description": "d", "resource": {"a": 1}}],
                    }
                ]
            },
            "suggestion uuid",
        ),
        (
            {
                "suggestions": [
                    {"label": "a", "uuid": "s", "actions": [{"type": "delete", "description": "d"}]}
                ]
            },
            "resourceId",
        ),
        (
            {
                "suggestions": [
                    {"label": "a", "uuid": "s", "actions": [{"type": "create", "description": "d"}]}
                ]
            },
            "needs a resource",
        ),
        (
            {
                "suggestions": [
                    {
                        "label": "a",
                        "uuid": "s",
                        "actions": [{"type": "create", "description": "", "resource": {"a": 1}}],
                    }
                ]
            },
            "description",
        ),
        ({"overrideReasons": [{"system": "urn:x", "code": "c"}]}, "display"),
        (
            {
                "links": [
                    {"label": "l", "url": "https://e.org", "type": "absolute", "appContext": "x"}
                ]
            },
            "appContext",
        ),
        ({"links": [{"label": "l", "url": "/relative", "type": "absolute"}]}, "absolute"),
        (
            {
                "suggestions": [
                    {
                        "label": "a",
                        "uuid": "s",
                        "actions": [
                            {
                                "type": "create",
                                "description": "d",
                                "resource": {"code": {"text": ""}},
                            }
                        ],
                    }
                ]
            },
            "empty value at suggestions[0].actions[0].resource.code.text",
        ),
        ({"detail": ""}, "empty value at detail"),
        ({"indicator": "hint"}, "indicator"),
    ],
)
def test_violations_are_reported(changes: dict[str, Any], problem: str) -> None:
    problems = check_card(card(**changes))
    assert any(problem in p for p in problems), problems


def test_every_problem_is_listed_once_in_card_order() -> None:
    bad = card(
        summary="",
        source={},
        uuid=None,
        indicator="hint",
        selectionBehavior="at-most-one",
        suggestions=[
            {"label": "a", "isRecommended": True, "actions": [{"type": "delete"}]},
            {"label": "b", "uuid": "s2", "isRecommended": True, "actions": [{"type": "update"}]},
        ],
        overrideReasons=[{"code": "c"}],
        links=[{"url": "ftp://x", "type": "absolute", "appContext": "y"}],
    )
    assert check_card(bad) == [
        "summary must be 1-139 characters",
        "source.label is required",
        "card uuid is required for feedback",
        "indicator must be info, warning or critical",
        "at most one recommended suggestion with at-most-one",
        "suggestion uuid is required",
        "action description is required",
        "delete action needs resourceId",
        "action description is required",
        "update action needs a resource",
        "overrideReasons need code, system and display",
        "appContext is only allowed on smart links",
        "link url must be absolute",
        "empty value at uuid",  # empty values in the card's own key order
        "empty value at summary",
        "empty value at source",
    ]


def test_strict_mode_also_checks_the_wire_model() -> None:
    from cds_service.decide import wire_model_problems

    assert wire_model_problems(card()) == []
    problems = wire_model_problems(card(selectionBehavior="all-of-them"))
    assert problems
    assert "selectionBehavior" in problems[0]
    assert "all-of-them" not in problems[0], "paths only, never values"


def test_new_uuid_is_a_random_version_4_uuid() -> None:
    import uuid

    from cds_service.cards import new_uuid

    ids = {new_uuid() for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_a_sentence_fragment_continues_the_paragraph_before_it() -> None:
    from cds_service.cards import card_paragraphs
    from cds_service.rule_kind import Finding

    texts = {"order": "**Order DXA:** none on file.", "read": "Read Z-scores ({age}).", "off": ""}
    finding = Finding("s", ("order", "off", "read", "order"), "info", {"age": "37"}, ())
    assert card_paragraphs(finding, texts, frozenset({"read"})) == [
        "**Order DXA:** none on file. Read Z-scores (37).",
        "**Order DXA:** none on file.",
    ]
    assert len(card_paragraphs(finding, texts, frozenset())) == 3
