"""Load and validate hooks/ at startup: services, rules, value sets, thresholds, card text.

A content error (typo, unknown kind or value set, missing threshold, template placeholder the
rule kind does not provide, summary of 140 characters or more) stops startup, never a request.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cds_service.card_text import DETAIL_MAX_WORDS, detail_words, leads_with_action
from cds_service.cdshooks import PREFETCH_TOKEN as TOKEN
from cds_service.cdshooks import USER_TOKENS
from cds_service.errors import ContentError
from cds_service.exposure import GlucocorticoidKnowledge
from cds_service.facts import RoleMap
from cds_service.hook_table import DEFAULT_HOOK, HOOKS
from cds_service.prefetch_templates import expand_prefetch
from cds_service.record import Selector
from cds_service.rule_kind import RuleKind
from cds_service.thresholds import Thresholds, load_thresholds
from cds_service.valuesets import ValueSet, ValueSetLibrary, load_valuesets

# One fragment may take half a card's word budget (the rest is for the warnings beside it).
FRAGMENT_MAX_WORDS = DETAIL_MAX_WORDS // 2
SUMMARY_MAX = 140  # CDS Hooks 2.0: summary SHALL be fewer than 140 characters
SUPPORTED_HOOKS = frozenset(HOOKS)
SERVICE_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
SUGGESTION_FIELDS = frozenset({"patient_reference", "patient_id", "today", "encounter_reference"})


class _Content(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceDef(_Content):
    label: str = Field(min_length=1)
    url: str | None = None


class ActionDef(_Content):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None


class SuggestionDef(_Content):
    label: str = Field(min_length=1)
    recommended: bool = False
    interval_days: int | None = None  # an accepted suggestion silences itself this long
    # Prefetch keys whose content decides whether this order is safe (allergies for a
    # sulfonamide, kidney results for its dose): when one could not be read in full the button
    # is held back and the card says so (service held_detail).
    needs: list[str] = Field(default_factory=list)
    actions: list[ActionDef] = Field(min_length=1)


class LinkDef(_Content):
    label: str
    url: str

    @field_validator("url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("links must be absolute https URLs")
        return value


class RuleDef(_Content):
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    kind: str
    version: int = Field(ge=1)
    topic: str
    hooks: list[str] = Field(default_factory=lambda: [DEFAULT_HOOK])
    needs: list[str] = Field(default_factory=list)
    source: SourceDef
    summaries: dict[str, str]
    # Card text per detail fragment: leads with what to do, a few words ("" keeps the fragment
    # out of the card). The reasoning behind it, course lists included, is in ``explanations``
    # (same keys), which `cds-service explain` and the preview page show below the cards.
    details: dict[str, str]
    explanations: dict[str, str] = Field(default_factory=dict)
    suggestions: dict[str, SuggestionDef] = Field(default_factory=dict)
    links: list[LinkDef] = Field(default_factory=list)
    # Run only when no other rule of the call found anything (snoozed or repeated findings
    # count as found): "nothing is due yet" must not sit beside a card that says what is.
    fallback: bool = False


class OverrideReasonDef(_Content):
    code: str
    display: str = Field(min_length=1)
    snooze_days: int | None = None  # overriding with this reason silences the topic this long


class ServiceDef(_Content):
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    hooks: list[str] = Field(min_length=1)
    title: str
    description: str
    version: int = Field(ge=1)
    usage_requirements: str | None = None
    topic_system: str
    override_reason_system: str
    prefetch: dict[str, str]
    valuesets: dict[str, str]
    override_reasons: list[OverrideReasonDef] = Field(min_length=1)
    rule: list[RuleDef] = Field(min_length=1)
    selection: dict[str, list[str]]  # resource type -> value set roles that make it relevant
    # Order hooks: a card on the same topic for the same draft order issued this recently (e.g.
    # at order-select) is not repeated (e.g. at order-sign). None: never suppressed.
    repeat_window_minutes: int | None = Field(default=None, ge=1)
    # Discovery lists a service once per hook, and a discovery document's ids must be unique
    # (the CDS Hooks Sandbox keys services by id): a service serving several hooks gives each
    # hook its own id here. The service's own id keeps answering every hook it serves.
    hook_ids: dict[str, str] = Field(default_factory=dict)
    # Plain words for each prefetch key, and the paragraph a card adds when data it judges
    # from could not be read in full ({data}: the labels of those keys).
    data_labels: dict[str, str]
    incomplete_detail: str = Field(min_length=1)
    # A card offers at most card_text.SUGGESTIONS_MAX buttons; suggestions beyond them (the
    # finding lists them most important first) are named in this paragraph ({labels}).
    overflow_detail: str = Field(min_length=1)
    held_detail: str = Field(min_length=1)


@dataclass(frozen=True)
class Rule:
    definition: RuleDef
    kind: RuleKind


T = TypeVar("T")


@dataclass(frozen=True)
class Service:
    """One service id with its validated rules and resolved value sets."""

    definition: ServiceDef
    rules: tuple[Rule, ...]
    valuesets: Mapping[str, ValueSet]  # role -> value set
    selector: Selector
    thresholds: Thresholds
    _derived: dict[Hashable, Any] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def derived(self, key: Hashable, build: Callable[[], T]) -> T:
        """A value built from this loaded service once and kept with it (the parts every card
        of a rule shares, keyed by rule id, so bounded by the rules): freed with the service."""
        if key not in self._derived:
            self._derived[key] = build()
        value: T = self._derived[key]
        return value

    @property
    def id(self) -> str:
        return self.definition.id

    def discovery_id(self, hook: str) -> str:
        """The id discovery lists for ``hook`` (its own id when the hook has none)."""
        return self.definition.hook_ids.get(hook, self.definition.id)

    @property
    def ids(self) -> tuple[str, ...]:
        """Every id this service answers to: its own and its per-hook ids."""
        return (self.definition.id, *self.definition.hook_ids.values())

    def keys_read(self, rule: Rule) -> tuple[str, ...]:
        """The prefetch keys a rule's judgement reads: those whose resources carry the kind's
        value-set roles, the glucocorticoid records every kind reads (exposure), and the
        patient. A card says so when one of them could not be read in full."""
        return self._keys_read[rule.definition.id]

    @cached_property
    def _keys_read(self) -> dict[str, tuple[str, ...]]:
        types_of_key = {k: resource_types(t) for k, t in self.definition.prefetch.items()}
        out: dict[str, tuple[str, ...]] = {}
        for rule in self.rules:
            roles = set(rule.kind.roles)
            types = {t for t, rs in self.definition.selection.items() if roles & set(rs)}
            types |= EXPOSURE_TYPES
            out[rule.definition.id] = tuple(k for k, ts in types_of_key.items() if ts & types)
        return out

    def needs(self, hook: str) -> frozenset[str]:
        return frozenset(
            key
            for rule in self.rules
            if hook in rule.definition.hooks
            for key in rule.definition.needs
        )

    @cached_property
    def role_map(self) -> RoleMap:
        """Resource type -> the (role, value set) pairs its resources are matched against."""
        return RoleMap(
            {
                rtype: tuple((role, self.valuesets[role]) for role in roles)
                for rtype, roles in self.definition.selection.items()
            }
        )

    @cached_property
    def glucocorticoid_knowledge(self) -> GlucocorticoidKnowledge:
        """The drug knowledge the exposure engine needs, from the value-set roles and the
        prednisone-equivalent factors (built once per loaded service, owner of its memos)."""
        vs = self.valuesets
        return GlucocorticoidKnowledge(
            ingredients=vs["gc_ingredients"],
            products=vs["gc_products"],
            excluded=vs["gc_excluded"],
            nonsystemic_routes=vs["nonsystemic_routes"],
            intravenous_routes=vs["intravenous_routes"],
            peq_factor={
                k: v.exact for k, v in self.thresholds.section("prednisone_equivalents").items()
            },
            body_weight=vs.get("body_weight"),
            body_height=vs.get("body_height"),
        )

    def data_text(self, keys: Iterable[str]) -> str:
        """Prefetch keys in the clinician's words (``data_labels``), joined for a card."""
        return ", ".join(self.definition.data_labels[key] for key in keys)

    @cached_property
    def snooze_days(self) -> dict[str, int]:
        return {r.code: r.snooze_days for r in self.definition.override_reasons if r.snooze_days}

    @cached_property
    def suggestion_intervals(self) -> dict[str, int]:
        return {
            f"{rule.definition.topic}/{key}": s.interval_days
            for rule in self.rules
            for key, s in rule.definition.suggestions.items()
            if s.interval_days
        }


@dataclass(frozen=True)
class Catalog:
    services: tuple[Service, ...]
    thresholds: Thresholds
    valuesets: ValueSetLibrary

    def find(self, service_id: str) -> Service | None:
        """The service with this id or per-hook id."""
        return next((s for s in self.services if service_id in s.ids), None)


# Every kind reads the glucocorticoid status (medication records and their Medications, body
# weight and height for per-kg and per-m2 doses) and the patient.
EXPOSURE_TYPES = frozenset(
    {
        "Patient",
        "Observation",
        "Medication",
        "MedicationRequest",
        "MedicationStatement",
        "MedicationAdministration",
        "MedicationDispense",
    }
)


def resource_types(template: str) -> frozenset[str]:
    """The resource types a prefetch query returns: its own type and ``_include`` targets
    ("MedicationRequest?...&_include=MedicationRequest:medication" -> MedicationRequest,
    Medication)."""
    path, _, query = template.partition("?")
    types = {path.split("/", 1)[0]}
    for param in query.split("&"):
        name, _, value = param.partition("=")
        if name.startswith("_include") and value.count(":") >= 1:
            target = value.split(":")[1]
            types.add("Medication" if target == "medication" else target[:1].upper() + target[1:])
    return frozenset(types)


def _check_hook_ids(service: ServiceDef, where: str) -> None:
    for hook, hook_id in service.hook_ids.items():
        if hook not in service.hooks:
            raise ContentError(f"{where}.hook_ids: {hook!r} is not served by this service")
        if not SERVICE_ID.fullmatch(hook_id):
            raise ContentError(f"{where}.hook_ids.{hook}: not a kebab-case id")


def _check_data_labels(service: ServiceDef, where: str) -> None:
    if set(service.data_labels) != set(service.prefetch):
        raise ContentError(f"{where}.data_labels: one label for each prefetch key")
    if _placeholders(service.incomplete_detail, f"{where}.incomplete_detail") != {"data"}:
        raise ContentError(f"{where}.incomplete_detail: takes exactly the placeholder {{data}}")
    if _placeholders(service.overflow_detail, f"{where}.overflow_detail") != {"labels"}:
        raise ContentError(f"{where}.overflow_detail: takes exactly the placeholder {{labels}}")
    if _placeholders(service.held_detail, f"{where}.held_detail") != {"labels", "data"}:
        raise ContentError(
            f"{where}.held_detail: takes exactly the placeholders {{labels}}, {{data}}"
        )
    for name in ("incomplete_detail", "overflow_detail", "held_detail"):
        if not leads_with_action(getattr(service, name)):
            raise ContentError(f"{where}.{name}: must start with what to do (an action verb)")


def _check_suggestion_needs(service: ServiceDef, where: str) -> None:
    """A suggestion's ``needs`` name prefetch keys (held back when one is not read in full)."""
    for rule in service.rule:
        for key, suggestion in rule.suggestions.items():
            unknown = set(suggestion.needs) - set(service.prefetch)
            if unknown:
                raise ContentError(
                    f"{where}.{rule.id}.suggestions.{key}.needs: not prefetch keys: "
                    + ", ".join(sorted(unknown))
                )


def _placeholders(template: str, where: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError as exc:
        raise ContentError(f"{where}: malformed template") from exc


def _check_text(rule: RuleDef, kind: RuleKind, where: str) -> None:
    unknown_summaries = set(rule.summaries) ^ set(kind.summaries)
    if unknown_summaries:
        raise ContentError(f"{where}: summaries must be exactly {sorted(kind.summaries)}")
    missing_details = set(kind.details) - set(rule.details)
    extra_details = set(rule.details) - set(kind.details)
    if missing_details or extra_details:
        raise ContentError(f"{where}: details must be exactly {sorted(kind.details)}")
    if kind.sentences - set(kind.details):
        raise ContentError(f"{where}: sentences must be detail fragments of the kind")
    if set(rule.suggestions) ^ set(kind.suggestions):
        raise ContentError(f"{where}: suggestions must be exactly {sorted(kind.suggestions)}")
    for name, template in [
        *rule.summaries.items(),
        *rule.details.items(),
        *rule.explanations.items(),
    ]:
        unknown = _placeholders(template, f"{where}.{name}") - set(kind.sample_facts)
        if unknown:
            raise ContentError(f"{where}.{name}: unknown placeholders {sorted(unknown)}")
    _check_card_text(rule, where)
    for name, template in rule.summaries.items():
        text = template.format(**kind.sample_facts)
        if len(text) >= SUMMARY_MAX:
            raise ContentError(f"{where}.{name}: summary must be under {SUMMARY_MAX} characters")
    for name, suggestion in rule.suggestions.items():
        for action in suggestion.actions:
            for value in _strings(action.resource):
                # Request fields, or a value the finding provides (a dose computed from the
                # patient's weight): the kind's sample_facts name every such value.
                unknown = (
                    _placeholders(value, f"{where}.{name}")
                    - SUGGESTION_FIELDS
                    - set(kind.sample_facts)
                )
                if unknown:
                    raise ContentError(
                        f"{where}.suggestions.{name}: unknown fields {sorted(unknown)}"
                    )
            if action.type in ("create", "update") and not action.resource:
                raise ContentError(f"{where}.suggestions.{name}: {action.type} needs a resource")
            if action.type == "delete" and action.resource:
                # resourceId is the draft order the rule found, filled in when the card is built
                raise ContentError(f"{where}.suggestions.{name}: delete takes no resource")


def _check_card_text(rule: RuleDef, where: str) -> None:
    """Card fragments lead with an action and stay short; a fragment kept out of the card
    ("") has its explanation, so nothing the rule found is lost."""
    if set(rule.explanations) - set(rule.details):
        raise ContentError(f"{where}.explanations: keys must be detail fragments")
    for name, text in rule.details.items():
        if not text:
            if not rule.explanations.get(name):
                raise ContentError(f"{where}.details.{name}: empty card text needs an explanation")
            continue
        if not leads_with_action(text):
            raise ContentError(f"{where}.details.{name}: must start with what to do (action verb)")
        if detail_words(text) > FRAGMENT_MAX_WORDS:
            raise ContentError(f"{where}.details.{name}: over {FRAGMENT_MAX_WORDS} words")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _check_prefetch(service: ServiceDef, where: str) -> None:
    allowed = {"context.patientId", "context.userId", "context.encounterId", *USER_TOKENS}
    for key, template in service.prefetch.items():
        for token in TOKEN.findall(template):
            if token not in allowed:
                raise ContentError(f"{where}.prefetch.{key}: token {token!r} is not allowed")
        if "/{{context.userId}}" in template or "sort:" in template or "today()" in template:
            raise ContentError(f"{where}.prefetch.{key}: not CDS Hooks 2.0 / R4 search syntax")


def build_service(
    data: Mapping[str, Any],
    where: str,
    valuesets: ValueSetLibrary,
    thresholds: Thresholds,
    kinds: Mapping[str, RuleKind],
) -> Service:
    try:
        definition = ServiceDef.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(map(str, e["loc"])) for e in exc.errors()})
        raise ContentError(f"{where}: invalid service definition at {fields}") from None
    for hook in definition.hooks:
        if hook not in SUPPORTED_HOOKS:
            raise ContentError(f"{where}: unsupported hook {hook!r}")
    _check_hook_ids(definition, where)
    resolved = {role: valuesets[vs_id] for role, vs_id in definition.valuesets.items()}
    prefetch = expand_prefetch(definition.prefetch, resolved, definition.selection, where)
    definition = definition.model_copy(update={"prefetch": prefetch})  # codes from value sets
    _check_prefetch(definition, where)
    _check_data_labels(definition, where)
    _check_suggestion_needs(definition, where)
    rules = []
    seen: set[str] = set()
    for rule_def in definition.rule:
        rwhere = f"{where}:{rule_def.id}"
        if rule_def.id in seen:
            raise ContentError(f"{rwhere}: duplicate rule id")
        seen.add(rule_def.id)
        kind = kinds.get(rule_def.kind)
        if kind is None:
            raise ContentError(f"{rwhere}: unknown rule kind {rule_def.kind!r}")
        for hook in rule_def.hooks:
            if hook not in definition.hooks:
                raise ContentError(f"{rwhere}: hook {hook!r} is not served by {definition.id}")
        for key in rule_def.needs:
            if key not in definition.prefetch:
                raise ContentError(f"{rwhere}: needs unknown prefetch key {key!r}")
        for role in kind.roles:
            if role not in resolved:
                raise ContentError(f"{rwhere}: service lacks value set role {role!r}")
        for path in kind.thresholds:
            thresholds[path]  # raises ContentError when missing
        _check_text(rule_def, kind, rwhere)
        rules.append(Rule(rule_def, kind))
    by_type: dict[str, list[ValueSet]] = {}
    for rtype, roles in definition.selection.items():
        for role in roles:
            if role not in resolved:
                raise ContentError(f"{where}: selection uses unknown role {role!r}")
        by_type[rtype] = [resolved[role] for role in roles]
    return Service(definition, tuple(rules), resolved, Selector(by_type), thresholds)


def load_catalog(hooks_dir: Path, kinds: Mapping[str, RuleKind]) -> Catalog:
    """Load hooks/: valuesets/, thresholds.toml and every ``<service-id>/service.toml``, with
    each rule's ``kind`` looked up in ``kinds`` (the registry in cds_service.topics)."""
    valuesets = load_valuesets(hooks_dir / "valuesets")
    thresholds = load_thresholds(hooks_dir / "thresholds.toml")
    services = []
    for path in sorted(hooks_dir.glob("*/service.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ContentError(f"{path.parent.name}/service.toml: not readable TOML") from exc
        where = f"{path.parent.name}/service.toml"
        service = build_service(data, where, valuesets, thresholds, kinds)
        if service.id != path.parent.name:
            raise ContentError(f"{path.parent.name}: service id must equal the folder name")
        services.append(service)
    if not services:
        raise ContentError("no services found in hooks/")
    ids = [i for s in services for i in s.ids]
    if len(ids) != len(set(ids)):
        raise ContentError("service ids and hook_ids must be unique across hooks/")
    return Catalog(tuple(services), thresholds, valuesets)
