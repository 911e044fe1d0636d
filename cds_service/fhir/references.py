"""FHIR literal references read one way everywhere: ``Type/id`` from the forms clients send.

R4 Reference.reference (https://hl7.org/fhir/R4/references.html#literal) may be relative
("Medication/1"), absolute ("https://ehr/fhir/Medication/1"), versioned (".../_history/2"),
contained ("#med1"), or a Bundle-local ``urn:uuid:`` / ``urn:oid:`` identifier. The record, the
facts, the exposure engine and the FHIR client key resources by ``Type/id``; this module turns
a reference into that key.

| reference                                    | :func:`parse_reference`                 |
|----------------------------------------------|-----------------------------------------|
| ``Medication/1``                             | Medication, 1, base None                |
| ``Medication/1/_history/2``                  | Medication, 1, version 2                |
| ``https://ehr/fhir/Medication/1``            | Medication, 1, base ``https://ehr/fhir``|
| ``Medication/1?x=y``                         | Medication, 1 (query dropped)           |
| ``#med1``, ``urn:uuid:…``, ``urn:oid:…``     | None (see below)                        |
| ``Medication?code=…`` (conditional), ``""``  | None                                    |

A ``urn:uuid:`` reference names a Bundle entry by its ``fullUrl``, not a type and id; no caller
keeps the fullUrl map, so such references resolve to nothing (as contained ``#id`` references,
which callers resolve against ``contained`` themselves).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LiteralReference", "is_resource_type", "parse_reference", "relative_reference"]

_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")


def is_resource_type(name: str) -> bool:
    """True when ``name`` is shaped like a FHIR resource type ("Patient", not "fhir" or "")."""
    return _RESOURCE_TYPE.fullmatch(name) is not None


@dataclass(frozen=True)
class LiteralReference:
    """A reference that names a resource by type and id."""

    resource_type: str
    id: str
    version: str | None = None  # from ``/_history/<version>``
    base: str | None = None  # "https://ehr/fhir" for an absolute reference; None when relative

    @property
    def relative(self) -> str:
        """``Type/id``: the key resources are stored under."""
        return f"{self.resource_type}/{self.id}"


def parse_reference(ref: str) -> LiteralReference | None:
    """The type, id, version and base of a literal reference; None when it names no
    ``Type/id`` (contained, ``urn:``, conditional, empty or malformed; see the module table)."""
    if not ref or ref.startswith(("#", "urn:")):
        return None
    path = ref.split("?", 1)[0]
    parts = [p for p in path.split("/") if p]
    version = None
    if len(parts) >= 4 and parts[-2] == "_history":
        version = parts[-1]
        parts = parts[:-2]
    absolute = "://" in path  # parts then start with the scheme and the host
    if len(parts) < (4 if absolute else 2) or not is_resource_type(parts[-2]):
        return None
    base = path[: path.rindex(f"/{parts[-2]}/{parts[-1]}")] if absolute else None
    return LiteralReference(parts[-2], parts[-1], version, base)


def relative_reference(ref: str) -> str:
    """``Type/id`` of a literal reference, or ``ref`` unchanged when it names no ``Type/id``.

    Callers use the result as a lookup key among resources stored as ``Type/id``: an unchanged
    contained, ``urn:uuid:`` or conditional reference simply matches nothing.
    """
    parsed = parse_reference(ref)
    return parsed.relative if parsed is not None else ref
