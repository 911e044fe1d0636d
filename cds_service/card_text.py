"""How numbers and dates read in card text (shared by the steroid status and every topic), and
the house rules a card's detail keeps: it leads with what to do, and stays short."""

from __future__ import annotations

import re
from datetime import date

# A card is read in seconds (issue 18): about 100 words of detail, at most 5 buttons. The word
# budget counts the Markdown text a clinician reads, link targets excluded; 130 leaves room
# for a child's weight-based doses next to the safety warnings and the lung-infection watch
# without dropping one (the fixtures average about 65).
DETAIL_MAX_WORDS = 130
SUGGESTIONS_MAX = 5
# Every paragraph of a card's detail starts with one of these verbs (after any bold marker):
# the first sentence says what to do; the reasoning is in the explanation (cds-service explain).
ACTION_VERBS = frozenset(
    [
        "add",
        "agree",
        "ask",
        "assess",
        "avoid",
        "await",
        "book",
        "check",
        "choose",
        "compare",
        "complete",
        "confirm",
        "consider",
        "continue",
        "count",
        "decide",
        "defer",
        "discuss",
        "do",
        "dose",
        "exclude",
        "follow",
        "give",
        "halve",
        "keep",
        "manage",
        "measure",
        "monitor",
        "offer",
        "order",
        "plan",
        "vaccinate",
        "prefer",
        "read",
        "reassess",
        "record",
        "refer",
        "remove",
        "repeat",
        "review",
        "screen",
        "start",
        "stop",
        "tell",
        "treat",
        "use",
        "wait",
        "watch",
    ]
)
_LINK_TARGET = re.compile(r"\]\([^)]*\)|<https?://[^>]*>|https?://\S+")
_LEAD = re.compile(r"[*_\s]*([A-Za-z]+)")


def fmt_number(value: float) -> str:
    """A number for card text, without trailing zeros: 7.5, 20, 0.3."""
    return f"{value:.1f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"


def fmt_date(day: date | None) -> str:
    return day.isoformat() if day else "unknown date"


def fmt_months(days: float) -> str:
    """A number of days as whole months (30.4 days each)."""
    return fmt_number(round(days / 30.4))


def detail_words(text: str) -> int:
    """Words of Markdown card text as read: link targets are not counted, markers are free."""
    return len(_LINK_TARGET.sub("]", text).replace("**", "").split())


def leads_with_action(text: str) -> bool:
    """Whether ``text`` starts with an imperative verb of ``ACTION_VERBS`` (bold allowed)."""
    match = _LEAD.match(text)
    return match is not None and match.group(1).lower() in ACTION_VERBS
