"""record-quality as a pure function of the facts: unreadable glucocorticoid entries, by key."""

from __future__ import annotations

import pytest

from cds_service.topics.record_quality import UNREADABLE_STEROID
from tests.topic_support import Taken, facts, run


def test_silent_when_every_entry_was_read() -> None:
    assert run(UNREADABLE_STEROID, facts()) is None
    assert run(UNREADABLE_STEROID, facts(taken=[Taken(200, 200, 40)])) is None
    assert run(UNREADABLE_STEROID, facts(unreadable={"medications": 0})) is None


@pytest.mark.parametrize(
    ("unreadable", "summary", "count", "entries"),
    [
        ({"medications": 1}, "one", "1", "1 in medications"),
        (
            {"statements": 2, "medications": 1},
            "several",
            "3",
            "1 in medications, 2 in statements",
        ),
        ({"context.draftOrders": 1}, "one", "1", "1 in context.draftOrders"),
    ],
)
def test_an_unreadable_steroid_entry_gives_an_info_card(
    unreadable: dict[str, int], summary: str, count: str, entries: str
) -> None:
    finding = run(UNREADABLE_STEROID, facts(unreadable=unreadable))
    assert finding is not None
    assert finding.summary == summary
    assert finding.indicator == "info"
    assert finding.details == ("entries", "check-chart")
    assert finding.facts == {"count": count, "entries": entries}
    assert finding.evidence == ()  # counts only: an unreadable entry has nothing to cite


def test_shown_alongside_cards_from_the_readable_entries() -> None:
    # The card does not depend on exposure: a readable steroid order and an unreadable one.
    f = facts(taken=[Taken(200, 200, 40)], unreadable={"medications": 1})
    finding = run(UNREADABLE_STEROID, f)
    assert finding is not None
    assert finding.summary == "one"
