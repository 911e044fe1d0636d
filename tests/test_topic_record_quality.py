"""record-quality as a pure function of the facts: unreadable glucocorticoid entries, counted by
the words of the prefetch key they came under, and draft orders apart."""

from __future__ import annotations

import pytest

from cds_service.topics.record_quality import UNREADABLE_STEROID
from tests.topic_support import Taken, facts, run


def test_silent_when_every_entry_was_read() -> None:
    assert run(UNREADABLE_STEROID, facts()) is None
    assert run(UNREADABLE_STEROID, facts(taken=[Taken(200, 200, 40)])) is None
    assert run(UNREADABLE_STEROID, facts(unreadable={"medication orders": 0})) is None


@pytest.mark.parametrize(
    ("unreadable", "drafts", "summary", "details", "count", "entries"),
    [
        ({"medication orders": 1}, 0, "one", ("entries",), "1", "1 in medication orders"),
        (
            {"medication statements": 2, "medication orders": 1},
            0,
            "several",
            ("entries",),
            "3",
            "1 in medication orders, 2 in medication statements",
        ),
        ({}, 1, "one", ("drafts",), "1", ""),
        (
            {"medication orders": 1},
            2,
            "several",
            ("entries", "drafts"),
            "3",
            "1 in medication orders",
        ),
    ],
)
def test_an_unreadable_steroid_entry_gives_an_info_card(
    unreadable: dict[str, int],
    drafts: int,
    summary: str,
    details: tuple[str, ...],
    count: str,
    entries: str,
) -> None:
    finding = run(UNREADABLE_STEROID, facts(unreadable=unreadable, unreadable_drafts=drafts))
    assert finding is not None
    assert finding.summary == summary
    assert finding.indicator == "info"
    assert finding.details == (*details, "check-chart")
    assert finding.facts == {"count": count, "entries": entries, "drafts": str(drafts)}
    assert finding.evidence == ()  # counts only: an unreadable entry has nothing to cite


def test_shown_alongside_cards_from_the_readable_entries() -> None:
    # The card does not depend on exposure: a readable steroid order and an unreadable one.
    f = facts(taken=[Taken(200, 200, 40)], unreadable={"medication orders": 1})
    finding = run(UNREADABLE_STEROID, f)
    assert finding is not None
    assert finding.summary == "one"
