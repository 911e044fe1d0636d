"""Value sets from hooks/valuesets/*.json (FHIR ValueSet with expansion), matched offline.

There is no terminology server at run time. A ValueSet file supplies:

* ``expansion.contains[]``: explicit (system, code) pairs; each may carry ``extension``s whose
  value becomes a concept property, keyed by the last path segment of the extension URL
  (e.g. ``.../StructureDefinition/ingredient`` -> ``"ingredient"``).
* ``compose.include[].filter`` with ``op: "is-a"``: for ICD-10-CM and ATC the hierarchy is the
  code prefix, so ``is-a M33`` matches M33, M33.1, M33.11 ... (other systems are refused at load).
* ``compose.exclude[]``: explicit codes or ``is-a`` filters that never match.
* ValueSet-level extensions ``text-pattern`` / ``text-exclude-pattern`` (regular expressions,
  case-insensitive): a fallback on ``CodeableConcept.text`` and coding displays for data coded
  locally or with codes not verified for the value set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cds_service.errors import ContentError
from cds_service.memo import Memo

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ATC = "http://www.whocc.no/atc"
MATCH_MEMO_SIZE = 20_000
# Systems whose hierarchy is expressed by the code prefix, so is-a works without a server.
PREFIX_HIERARCHY_SYSTEMS = frozenset({ICD10CM, ATC})


def normalize_code(system: str, code: str) -> str:
    """Comparable form of a code: ICD-10-CM without the dot and upper-case (feeds differ)."""
    code = code.strip()
    if system == ICD10CM:
        return code.replace(".", "").upper()
    if system == ATC:
        return code.upper()
    return code


@dataclass(frozen=True)
class Coding:
    """A plain (system, code, display) triple read from FHIR data."""

    system: str | None
    code: str | None
    display: str | None = None


@dataclass(frozen=True)
class Concept:
    """One member of a value set, with the properties its expansion entry carries."""

    system: str
    code: str
    display: str
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """Why a concept matched: an explicit or hierarchical code, or the text fallback."""

    concept: Concept | None  # None when only the text fallback matched
    by_text: bool
    coding: Coding | None = None


def _extension_value(ext: Mapping[str, Any]) -> Any:
    for key, value in ext.items():
        if key.startswith("value"):
            return value
    raise ContentError(f"extension {ext.get('url')!r} has no value")


def _ext_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class ValueSet:
    """A loaded value set; see the module docstring for the file format."""

    id: str
    title: str
    url: str
    concepts: dict[tuple[str, str], Concept]
    prefixes: dict[str, tuple[str, ...]]
    excluded_codes: frozenset[tuple[str, str]]
    excluded_prefixes: dict[str, tuple[str, ...]]
    text_pattern: re.Pattern[str] | None
    text_exclude: re.Pattern[str] | None
    # Memo of match() results: the same codes recur across patients and across the repeated
    # calls of one chart (order-select fires on every edit). Owned by this value set.
    _memo: Memo[tuple[tuple[Coding, ...], str | None], Match | None] = field(
        default_factory=lambda: Memo("valueset-match", MATCH_MEMO_SIZE), repr=False, compare=False
    )

    def match_code(self, system: str | None, code: str | None) -> Concept | None:
        """The concept for (system, code), or None. Hierarchy members get a bare Concept."""
        if not system or not code:
            return None
        norm = normalize_code(system, code)
        if (system, norm) in self.excluded_codes:
            return None
        if any(norm.startswith(p) for p in self.excluded_prefixes.get(system, ())):
            return None
        concept = self.concepts.get((system, norm))
        if concept is not None:
            return concept
        if any(norm.startswith(p) for p in self.prefixes.get(system, ())):
            return Concept(system=system, code=code, display="")
        return None

    def is_excluded(self, system: str | None, code: str | None) -> bool:
        if not system or not code:
            return False
        norm = normalize_code(system, code)
        return (system, norm) in self.excluded_codes or any(
            norm.startswith(p) for p in self.excluded_prefixes.get(system, ())
        )

    def match_text(self, text: str | None) -> bool:
        """True when ``text`` matches the fallback pattern and not the exclude pattern."""
        if not text or self.text_pattern is None:
            return False
        if self.text_exclude is not None and self.text_exclude.search(text):
            return False
        return self.text_pattern.search(text) is not None

    def match(self, codings: Iterable[Coding], text: str | None = None) -> Match | None:
        """Match a CodeableConcept given as codings plus text.

        A code match wins. An explicitly excluded code vetoes the text fallback (so
        "Inclusion body myositis" coded as such is not caught by a ``myositis`` pattern).
        """
        found = tuple(codings)
        return self._memo.get((found, text), lambda: self._match(found, text))

    def _match(self, codings: tuple[Coding, ...], text: str | None) -> Match | None:
        for coding in codings:
            concept = self.match_code(coding.system, coding.code)
            if concept is not None:
                return Match(concept=concept, by_text=False, coding=coding)
        if any(self.is_excluded(c.system, c.code) for c in codings):
            return None
        for candidate in [text, *(c.display for c in codings)]:
            if self.match_text(candidate):
                return Match(concept=None, by_text=True)
        return None


def _compile(pattern: str | None, where: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ContentError(f"{where}: invalid text pattern") from exc


def _filters(section: Iterable[Mapping[str, Any]], where: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for include in section:
        system = include.get("system", "")
        for flt in include.get("filter", []):
            if flt.get("op") != "is-a" or flt.get("property") != "concept":
                raise ContentError(f"{where}: only 'concept is-a' filters are supported")
            if system not in PREFIX_HIERARCHY_SYSTEMS:
                raise ContentError(f"{where}: is-a needs a prefix-hierarchy system, not {system}")
            out.setdefault(system, []).append(normalize_code(system, str(flt["value"])))
    return {k: tuple(v) for k, v in out.items()}


def parse_valueset(data: Mapping[str, Any], where: str) -> ValueSet:
    """Build a ValueSet from its JSON; raises ContentError on anything malformed."""
    if data.get("resourceType") != "ValueSet":
        raise ContentError(f"{where}: resourceType must be ValueSet")
    vs_id = data.get("id")
    if not isinstance(vs_id, str) or not vs_id:
        raise ContentError(f"{where}: missing id")
    if not data.get("description") or not data.get("date"):
        raise ContentError(f"{where}: a value set must cite its source (description) and date")
    concepts: dict[tuple[str, str], Concept] = {}
    for item in data.get("expansion", {}).get("contains", []):
        system, code = item.get("system"), item.get("code")
        if not system or not code:
            raise ContentError(f"{where}: expansion entry without system or code")
        props = {_ext_name(ext["url"]): _extension_value(ext) for ext in item.get("extension", [])}
        norm = normalize_code(system, str(code))
        concepts[(system, norm)] = Concept(system, str(code), item.get("display", ""), props)
    compose = data.get("compose", {})
    excluded_codes = frozenset(
        (inc["system"], normalize_code(inc["system"], c["code"]))
        for inc in compose.get("exclude", [])
        for c in inc.get("concept", [])
    )
    text_pattern = text_exclude = None
    for ext in data.get("extension", []):
        name = _ext_name(ext.get("url", ""))
        if name == "text-pattern":
            text_pattern = _compile(ext.get("valueString"), where)
        elif name == "text-exclude-pattern":
            text_exclude = _compile(ext.get("valueString"), where)
    valueset = ValueSet(
        id=vs_id,
        title=data.get("title", vs_id),
        url=data.get("url", ""),
        concepts=concepts,
        prefixes=_filters(compose.get("include", []), where),
        excluded_codes=excluded_codes,
        excluded_prefixes=_filters(compose.get("exclude", []), where),
        text_pattern=text_pattern,
        text_exclude=text_exclude,
    )
    if not concepts and not valueset.prefixes and text_pattern is None:
        raise ContentError(f"{where}: value set matches nothing")
    return valueset


class ValueSetLibrary(Mapping[str, ValueSet]):
    """All value sets by id; a missing id is a content error."""

    def __init__(self, valuesets: Iterable[ValueSet]) -> None:
        self._by_id: dict[str, ValueSet] = {}
        for vs in valuesets:
            if vs.id in self._by_id:
                raise ContentError(f"duplicate value set id {vs.id}")
            self._by_id[vs.id] = vs

    def __getitem__(self, key: str) -> ValueSet:
        try:
            return self._by_id[key]
        except KeyError:
            raise ContentError(f"unknown value set {key!r}") from None

    def __iter__(self) -> Any:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)


def load_valuesets(directory: Path) -> ValueSetLibrary:
    """Load every ``*.json`` in ``directory``; raises ContentError on the first bad file."""
    sets = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ContentError(f"{path.name}: not readable JSON") from exc
        vs = parse_valueset(data, path.name)
        if vs.id != path.stem:
            raise ContentError(f"{path.name}: id {vs.id!r} must equal the file name")
        sets.append(vs)
    return ValueSetLibrary(sets)
