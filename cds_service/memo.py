"""The engine's one cache mechanism: a bounded memo keyed by content, owned by what it serves.

Every memo in the engine is an instance of :class:`Memo`, held by the long-lived object whose
content it derives from (a loaded :class:`~cds_service.valuesets.ValueSet`, a service's drug
knowledge or role map, the raw selector of a service). So a memo is freed with its owner, a
reloaded catalog starts with empty memos, and no key ever needs an ``id()``.

Rules every memo follows:
- the key is the *content* the value is computed from (codes, texts, concept keys), never an
  object identity;
- the value is a pure function of the key and the owner's immutable content, so the memo never
  needs invalidating while its owner lives;
- it holds at most ``max_entries`` items; when full it is cleared (the working set of codes in
  real records is small, so a clear is rare and cheaper than LRU bookkeeping on every hit);
- an unhashable key (odd JSON in a record) is computed without the memo.

The memos: ``valueset-match`` (each ValueSet), ``selector-coding`` and ``selector-text``
(each resource type's raw selector: a coding's verdict by system, code and display; a text's),
``role-matches`` (each service's RoleMap), and the drug-identification and route memos of each
service's GlucocorticoidKnowledge. Two other stores are not memos of content:
``Service.derived`` keeps values built from the service's own definition (the parts every card
of a rule shares, one per rule; the exposure parameters and role windows from its thresholds),
freed with the service; ``Thresholds.derived`` keeps card text made of the threshold numbers
alone, one per key, freed with the thresholds. No request data is kept between calls
(record.py parses each call's resources afresh: a new chart costs what a reopened one does).
Per-call values
(the glucocorticoid status) are computed once per call and passed on, never cached.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """A bounded memo: ``memo.get(key, compute)`` returns ``compute()`` once per key."""

    __slots__ = ("_items", "max_entries", "name")

    def __init__(self, name: str, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("a memo holds at least one entry")
        self.name = name
        self.max_entries = max_entries
        self._items: dict[K, V] = {}

    def get(self, key: K, compute: Callable[[], V]) -> V:
        try:
            return self._items[key]
        except KeyError:
            pass
        except TypeError:  # unhashable content: answer without remembering
            return compute()
        return self._remember(key, compute())  # outside the except: no chained KeyError

    def get_with(self, key: K, compute: Callable[[K], V]) -> V:
        """``get`` for a ``compute`` that takes the key (no closure per call on hot paths)."""
        try:
            return self._items[key]
        except KeyError:
            pass
        except TypeError:
            return compute(key)
        return self._remember(key, compute(key))

    def _remember(self, key: K, value: V) -> V:
        """Keep ``value`` for ``key``; a full memo is emptied first (a clear is rare)."""
        items = self._items
        if len(items) >= self.max_entries:
            items.clear()
        items[key] = value
        return value

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()

    def __repr__(self) -> str:
        return f"Memo({self.name!r}, {len(self._items)}/{self.max_entries})"
