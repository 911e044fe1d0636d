"""Searchset Bundles as JSON: next links, data entries, and the merge of several pages.

Pure functions on raw JSON dicts (no I/O, no models): the FHIR client pages with them and
prefetch reads the same markers, so "has a next page" and "was cut short" mean one thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["data_entries", "is_subsetted", "merge_pages", "next_link"]

# FHIR's marker for "not everything the query matches" (R4 Resource.meta, v3 ObservationValue).
_SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The URL of the first ``link`` with relation "next"; None when absent or empty."""
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) and url else None
    return None


def _is_outcome(entry: Mapping[str, Any]) -> bool:
    search = entry.get("search")
    if isinstance(search, dict) and search.get("mode") == "outcome":
        return True
    resource = entry.get("resource")
    return isinstance(resource, dict) and resource.get("resourceType") == "OperationOutcome"


def data_entries(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Entries minus OperationOutcomes (``search.mode == "outcome"``, CDS Hooks item 27)."""
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and not _is_outcome(e)]


def merge_pages(
    first: Mapping[str, Any], entries: list[dict[str, Any]], *, subsetted: bool
) -> dict[str, Any]:
    """One searchset Bundle with ``entries``, the ``total`` of ``first``, and the SUBSETTED tag
    when a page or entry limit cut the search short."""
    merged: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if isinstance(first.get("total"), int):
        merged["total"] = first["total"]
    if subsetted:
        merged["meta"] = {"tag": [dict(_SUBSETTED)]}
    merged["entry"] = entries
    return merged


def is_subsetted(value: object) -> bool:
    """True when ``value`` carries a SUBSETTED ``meta.tag`` (see :func:`merge_pages`)."""
    meta = value.get("meta") if isinstance(value, Mapping) else None
    tags = meta.get("tag") if isinstance(meta, Mapping) else None
    return any(isinstance(t, Mapping) and t.get("code") == "SUBSETTED" for t in tags or ())
