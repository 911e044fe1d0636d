"""Searchset Bundle helpers (cds_service.fhir.bundles): pure functions on raw JSON."""

from __future__ import annotations

from typing import Any

from cds_service.fhir.bundles import data_entries, is_subsetted, merge_pages, next_link


def test_next_link_is_the_first_next_relation() -> None:
    bundle: dict[str, Any] = {
        "link": [{"relation": "self", "url": "s"}, {"relation": "next", "url": "n1"}],
    }
    assert next_link(bundle) == "n1"
    assert next_link({"link": [{"relation": "next", "url": ""}]}) is None
    assert next_link({"link": "next"}) is None
    assert next_link({}) is None


def test_data_entries_drop_operation_outcomes() -> None:
    keep = {"resource": {"resourceType": "Condition", "id": "c1"}}
    bundle: dict[str, Any] = {
        "entry": [
            keep,
            {"resource": {"resourceType": "OperationOutcome"}},
            {"resource": {"resourceType": "Condition", "id": "c2"}, "search": {"mode": "outcome"}},
            "not an entry",
        ]
    }
    assert data_entries(bundle) == [keep]
    assert data_entries({"entry": None}) == []


def test_merged_bundle_keeps_total_and_marks_a_cut_search() -> None:
    entries = [{"resource": {"resourceType": "Condition", "id": "c1"}}]
    whole = merge_pages({"total": 1}, entries, subsetted=False)
    assert whole == {"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": entries}
    assert not is_subsetted(whole)
    cut = merge_pages({"total": "many"}, entries, subsetted=True)
    assert "total" not in cut
    assert is_subsetted(cut)
    assert not is_subsetted(None)
