"""Render Findings as CDS Hooks cards, and check every card against the 2.0 card rules."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cds_service.catalog import Rule, Service
from cds_service.cdshooks import Action, Card, Coding, Link, Source, Suggestion, dump
from cds_service.rules import Finding

EXTENSION_PREFIX = "org.example.glucocorticoid-cds"
SUMMARY_MAX = 140


@dataclass(frozen=True)
class CardContext:
    """Request values a suggestion template may use (``{patient_reference}`` etc.)."""

    patient_id: str
    encounter_id: str | None
    today: str

    def fields(self) -> dict[str, str]:
        return {
            "patient_id": self.patient_id,
            "patient_reference": f"Patient/{self.patient_id}",
            "encounter_reference": f"Encounter/{self.encounter_id}" if self.encounter_id else "",
            "today": self.today,
        }


@dataclass(frozen=True)
class RenderedCard:
    card: Card
    rule: Rule
    suggestion_keys: tuple[tuple[str, str], ...]  # (suggestion uuid, "topic/key")


def _fill(value: Any, fields: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**fields) if "{" in value or "}" in value else value
    if isinstance(value, Mapping):
        filled = {k: _fill(v, fields) for k, v in value.items()}
        return {k: v for k, v in filled.items() if v not in ("", None, [], {})}
    if isinstance(value, list):
        return [_fill(v, fields) for v in value]
    return value


def render_card(
    finding: Finding,
    rule: Rule,
    service: Service,
    context: CardContext,
    *,
    silenced_suggestions: frozenset[str] = frozenset(),
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> RenderedCard:
    """Build the card for one finding; suggestions already accepted recently are left out."""
    definition = rule.definition
    topic = definition.topic
    fields = context.fields()
    suggestions: list[Suggestion] = []
    keys: list[tuple[str, str]] = []
    for key in finding.suggestions:
        if f"{topic}/{key}" in silenced_suggestions:
            continue
        spec = definition.suggestions[key]
        actions: list[Action] = []
        for a in spec.actions:
            if a.type == "delete":  # one action per draft order the rule wants removed
                actions.extend(
                    Action(type="delete", description=a.description, resourceId=target)
                    for target in finding.delete_targets.get(key, ())
                )
            else:
                resource = _fill(a.resource, fields) if a.resource else None
                actions.append(Action(type=a.type, description=a.description, resource=resource))
        if not actions:
            continue  # a delete suggestion without a target has nothing to do
        suggestion_id = new_id()
        suggestions.append(
            Suggestion(
                label=spec.label,
                uuid=suggestion_id,
                isRecommended=True if key in finding.recommended else None,
                actions=actions,
            )
        )
        keys.append((suggestion_id, f"{topic}/{key}"))
    detail = "\n\n".join(
        definition.details[d].format(**finding.facts).strip() for d in finding.details
    )
    reasons = [
        Coding(system=service.definition.override_reason_system, code=r.code, display=r.display)
        for r in service.definition.override_reasons
    ]
    card = Card(
        uuid=new_id(),
        summary=definition.summaries[finding.summary].format(**finding.facts),
        detail=detail or None,
        indicator=finding.indicator,
        source=Source(
            label=definition.source.label,
            url=definition.source.url,
            topic=Coding(
                system=service.definition.topic_system, code=topic, display=topic.replace("-", " ")
            ),
        ),
        suggestions=suggestions or None,
        # Several independent recommendations: the clinician may accept any of them.
        selectionBehavior="any" if suggestions else None,
        overrideReasons=reasons,
        links=[Link(label=link.label, url=link.url, type="absolute") for link in definition.links]
        or None,
        extension={
            f"{EXTENSION_PREFIX}.rule": {"id": definition.id, "version": definition.version},
            **(
                {f"{EXTENSION_PREFIX}.evidence": list(finding.evidence)} if finding.evidence else {}
            ),
        },
    )
    return RenderedCard(card=card, rule=rule, suggestion_keys=tuple(keys))


def _has_empty(value: Any) -> bool:
    """Fast pre-check for ``_empty_paths`` (paths are only built when something is empty)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if node is None or node == "" or node == [] or node == {}:
            return True
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _empty_paths(value: Any, path: str = "") -> list[str]:
    if value is None or value == "" or value == [] or value == {}:
        return [path or "<root>"]
    if isinstance(value, Mapping):
        return [
            p for k, v in value.items() for p in _empty_paths(v, f"{path}.{k}" if path else str(k))
        ]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _empty_paths(v, f"{path}[{i}]")]
    return []


def check_card(card: Card) -> list[str]:
    """Violations of the CDS Hooks 2.0 card rules (empty list when the card is valid)."""
    problems: list[str] = []
    if not card.summary or len(card.summary) >= SUMMARY_MAX:
        problems.append("summary must be 1-139 characters")
    if not card.source.label:
        problems.append("source.label is required")
    if not card.uuid:
        problems.append("card uuid is required for feedback")
    if card.suggestions and card.selectionBehavior is None:
        problems.append("selectionBehavior is required with suggestions")
    if (
        card.selectionBehavior == "at-most-one"
        and sum(1 for s in card.suggestions or () if s.isRecommended) > 1
    ):
        problems.append("at most one recommended suggestion with at-most-one")
    for suggestion in card.suggestions or ():
        if not suggestion.uuid:
            problems.append("suggestion uuid is required")
        for action in suggestion.actions or ():
            if not action.description:
                problems.append("action description is required")
            if action.type == "delete" and not action.resourceId:
                problems.append("delete action needs resourceId")
            if action.type in ("create", "update") and not action.resource:
                problems.append(f"{action.type} action needs a resource")
    for reason in card.overrideReasons or ():
        if not (reason.code and reason.system and reason.display):
            problems.append("overrideReasons need code, system and display")
    for link in card.links or ():
        if link.appContext is not None and link.type != "smart":
            problems.append("appContext is only allowed on smart links")
        if not link.url.startswith(("https://", "http://")):
            problems.append("link url must be absolute")
    dumped = dump(card)
    if _has_empty(dumped):
        problems.extend(f"empty value at {p}" for p in _empty_paths(dumped))
    return problems
