"""Day maps: per-day PEQ totals stored as runs of equal days, with their queries."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from datetime import date, datetime
from itertools import chain, repeat
from typing import Any

ROUND_DIGITS = 6
EPS = 1e-9


class DayMap(Mapping[date, float]):
    """Day values stored as runs of days with one value: the summary's ``daily`` and
    ``planned_daily``. Behaves as the ``{day: mg}`` dict it stands for (sorted by day, built on
    first iteration); the summary's queries read the runs directly and memoise per threshold.

    ``starts``/``ends`` are inclusive day ordinals, sorted and disjoint; ``sources[i]`` are the
    records giving exposure on the days of run ``i`` (actual exposure only).
    """

    __slots__ = ("_dict", "_memo", "run_ends", "run_sources", "run_starts", "run_values")

    def __init__(
        self,
        starts: list[int],
        ends: list[int],
        values: list[float],
        sources: list[frozenset[str]] | None = None,
    ) -> None:
        self.run_starts, self.run_ends = starts, ends
        self.run_values, self.run_sources = values, sources
        self._dict: dict[date, float] | None = None
        # Query answers by (query, threshold, first day): a float, an int or a tuple of sources,
        # told apart by the query name (not FHIR data).
        self._memo: dict[tuple[str, float, int], Any] = {}

    def _index(self, ordinal: int) -> int:
        """Index of the run holding ``ordinal``, or -1."""
        i = bisect_right(self.run_starts, ordinal) - 1
        return i if i >= 0 and self.run_ends[i] >= ordinal else -1

    def index_of(self, key: object) -> int:
        """Index of the run holding day ``key``, or -1 (a datetime is never a day key)."""
        if isinstance(key, date) and not isinstance(key, datetime):
            return self._index(key.toordinal())
        return -1

    def as_dict(self) -> dict[date, float]:
        if self._dict is None:
            out: dict[date, float] = {}
            for first, last, value in zip(
                self.run_starts, self.run_ends, self.run_values, strict=True
            ):
                for ordinal in range(first, last + 1):
                    out[date.fromordinal(ordinal)] = value
            self._dict = out
        return self._dict

    def __getitem__(self, key: date) -> float:
        i = self.index_of(key)
        if i < 0:
            raise KeyError(key)
        return self.run_values[i]

    def get(self, key: date, default: Any = None) -> Any:  # Mapping.get: any default
        i = self.index_of(key)
        return default if i < 0 else self.run_values[i]

    def __contains__(self, key: object) -> bool:
        return self.index_of(key) >= 0

    def __iter__(self) -> Iterator[date]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return sum(self.run_ends) - sum(self.run_starts) + len(self.run_starts)

    def keys(self) -> KeysView[date]:
        return self.as_dict().keys()

    def values(self) -> ValuesView[float]:
        return self.as_dict().values()

    def items(self) -> ItemsView[date, float]:
        return self.as_dict().items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DayMap):
            return self.as_dict() == other.as_dict()
        if isinstance(other, Mapping):
            return self.as_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.as_dict())

    def cumulative(self) -> float:
        key = ("cumulative", 0.0, 0)
        if key not in self._memo:
            runs = zip(self.run_values, self.run_starts, self.run_ends, strict=True)
            total = math.fsum(chain.from_iterable(repeat(v, e - s + 1) for v, s, e in runs))
            self._memo[key] = round(total, ROUND_DIGITS)
        return float(self._memo[key])

    def maximum(self) -> float:
        return max(self.run_values, default=0.0)

    def days_at_or_above(self, mg: float, since: date | None = None) -> int:
        first = since.toordinal() if since is not None else 0
        key = ("days", mg, first)
        if key not in self._memo:
            floor = mg - EPS
            self._memo[key] = sum(
                e - max(s, first) + 1
                for s, e, v in zip(self.run_starts, self.run_ends, self.run_values, strict=True)
                if v >= floor and e >= first
            )
        return int(self._memo[key])

    def longest_run_at_or_above(self, mg: float) -> int:
        key = ("longest", mg, 0)
        if key not in self._memo:
            floor, best, run_start, previous_end = mg - EPS, 0, 0, None
            for s, e, v in zip(self.run_starts, self.run_ends, self.run_values, strict=True):
                if v < floor:
                    previous_end = None
                    continue
                if previous_end is None or s != previous_end + 1:
                    run_start = s
                previous_end = e
                best = max(best, e - run_start + 1)
            self._memo[key] = best
        return int(self._memo[key])

    def run_from(self, first: date, mg: float, step: int) -> int:
        """Consecutive days from ``first`` in direction ``step`` (+1/-1) with value >= ``mg``."""
        ordinal = first.toordinal()
        i = self._index(ordinal)
        floor, run = mg - EPS, 0
        while 0 <= i < len(self.run_starts) and self.run_values[i] >= floor:
            if step > 0:
                run += self.run_ends[i] - ordinal + 1
                ordinal = self.run_ends[i] + 1
            else:
                run += ordinal - self.run_starts[i] + 1
                ordinal = self.run_starts[i] - 1
            i += step
            if (
                not 0 <= i < len(self.run_starts)
                or not self.run_starts[i] <= ordinal <= self.run_ends[i]
            ):
                break
        return run

    def sources_at_or_above(self, mg: float) -> tuple[str, ...]:
        key = ("sources", mg, 0)
        if key not in self._memo:
            found: set[str] = set()
            floor = mg - EPS
            for v, srcs in zip(self.run_values, self.run_sources or (), strict=False):
                if v >= floor:
                    found.update(srcs)
            self._memo[key] = tuple(sorted(found))
        result: tuple[str, ...] = self._memo[key]
        return result


class DaySources(Mapping[date, frozenset[str]]):
    """``day_sources``: day -> records giving exposure that day, for the days of ``days``."""

    __slots__ = ("_dict", "days")

    def __init__(self, days: DayMap) -> None:
        self.days = days
        self._dict: dict[date, frozenset[str]] | None = None

    def as_dict(self) -> dict[date, frozenset[str]]:
        if self._dict is None:
            days, out = self.days, {}
            for first, last, srcs in zip(
                days.run_starts, days.run_ends, days.run_sources or (), strict=True
            ):
                for ordinal in range(first, last + 1):
                    out[date.fromordinal(ordinal)] = srcs
            self._dict = out
        return self._dict

    def __getitem__(self, key: date) -> frozenset[str]:
        i = self.days.index_of(key)
        if i < 0 or self.days.run_sources is None:
            raise KeyError(key)
        return self.days.run_sources[i]

    def __iter__(self) -> Iterator[date]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.days)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self.as_dict() == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self.as_dict())
