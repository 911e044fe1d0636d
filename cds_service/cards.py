"""Render Findings as CDS Hooks cards, and check every card against the 2.0 card rules."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cds_service.card_text import SUGGESTIONS_MAX
from cds_service.catalog import Rule, Service
from cds_service.rule_kind import Finding

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
    card: dict[str, Any]  # the CDS Hooks 2.0 card as sent (JSON-ready, no None or empty values)
    rule: Rule
    suggestion_keys: tuple[tuple[str, str], ...]  # (suggestion uuid, "topic/key")
    finding: Finding  # what the card was built from (cds-service explain tells it)

    @property
    def uuid(self) -> str:
        return str(self.card["uuid"])

    @property
    def indicator(self) -> str:
        return str(self.card["indicator"])


Filler = Callable[[Mapping[str, str]], Any]
_EMPTY: tuple[Any, ...] = ("", None, [], {})


def _fill(value: Any, fields: Mapping[str, str]) -> Any:
    """``value`` with ``{field}`` placeholders filled in; keys left empty are dropped."""
    if isinstance(value, str):
        return value.format_map(fields) if "{" in value or "}" in value else value
    if isinstance(value, Mapping):
        filled = {k: _fill(v, fields) for k, v in value.items()}
        return {k: v for k, v in filled.items() if v not in _EMPTY}
    if isinstance(value, list):
        return [_fill(v, fields) for v in value]
    return value


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return "{" in value or "}" in value
    if isinstance(value, Mapping):
        return any(_has_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return False


def compile_template(value: Any) -> Filler:
    """A function equal to ``lambda fields: _fill(value, fields)``, built once per template.

    Subtrees without placeholders are filled once and shared between cards (the response is
    serialised as is and never modified), so a card costs only its few request-specific values.
    """
    if not _has_placeholder(value):
        constant = _fill(value, {})
        return lambda _fields: constant
    if isinstance(value, str):
        return value.format_map
    if isinstance(value, Mapping):
        return _compile_mapping(value)
    items = [compile_template(v) for v in value]
    return lambda fields: [fill(fields) for fill in items]


def _compile_mapping(value: Mapping[str, Any]) -> Filler:
    """A mapping with placeholders: each key keeps its place; a constant value is filled once
    (and left out if empty), a templated one is filled per card and left out when empty."""
    parts: list[tuple[str, Filler | None, Any]] = []  # (key, filler, or the constant value)
    for k, v in value.items():
        if _has_placeholder(v):
            parts.append((k, compile_template(v), None))
        elif (constant := _fill(v, {})) not in _EMPTY:
            parts.append((k, None, constant))

    def fill_mapping(fields: Mapping[str, str]) -> dict[str, Any]:
        filled: dict[str, Any] = {}
        for k, fill, constant in parts:
            if fill is None:
                filled[k] = constant
            elif (v := fill(fields)) not in _EMPTY:
                filled[k] = v
        return filled

    return fill_mapping


@dataclass(frozen=True)
class _RuleParts:
    """What a rule's cards share, built once per rule: source, override reasons, links,
    and the compiled resource templates of its suggestions' actions."""

    source: dict[str, Any]
    override_reasons: list[dict[str, str]]
    links: list[dict[str, str]]
    rule_extension: dict[str, Any]
    resources: dict[tuple[str, int], Filler]


def _parts(rule: Rule, service: Service) -> _RuleParts:
    return service.derived(("card-parts", rule.definition.id), lambda: _build_parts(rule, service))


def _build_parts(rule: Rule, service: Service) -> _RuleParts:
    definition, sdef = rule.definition, service.definition
    topic = definition.topic
    return _RuleParts(
        source=_fill(
            {
                "label": definition.source.label,
                "url": definition.source.url,
                "topic": {
                    "system": sdef.topic_system,
                    "code": topic,
                    "display": topic.replace("-", " "),
                },
            },
            {},
        ),
        override_reasons=[
            _fill({"system": sdef.override_reason_system, "code": r.code, "display": r.display}, {})
            for r in sdef.override_reasons
        ],
        links=[
            {"label": link.label, "url": link.url, "type": "absolute"} for link in definition.links
        ],
        rule_extension={"id": definition.id, "version": definition.version},
        resources={
            (key, i): compile_template(action.resource)
            for key, spec in definition.suggestions.items()
            for i, action in enumerate(spec.actions)
            if action.resource
        },
    )


def new_uuid() -> str:
    """A random (version 4) UUID string, as ``str(uuid.uuid4())`` without the UUID object."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def card_paragraphs(
    finding: Finding, texts: Mapping[str, str], sentences: frozenset[str]
) -> list[str]:
    """The detail's paragraphs: one per fragment, a fragment with no card text ("") being
    explanation only (cds-service explain); a fragment of ``sentences`` continues the
    paragraph before it."""
    paragraphs: list[str] = []
    for d in finding.details:
        if not (text := texts[d]):
            continue
        text = text.format_map(finding.facts).strip()
        if d in sentences and paragraphs:
            paragraphs[-1] = f"{paragraphs[-1]} {text}"
        else:
            paragraphs.append(text)
    return paragraphs


@dataclass
class _Buttons:
    """A card's suggestions as rendered, with what stayed off the buttons and why."""

    suggestions: list[dict[str, Any]] = field(default_factory=list)
    keys: list[tuple[str, str]] = field(default_factory=list)  # (suggestion uuid, topic/key)
    overflow: list[str] = field(default_factory=list)  # beyond SUGGESTIONS_MAX: named in text
    held: list[str] = field(default_factory=list)  # data they need could not be read
    held_data: list[str] = field(default_factory=list)  # the prefetch keys that could not


def _buttons(
    finding: Finding,
    rule: Rule,
    parts: _RuleParts,
    fields: Mapping[str, Any],
    silenced_suggestions: frozenset[str],
    unread: Sequence[str],
    new_id: Callable[[], str],
) -> _Buttons:
    """The finding's suggestions as buttons: recently accepted ones left out, those whose
    needed data could not be read held back, at most SUGGESTIONS_MAX (the rest overflow)."""
    definition = rule.definition
    topic = definition.topic
    out = _Buttons()
    suggestions, keys, overflow = out.suggestions, out.keys, out.overflow
    held, held_data = out.held, out.held_data
    for key in finding.suggestions:
        if f"{topic}/{key}" in silenced_suggestions:
            continue
        spec = definition.suggestions[key]
        unsure = [k for k in spec.needs if k in unread]
        if unsure:  # the data that decides whether this order is safe could not be read
            held.append(spec.label)
            held_data.extend(k for k in unsure if k not in held_data)
            continue
        actions: list[dict[str, Any]] = []
        for i, a in enumerate(spec.actions):
            if a.type == "delete":  # one action per draft order the rule wants removed
                actions.extend(
                    {"type": "delete", "description": a.description, "resourceId": target}
                    for target in finding.delete_targets.get(key, ())
                )
            else:
                action: dict[str, Any] = {"type": a.type, "description": a.description}
                fill = parts.resources.get((key, i))
                if fill is not None:
                    action["resource"] = fill(fields)
                actions.append(action)
        if not actions:
            continue  # a delete suggestion without a target has nothing to do
        if len(suggestions) >= SUGGESTIONS_MAX:
            overflow.append(spec.label)  # named in the detail instead of a button
            continue
        suggestion_id = new_id()
        suggestion: dict[str, Any] = {"label": spec.label, "uuid": suggestion_id}
        if key in finding.recommended:
            suggestion["isRecommended"] = True
        suggestion["actions"] = actions
        suggestions.append(suggestion)
        keys.append((suggestion_id, f"{topic}/{key}"))
    return out


def render_card(
    finding: Finding,
    rule: Rule,
    service: Service,
    context: CardContext,
    *,
    silenced_suggestions: frozenset[str] = frozenset(),
    unread: Sequence[str] = (),
    new_id: Callable[[], str] = new_uuid,
) -> RenderedCard:
    """Build the card for one finding; suggestions already accepted recently are left out.
    ``unread``: prefetch keys the rule judges from that could not be read in full (the card's
    last paragraph names them)."""
    definition = rule.definition
    parts = _parts(rule, service)
    # Request fields win over the finding's values of the same name.
    fields = {**finding.facts, **context.fields()}
    buttons = _buttons(finding, rule, parts, fields, silenced_suggestions, unread, new_id)
    suggestions, keys, overflow = buttons.suggestions, buttons.keys, buttons.overflow
    held, held_data = buttons.held, buttons.held_data
    paragraphs = card_paragraphs(finding, definition.details, rule.kind.sentences)
    if overflow:
        paragraphs.append(service.definition.overflow_detail.format(labels="; ".join(overflow)))
    if held:
        data = service.data_text(held_data)
        paragraphs.append(service.definition.held_detail.format(labels="; ".join(held), data=data))
    if unread:
        paragraphs.append(
            service.definition.incomplete_detail.format(data=service.data_text(unread))
        )
    detail = "\n\n".join(paragraphs)
    card: dict[str, Any] = {
        "uuid": new_id(),
        "summary": definition.summaries[finding.summary].format_map(finding.facts),
    }
    if detail:
        card["detail"] = detail
    card["indicator"] = finding.indicator
    card["source"] = parts.source
    if suggestions:
        card["suggestions"] = suggestions
        # Several independent recommendations: the clinician may accept any of them.
        card["selectionBehavior"] = "any"
    card["overrideReasons"] = parts.override_reasons
    if parts.links:
        card["links"] = parts.links
    extension: dict[str, Any] = {f"{EXTENSION_PREFIX}.rule": parts.rule_extension}
    if finding.evidence:
        extension[f"{EXTENSION_PREFIX}.evidence"] = list(finding.evidence)
    card["extension"] = extension
    return RenderedCard(card=card, rule=rule, suggestion_keys=tuple(keys), finding=finding)


def _has_empty(value: Any) -> bool:
    """Fast pre-check for ``_empty_paths`` (paths are only built when something is empty):
    whether ``value`` is or holds None, "" or an empty list or mapping."""
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        kind = type(node)
        if kind is dict or (kind is not list and isinstance(node, Mapping)):
            children = node.values()
        elif kind is list or isinstance(node, list):
            children = node
        else:  # a leaf
            if node is None or (kind is str and not node):
                return True
            continue
        if not node:
            return True
        for child in children:
            if type(child) is not str:
                push(child)
            elif not child:  # strings, most of a card, are checked without a push
                return True
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


def check_card(card: Mapping[str, Any]) -> list[str]:
    """Violations of the CDS Hooks 2.0 card rules in a wire card (empty list when valid)."""
    problems = _card_problems(card)
    suggestions = card.get("suggestions") or ()
    problems.extend(_selection_problems(card, suggestions))
    for suggestion in suggestions:
        problems.extend(_suggestion_problems(suggestion))
    for reason in card.get("overrideReasons") or ():
        if not (reason.get("code") and reason.get("system") and reason.get("display")):
            problems.append("overrideReasons need code, system and display")
    for link in card.get("links") or ():
        problems.extend(_link_problems(link))
    if _has_empty(card):
        problems.extend(f"empty value at {p}" for p in _empty_paths(card))
    return problems


def _card_problems(card: Mapping[str, Any]) -> list[str]:
    """The card's own required fields: summary, source.label, uuid, indicator."""
    problems: list[str] = []
    summary = card.get("summary")
    if not isinstance(summary, str) or not summary or len(summary) >= SUMMARY_MAX:
        problems.append("summary must be 1-139 characters")
    if not (card.get("source") or {}).get("label"):
        problems.append("source.label is required")
    if not card.get("uuid"):
        problems.append("card uuid is required for feedback")
    if card.get("indicator") not in ("info", "warning", "critical"):
        problems.append("indicator must be info, warning or critical")
    return problems


def _selection_problems(card: Mapping[str, Any], suggestions: Any) -> list[str]:
    """selectionBehavior: required with suggestions; at-most-one allows one recommendation."""
    problems: list[str] = []
    behavior = card.get("selectionBehavior")
    if suggestions and behavior is None:
        problems.append("selectionBehavior is required with suggestions")
    if behavior == "at-most-one" and sum(1 for s in suggestions if s.get("isRecommended")) > 1:
        problems.append("at most one recommended suggestion with at-most-one")
    return problems


def _suggestion_problems(suggestion: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if not suggestion.get("uuid"):
        problems.append("suggestion uuid is required")
    for action in suggestion.get("actions") or ():
        problems.extend(_action_problems(action))
    return problems


def _action_problems(action: Mapping[str, Any]) -> list[str]:
    """An action needs a description; delete needs resourceId; create and update a resource."""
    problems: list[str] = []
    kind = action.get("type")
    if not action.get("description"):
        problems.append("action description is required")
    if kind == "delete" and not action.get("resourceId"):
        problems.append("delete action needs resourceId")
    if kind in ("create", "update") and not action.get("resource"):
        problems.append(f"{kind} action needs a resource")
    return problems


def _link_problems(link: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    if link.get("appContext") is not None and link.get("type") != "smart":
        problems.append("appContext is only allowed on smart links")
    if not str(link.get("url", "")).startswith(("https://", "http://")):
        problems.append("link url must be absolute")
    return problems
