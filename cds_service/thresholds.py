"""hooks/thresholds.toml: every clinical number with its unit and source, read once at startup."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from cds_service.errors import ContentError


@dataclass(frozen=True)
class Threshold:
    """One leaf. ``exact`` is the value as written (a ratio "5/6" stays 5/6); ``value`` is its
    nearest float, for comparisons. Compute with ``exact`` where rounding would matter."""

    value: float
    unit: str
    source: str
    note: str | None = None
    exact: Fraction = Fraction(0)


T = TypeVar("T")


class Thresholds(Mapping[str, Threshold]):
    """Thresholds by dotted path (``infection.pjp_min_daily_mg``); a missing path is a content error."""

    def __init__(self, items: Mapping[str, Threshold]) -> None:
        self._items = dict(items)
        self._derived: dict[str, Any] = {}

    def __getitem__(self, path: str) -> Threshold:
        try:
            return self._items[path]
        except KeyError:
            raise ContentError(f"unknown threshold {path!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def value(self, path: str) -> float:
        try:
            return self._items[path].value
        except KeyError:
            raise ContentError(f"unknown threshold {path!r}") from None

    def exact(self, path: str) -> Fraction:
        return self[path].exact

    def derived(self, key: str, build: Callable[[Thresholds], T]) -> T:
        """``build(self)``, built once and kept with these thresholds (card text made of their
        numbers alone, the same on every call): one value per key, freed with them. The value
        is shared, so it must not be modified."""
        if key not in self._derived:
            self._derived[key] = build(self)
        value: T = self._derived[key]
        return value

    def section(self, name: str) -> dict[str, Threshold]:
        prefix = name + "."
        return {k.removeprefix(prefix): v for k, v in self._items.items() if k.startswith(prefix)}


def _leaves(table: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping) and "value" in value:
            yield path, value
        elif isinstance(value, Mapping):
            yield from _leaves(value, path)
        else:
            raise ContentError(f"thresholds: {path} must be a table with value, unit and source")


# A ratio written as text, "5/6" or "1/0.75": exact where a decimal would be rounded.
_RATIO = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


def _exact(value: Any, path: str) -> Fraction:
    """A leaf value as an exact number: an int, a float (its decimal text) or a ratio string."""
    if isinstance(value, bool):
        raise ContentError(f"thresholds: {path}.value must be a number")
    if isinstance(value, int | float):
        return Fraction(str(value))
    match = _RATIO.match(value) if isinstance(value, str) else None
    if match is None or Fraction(match.group(2)) == 0:
        raise ContentError(f'thresholds: {path}.value must be a number or a ratio like "5/6"')
    return Fraction(match.group(1)) / Fraction(match.group(2))


def parse_thresholds(data: Mapping[str, Any]) -> Thresholds:
    items: dict[str, Threshold] = {}
    for path, leaf in _leaves(data, ""):
        value, unit, source = leaf.get("value"), leaf.get("unit"), leaf.get("source")
        exact = _exact(value, path)
        if not isinstance(unit, str) or not unit:
            raise ContentError(f"thresholds: {path} has no unit")
        if not isinstance(source, str) or not source:
            raise ContentError(f"thresholds: {path} has no source")
        note = leaf.get("note")
        items[path] = Threshold(
            float(exact), unit, source, note if isinstance(note, str) else None, exact
        )
    return Thresholds(items)


def load_thresholds(path: Path) -> Thresholds:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ContentError(f"{path.name}: not readable TOML") from exc
    return parse_thresholds(data)
