"""hooks/thresholds.toml: every clinical number with its unit and source, read once at startup."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cds_service.errors import ContentError


@dataclass(frozen=True)
class Threshold:
    value: float
    unit: str
    source: str
    note: str | None = None


class Thresholds(Mapping[str, Threshold]):
    """Thresholds by dotted path (``infection.pjp_min_daily_mg``); a missing path is a content error."""

    def __init__(self, items: Mapping[str, Threshold]) -> None:
        self._items = dict(items)

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
        return self[path].value

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


def parse_thresholds(data: Mapping[str, Any]) -> Thresholds:
    items: dict[str, Threshold] = {}
    for path, leaf in _leaves(data, ""):
        value, unit, source = leaf.get("value"), leaf.get("unit"), leaf.get("source")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ContentError(f"thresholds: {path}.value must be a number")
        if not isinstance(unit, str) or not unit:
            raise ContentError(f"thresholds: {path} has no unit")
        if not isinstance(source, str) or not source:
            raise ContentError(f"thresholds: {path} has no source")
        note = leaf.get("note")
        items[path] = Threshold(float(value), unit, source, note if isinstance(note, str) else None)
    return Thresholds(items)


def load_thresholds(path: Path) -> Thresholds:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ContentError(f"{path.name}: not readable TOML") from exc
    return parse_thresholds(data)
