"""Different charts from one request body: new ids for every copy, so no content cache can answer.

A :class:`ChartTemplate` cuts every id out of a CDS Hooks request once: each resource's ``id``
(except in ``contained``, whose ids are local), the ``Type/id``, ``urn:uuid:id`` and absolute
references and ``fullUrl`` values that point at those resources, context values such as
``patientId`` that name one of them, and ``hookInstance``. ``chart(n)`` fills the holes with ids
derived from ``n``: the same id gets the same new id everywhere in a chart, so subject, patient and
Bundle references stay consistent, while the ids (and so every resource's JSON) differ from chart
to chart. A new id has the length of the old one (a UUID stays UUID-shaped), so every chart has
exactly the size of the original body and costs the same to parse.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

# A hole is "\x00<slot>\x00" in the tree, which orjson writes as \u0000<slot>\u0000.
_HOLE = re.compile(rb"\\u0000(\d+)\\u0000")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_URN = "urn:uuid:"


def _resource_ids(node: Any, found: set[str], contained: bool = False) -> None:
    if isinstance(node, dict):
        if not contained and "resourceType" in node and isinstance(node.get("id"), str):
            found.add(node["id"])
        for key, value in node.items():
            _resource_ids(value, found, contained or key == "contained")
    elif isinstance(node, list):
        for value in node:
            _resource_ids(value, found, contained)


def fresh_id(old: str, chart: str) -> str:
    """The id ``old`` takes in ``chart``: lower-case hex of the same length, UUIDs kept UUIDs."""
    digest = hashlib.blake2b(f"{chart}/{old}".encode(), digest_size=64).hexdigest()
    if _UUID.match(old):
        return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    return digest[: len(old)]


class ChartTemplate:
    """One request body with its ids cut out; ``chart(n)`` is the body of the ``n``-th chart.

    ``salt`` keeps the charts of two templates apart when their bodies share resources (the
    benchmark's slices of one bundle): chart ``n`` of each gets different ids.
    """

    def __init__(self, data: bytes, salt: str = "") -> None:
        self.salt = salt
        if b"\\u0000" in data:
            raise ValueError("the body already holds \\u0000, which marks the ids here")
        request = orjson.loads(data)
        ids: set[str] = set()
        _resource_ids(request.get("prefetch"), ids)
        _resource_ids(request.get("context"), ids)
        self._slots: dict[str, int] = {}
        marked = self._mark(request, ids, contained=False)
        if isinstance(request.get("hookInstance"), str):
            marked["hookInstance"] = self._hole(request["hookInstance"])
        context = marked.get("context")
        for key, value in context.items() if isinstance(context, dict) else ():
            if key.endswith("Id") and isinstance(value, str) and value in ids:  # patientId
                context[key] = self._hole(value)
        parts = _HOLE.split(orjson.dumps(marked))
        self._texts = parts[0::2]
        self._holes = [int(slot) for slot in parts[1::2]]
        self.ids = list(self._slots)  # slot -> the original value
        if len(self.chart(0)) != len(data):
            raise ValueError("the template does not rebuild a body of the original size")

    def _hole(self, value: str) -> str:
        slot = self._slots.setdefault(value, len(self._slots))
        return f"\x00{slot}\x00"

    def _reference(self, value: str, ids: set[str]) -> str:
        if value.startswith(_URN) and value[len(_URN) :] in ids:
            return _URN + self._hole(value[len(_URN) :])
        head, _, tail = value.rpartition("/")
        return f"{head}/{self._hole(tail)}" if head and tail in ids else value

    def _mark(self, node: Any, ids: set[str], *, contained: bool) -> Any:
        if isinstance(node, list):
            return [self._mark(value, ids, contained=contained) for value in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if isinstance(value, str):
                if key == "id" and not contained and "resourceType" in node and value in ids:
                    value = self._hole(value)
                elif key in ("reference", "fullUrl"):
                    value = self._reference(value, ids)
                out[key] = value
            else:
                out[key] = self._mark(value, ids, contained=contained or key == "contained")
        return out

    def chart(self, n: int) -> bytes:
        """The body of chart ``n`` (deterministic; a different ``n`` gives different ids)."""
        new = [fresh_id(old, f"{self.salt}/{n}").encode() for old in self.ids]
        if len(set(new)) != len(new):
            raise ValueError(f"chart {n}: two ids collide; use another n")
        parts = [self._texts[0]]
        for slot, text in zip(self._holes, self._texts[1:], strict=True):
            parts += (new[slot], text)
        return b"".join(parts)
