"""The outgoing self-check catches every CDS Hooks 2.0 card rule violation."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.cards import check_card
from cds_service.cdshooks import Card


def card(**changes: Any) -> Card:
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
    base.update(changes)
    return Card.model_validate(base)


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
    ],
)
def test_violations_are_reported(changes: dict[str, Any], problem: str) -> None:
    problems = check_card(card(**changes))
    assert any(problem in p for p in problems), problems
