"""The feedback store contract: issued cards, clinician feedback, snooze and analytics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from cds_service.tenancy import ClientIdentity, SnoozeScope

Outcome = Literal["accepted", "overridden"]


class StoreError(Exception):
    """The database failed or is unreachable. The message never holds data or parameters."""


@dataclass(frozen=True)
class IssuedSuggestion:
    """A suggestion on an issued card: its wire ``uuid`` and its stable content ``key``."""

    uuid: str
    key: str  # from hooks/, e.g. "dxa": the same advice has the same key on every card


@dataclass(frozen=True)
class CardIssued:
    """One card returned to the EHR. ``patient_key`` comes from ``patient_key()``, never a raw id;
    ``client`` is the verified client it was returned to (tenancy.ANONYMOUS without a token).

    ``issued_at`` must be timezone-aware; it is stored in UTC. ``draft_key`` is a hash of the
    draft order(s) on order hooks, used to skip repeating a card from order-select at order-sign.
    """

    card_uuid: str
    service_id: str
    hook: str
    hook_instance: str
    rule_id: str
    rule_version: int
    topic: str
    indicator: str
    issued_at: datetime
    patient_key: str
    client: ClientIdentity
    suggestions: tuple[IssuedSuggestion, ...] = ()
    draft_key: str | None = None

    @property
    def scope(self) -> SnoozeScope:
        return SnoozeScope(self.client, self.patient_key)


@dataclass(frozen=True)
class FeedbackItem:
    """One CDS Hooks 2.0 feedback item, already validated by the caller.

    ``accepted_suggestions`` holds suggestion uuids. ``override_system``/``override_code`` are
    the ``overrideReason.reason`` coding (either may be None). ``outcome_timestamp`` must be
    timezone-aware.
    """

    card_uuid: str
    outcome: Outcome
    accepted_suggestions: tuple[str, ...]
    override_system: str | None
    override_code: str | None
    user_comment: str | None
    outcome_timestamp: datetime


@dataclass(frozen=True)
class FeedbackResult:
    """What one ``record_feedback`` call did.

    ``stored + duplicates`` is the number of items; ``unknown_cards`` counts the items (stored or
    not) whose card uuid was never recorded by this service for the sending client (another
    client's card counts as unknown). ``scopes`` are the snooze scopes of the known cards: the
    snooze caches to drop.
    """

    stored: int
    duplicates: int
    unknown_cards: int
    scopes: frozenset[SnoozeScope] = field(default=frozenset(), compare=False)


@dataclass(frozen=True)
class StatRow:
    """Outcomes of the cards issued by one (service, rule, topic) to one client (``client_iss``
    and ``client_tenant``: "" and "" for the anonymous client).

    Each card is counted once, by its latest feedback (outcome time, then arrival): ``accepted``,
    ``overridden``, or ``no_feedback`` without any; so the three add up to ``issued``.
    ``acceptance_rate`` is ``accepted / (accepted + overridden)``: None when no card has had
    feedback (shown as n/a, never 0%).
    ``override_reasons`` maps a reason code (``"unspecified"`` when none was given) to the number
    of cards overridden with it. Feedback on unknown card uuids is in no row (its service, rule
    and topic are unknown).
    """

    service_id: str
    rule_id: str
    topic: str
    issued: int
    accepted: int
    overridden: int
    no_feedback: int
    acceptance_rate: float | None
    override_reasons: Mapping[str, int] = field(default_factory=dict)
    client_iss: str = ""
    client_tenant: str = ""


class FeedbackStore(Protocol):
    """Persistence for cards and feedback. Methods are synchronous: run them in a thread,
    except the per-call reads when ``local_reads`` says they may run on the event loop.

    Every datetime argument must be timezone-aware. Every method except ``ping`` raises
    ``StoreError`` when the database fails.
    """

    # True when the reads of every hook call (silenced_topics, silenced_suggestions,
    # recent_cards) answer from a local file in well under a millisecond and never wait for a
    # lock (SQLite in WAL mode: readers do not wait for writers). A thread hop then costs more
    # than the read (GIL hand-offs under load), so callers may run them inline. Writes always
    # go to a thread: they can wait for another process's lock.
    local_reads: bool

    def record_cards(self, cards: Sequence[CardIssued]) -> frozenset[SnoozeScope]:
        """Store issued cards; recording a card uuid again is a no-op (so a batch can be
        retried after a failure that may have committed). Feedback already stored for these
        card uuids by their own client stops being flagged unknown; returns the scopes of the
        cards it adopted feedback for (their snoozes may have changed)."""
        ...

    def record_feedback(
        self,
        service_id: str,
        client: ClientIdentity,
        items: Sequence[FeedbackItem],
        received_at: datetime,
    ) -> FeedbackResult:
        """Store feedback from ``client`` idempotently.

        The same (client, card, outcome, outcome_timestamp, accepted suggestions, reason coding)
        is stored once, however often or concurrently it arrives. Items for card uuids not
        issued to ``client`` (unknown, or another client's) are stored, flagged unknown and
        never act on any card: the same work and the same result whichever it is.
        """
        ...

    def silenced_topics(
        self, scope: SnoozeScope, now: datetime, snooze_days: Mapping[str, int]
    ) -> frozenset[str]:
        """Topics of the scope's cards overridden by the scope's client with a reason code in
        ``snooze_days`` whose ``outcome_timestamp`` is less than that many days before ``now``."""
        ...

    def silenced_suggestions(
        self, scope: SnoozeScope, now: datetime, intervals_days: Mapping[str, int]
    ) -> frozenset[str]:
        """Suggestion keys in ``intervals_days`` accepted by the scope's client on the scope's
        cards less than that many days before ``now``."""
        ...

    def recent_cards(self, scope: SnoozeScope, since: datetime) -> frozenset[tuple[str, str]]:
        """(topic, draft key) of the cards issued in ``scope`` at or after ``since`` that were
        recorded with a draft key (the order hooks)."""
        ...

    def stats(self, since: datetime | None) -> list[StatRow]:
        """Per (service, rule, topic, client) outcomes of cards issued at or after ``since``
        (all when None), sorted by service, rule, topic and client."""
        ...

    def purge(self, before: datetime) -> int:
        """Delete cards issued and feedback received before ``before``, with the feedback on
        those cards. Returns the number of cards plus feedback items deleted."""
        ...

    def ping(self) -> bool:
        """Whether the database answers. Never raises."""
        ...
