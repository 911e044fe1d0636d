"""FeedbackStore on SQLAlchemy Core for sqlite:/// (file) and postgresql+psycopg:// URLs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from cds_service.store.base import (
    CardIssued,
    FeedbackItem,
    FeedbackResult,
    FeedbackStore,
    StatRow,
    StoreError,
)
from cds_service.store.connect import READ_ONLY, create_store_engine, migrate
from cds_service.store.prepared import PreparedRead
from cds_service.store.tables import feedback, feedback_suggestion, issued_card, issued_suggestion
from cds_service.tenancy import ANONYMOUS, ClientIdentity, SnoozeScope

__all__ = ["SQLFeedbackStore", "feedback_key", "migrate"]

_IN_LIST_SIZE = 1000  # bound parameters per IN list (SQLite allows 32,766 per statement)


def feedback_key(
    card_uuid: str,
    outcome: str,
    outcome_timestamp: datetime,
    accepted_suggestions: Sequence[str],
    override_system: str | None,
    override_code: str | None,
    client: ClientIdentity = ANONYMOUS,
) -> str:
    """SHA-256 hex of what makes two feedback items the same; user comments don't count.

    The sending client is part of it, so that one client's feedback can never take the place
    of another's (stored first, it would make the other's a duplicate). The anonymous client
    adds nothing: its keys are those stored before tenancy, and stay idempotent with them.
    """
    identity: list[object] = [
        card_uuid,
        outcome,
        outcome_timestamp.astimezone(UTC).isoformat(timespec="microseconds"),
        sorted(set(accepted_suggestions)),
        override_system,
        override_code,
    ]
    if client != ANONYMOUS:
        identity += [client.iss, client.tenant]
    return hashlib.sha256(json.dumps(identity, separators=(",", ":")).encode()).hexdigest()


# Feedback acts on a card only when the client that sent it is the client the card went to.
_SAME_CLIENT = sa.and_(
    feedback.c.card_uuid == issued_card.c.card_uuid,
    feedback.c.client_iss == issued_card.c.client_iss,
    feedback.c.client_tenant == issued_card.c.client_tenant,
)

# The reads of every hook call (snoozes, the order-sign repeat check) are built once with bind
# parameters and compiled once per store (store/prepared.py): building a statement costs more
# than running it on an indexed table. Values go in as parameters: ``_scope_params`` plus the
# ones named. No IN lists (SQLAlchemy renders those per call): the snooze reads return every
# code or key in the window and the caller keeps the ones configured.
_CARD_IN_SCOPE = (
    issued_card.c.patient_key == sa.bindparam("patient_key"),
    issued_card.c.client_iss == sa.bindparam("client_iss"),
    issued_card.c.client_tenant == sa.bindparam("client_tenant"),
)
_SILENCED_TOPICS = (
    sa.select(
        issued_card.c.topic,
        feedback.c.override_code,
        sa.func.max(feedback.c.outcome_timestamp),
    )
    .select_from(feedback.join(issued_card, _SAME_CLIENT))
    .where(
        *_CARD_IN_SCOPE,
        feedback.c.outcome == "overridden",
        feedback.c.outcome_timestamp > sa.bindparam("since"),
    )
    .group_by(issued_card.c.topic, feedback.c.override_code)
)
_SILENCED_SUGGESTIONS = (
    sa.select(issued_suggestion.c.suggestion_key, sa.func.max(feedback.c.outcome_timestamp))
    .select_from(
        feedback_suggestion.join(
            feedback, feedback_suggestion.c.feedback_key == feedback.c.feedback_key
        )
        .join(
            issued_suggestion,
            sa.and_(
                issued_suggestion.c.card_uuid == feedback_suggestion.c.card_uuid,
                issued_suggestion.c.suggestion_uuid == feedback_suggestion.c.suggestion_uuid,
            ),
        )
        .join(
            issued_card,
            sa.and_(issued_card.c.card_uuid == issued_suggestion.c.card_uuid, _SAME_CLIENT),
        )
    )
    .where(
        *_CARD_IN_SCOPE,
        feedback.c.outcome == "accepted",
        feedback.c.outcome_timestamp > sa.bindparam("since"),
    )
    .group_by(issued_suggestion.c.suggestion_key)
)
_RECENT_CARDS = (
    sa.select(issued_card.c.topic, issued_card.c.draft_key)
    .where(
        *_CARD_IN_SCOPE,
        issued_card.c.draft_key.is_not(None),
        issued_card.c.issued_at >= sa.bindparam("since"),
    )
    .distinct()
)


# Feedback that arrived before its card, from the card's own client, is about a known card now.
_ADOPT_FEEDBACK = (
    sa.update(feedback)
    .where(
        feedback.c.card_uuid.in_(sa.bindparam("uuids", expanding=True)),
        feedback.c.unknown_card == sa.true(),
        sa.exists().where(_SAME_CLIENT),
    )
    .values(unknown_card=False)
    .returning(feedback.c.card_uuid)
)


def _scope_params(scope: SnoozeScope) -> dict[str, str]:
    """The bind parameters of ``_CARD_IN_SCOPE``: cards issued in ``scope``."""
    return {
        "patient_key": scope.patient_key,
        "client_iss": scope.client.iss,
        "client_tenant": scope.client.tenant,
    }


def _utc(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError("naive datetime: the store needs timezone-aware datetimes")
    return value.astimezone(UTC)


@contextmanager
def _store_errors() -> Iterator[None]:
    try:
        yield
    except SQLAlchemyError as exc:
        # hide_parameters=True keeps values (e.g. user comments) out of the chained message.
        raise StoreError(f"feedback store failed: {type(exc).__name__}") from exc


class SQLFeedbackStore(FeedbackStore):
    """FeedbackStore on SQLite or PostgreSQL. Thread-safe; create one per process.

    The schema must exist: call ``migrate(url)`` first. ``user_comment`` is stored only when
    ``store_user_comments`` is true (it is free text and may hold PHI).
    """

    def __init__(self, url: str, *, store_user_comments: bool = False) -> None:
        self._engine = create_store_engine(url)
        self._reader = self._engine.execution_options(**{READ_ONLY: True})
        self._dialect = self._engine.dialect.name
        self.local_reads = self._dialect == "sqlite"  # WAL: see FeedbackStore.local_reads
        self._store_user_comments = store_user_comments
        # Built once (see _SILENCED_TOPICS): every issued card goes through these.
        self._insert_cards = self._insert_ignore(issued_card)
        self._insert_suggestions = self._insert_ignore(issued_suggestion)
        # The reads of every hook call, compiled once and run on the driver (store/prepared.py).
        self._silenced_topics = PreparedRead(_SILENCED_TOPICS, self._reader)
        self._silenced_suggestions = PreparedRead(_SILENCED_SUGGESTIONS, self._reader)
        self._recent_cards = PreparedRead(_RECENT_CARDS, self._reader)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def _insert_ignore(self, table: sa.Table) -> sa.Insert:
        if self._dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        return sqlite.insert(table).on_conflict_do_nothing()

    def record_cards(self, cards: Sequence[CardIssued]) -> frozenset[SnoozeScope]:
        """Insert-or-ignore on the card uuid (and on card and suggestion uuid): a batch written
        again after an ambiguous failure (committed, but the client saw an error) or after a
        partial success adds nothing and raises nothing."""
        if not cards:
            return frozenset()
        # Sorted so that concurrent transactions take row locks in the same order (no deadlock).
        card_rows = sorted(
            (
                {
                    "card_uuid": card.card_uuid,
                    "service_id": card.service_id,
                    "hook": card.hook,
                    "hook_instance": card.hook_instance,
                    "rule_id": card.rule_id,
                    "rule_version": card.rule_version,
                    "topic": card.topic,
                    "indicator": card.indicator,
                    "issued_at": _utc(card.issued_at),
                    "patient_key": card.patient_key,
                    "draft_key": card.draft_key,
                    "client_iss": card.client.iss,
                    "client_tenant": card.client.tenant,
                }
                for card in cards
            ),
            key=lambda row: str(row["card_uuid"]),
        )
        suggestion_rows = sorted(
            {
                (card.card_uuid, suggestion.uuid): suggestion.key
                for card in cards
                for suggestion in card.suggestions
            }.items()
        )
        uuids = sorted({card.card_uuid for card in cards})
        with _store_errors(), self._engine.begin() as conn:
            conn.execute(self._insert_cards, card_rows)
            if suggestion_rows:
                conn.execute(
                    self._insert_suggestions,
                    [
                        {"card_uuid": card_uuid, "suggestion_uuid": uuid, "suggestion_key": key}
                        for (card_uuid, uuid), key in suggestion_rows
                    ],
                )
            # Feedback that arrived before its card (the card was queued during an outage, or
            # issued by another replica) is about a known card now, if its client sent it.
            adopted: set[str] = set()
            for start in range(0, len(uuids), _IN_LIST_SIZE):
                result = conn.execute(
                    _ADOPT_FEEDBACK, {"uuids": uuids[start : start + _IN_LIST_SIZE]}
                )
                adopted.update(str(uuid) for (uuid,) in result)
        return frozenset(
            SnoozeScope(card.client, card.patient_key)
            for card in cards
            if str(card.card_uuid) in adopted
        )

    def record_feedback(
        self,
        service_id: str,
        client: ClientIdentity,
        items: Sequence[FeedbackItem],
        received_at: datetime,
    ) -> FeedbackResult:
        received = _utc(received_at)
        rows: list[tuple[dict[str, Any], tuple[str, ...]]] = []
        for item in items:
            suggestions = tuple(sorted(set(item.accepted_suggestions)))
            key = feedback_key(
                item.card_uuid,
                item.outcome,
                _utc(item.outcome_timestamp),
                suggestions,
                item.override_system,
                item.override_code,
                client,
            )
            row = {
                "feedback_key": key,
                "service_id": service_id,
                "card_uuid": item.card_uuid,
                "outcome": item.outcome,
                "outcome_timestamp": _utc(item.outcome_timestamp),
                "received_at": received,
                "override_system": item.override_system,
                "override_code": item.override_code,
                "user_comment": item.user_comment if self._store_user_comments else None,
                "client_iss": client.iss,
                "client_tenant": client.tenant,
            }
            rows.append((row, suggestions))
        if not rows:
            return FeedbackResult(stored=0, duplicates=0, unknown_cards=0)
        rows.sort(key=lambda pair: str(pair[0]["feedback_key"]))
        stored = 0
        with _store_errors(), self._engine.begin() as conn:
            uuids = {str(row["card_uuid"]) for row, _ in rows}
            # One query, whoever the cards belong to: another client's card is not told apart
            # from an unknown one, by the answer or by the work done.
            known: dict[str, str] = dict(
                conn.execute(
                    sa.select(issued_card.c.card_uuid, issued_card.c.patient_key).where(
                        issued_card.c.card_uuid.in_(uuids),
                        issued_card.c.client_iss == client.iss,
                        issued_card.c.client_tenant == client.tenant,
                    )
                ).all()
            )
            # RETURNING, not rowcount: SQLAlchemy leaves rowcount at -1 for a PostgreSQL INSERT.
            insert_feedback = self._insert_ignore(feedback).returning(feedback.c.feedback_key)
            for row, suggestions in rows:
                row["unknown_card"] = row["card_uuid"] not in known
                if conn.execute(insert_feedback, row).first() is None:
                    continue  # the same feedback is already stored
                stored += 1
                if suggestions:
                    conn.execute(
                        sa.insert(feedback_suggestion),
                        [
                            {
                                "feedback_key": row["feedback_key"],
                                "suggestion_uuid": uuid,
                                "card_uuid": row["card_uuid"],
                            }
                            for uuid in suggestions
                        ],
                    )
        unknown = sum(1 for row, _ in rows if row["unknown_card"])
        return FeedbackResult(
            stored=stored,
            duplicates=len(rows) - stored,
            unknown_cards=unknown,
            scopes=frozenset(SnoozeScope(client, patient) for patient in known.values()),
        )

    def silenced_topics(
        self, scope: SnoozeScope, now: datetime, snooze_days: Mapping[str, int]
    ) -> frozenset[str]:
        days = {code: n for code, n in snooze_days.items() if n > 0}
        if not days:
            return frozenset()
        now = _utc(now)
        params = {**_scope_params(scope), "since": now - timedelta(days=max(days.values()))}
        return frozenset(
            topic
            for topic, code, latest in self._silenced_topics.rows(params)
            if code in days and latest + timedelta(days=days[code]) > now
        )

    def silenced_suggestions(
        self, scope: SnoozeScope, now: datetime, intervals_days: Mapping[str, int]
    ) -> frozenset[str]:
        days = {key: n for key, n in intervals_days.items() if n > 0}
        if not days:
            return frozenset()
        now = _utc(now)
        params = {**_scope_params(scope), "since": now - timedelta(days=max(days.values()))}
        return frozenset(
            key
            for key, latest in self._silenced_suggestions.rows(params)
            if key in days and latest + timedelta(days=days[key]) > now
        )

    def recent_cards(self, scope: SnoozeScope, since: datetime) -> frozenset[tuple[str, str]]:
        params = {**_scope_params(scope), "since": _utc(since)}
        return frozenset((topic, draft_key) for topic, draft_key in self._recent_cards.rows(params))

    def stats(self, since: datetime | None) -> list[StatRow]:
        group = (
            issued_card.c.service_id,
            issued_card.c.rule_id,
            issued_card.c.topic,
            issued_card.c.client_iss,
            issued_card.c.client_tenant,
        )
        window = [] if since is None else [issued_card.c.issued_at >= _utc(since)]
        # One outcome per card: its latest feedback (by the clinician's outcome time, then by
        # arrival), so a card accepted and then dismissed counts once, as overridden. Only
        # feedback from the card's own client counts.
        ranked = (
            sa.select(
                feedback.c.card_uuid,
                feedback.c.outcome,
                feedback.c.override_code,
                sa.func.row_number()
                .over(
                    partition_by=feedback.c.card_uuid,
                    order_by=(
                        feedback.c.outcome_timestamp.desc(),
                        feedback.c.received_at.desc(),
                        feedback.c.feedback_key.desc(),
                    ),
                )
                .label("rank"),
            )
            .select_from(feedback.join(issued_card, _SAME_CLIENT))
            .subquery()
        )
        latest = (
            sa.select(ranked.c.card_uuid, ranked.c.outcome, ranked.c.override_code)
            .where(ranked.c.rank == 1)
            .subquery()
        )
        counts = (
            sa.select(
                *group,
                sa.func.count(),
                sa.func.sum(sa.case((latest.c.outcome == "accepted", 1), else_=0)),
                sa.func.sum(sa.case((latest.c.outcome == "overridden", 1), else_=0)),
            )
            .select_from(
                issued_card.outerjoin(latest, latest.c.card_uuid == issued_card.c.card_uuid)
            )
            .where(*window)
            .group_by(*group)
        )
        # Grouped by the raw code: a bound "unspecified" default in both SELECT and GROUP BY
        # would be two parameters to PostgreSQL, which then rejects the query.
        reasons = (
            sa.select(*group, latest.c.override_code, sa.func.count())
            .select_from(latest.join(issued_card, latest.c.card_uuid == issued_card.c.card_uuid))
            .where(latest.c.outcome == "overridden", *window)
            .group_by(*group, latest.c.override_code)
        )
        with _store_errors(), self._reader.connect() as conn:
            count_rows = conn.execute(counts).all()
            reason_rows = conn.execute(reasons).all()
        by_group: dict[tuple[str, ...], dict[str, int]] = {}
        for *key, code, n in reason_rows:
            tally = by_group.setdefault(tuple(key), {})
            name = code if code is not None else "unspecified"
            tally[name] = tally.get(name, 0) + int(n)
        result = []
        for *key, n_issued, n_accepted, n_overridden in count_rows:
            service_id, rule_id, topic, client_iss, client_tenant = key
            issued, acc, ovr = int(n_issued), int(n_accepted or 0), int(n_overridden or 0)
            result.append(
                StatRow(
                    service_id=service_id,
                    rule_id=rule_id,
                    topic=topic,
                    issued=issued,
                    accepted=acc,
                    overridden=ovr,
                    no_feedback=issued - acc - ovr,
                    # Of the cards with feedback: none yet is not a 0% acceptance.
                    acceptance_rate=acc / (acc + ovr) if acc + ovr else None,
                    override_reasons=dict(sorted(by_group.get(tuple(key), {}).items())),
                    client_iss=client_iss,
                    client_tenant=client_tenant,
                )
            )
        result.sort(key=lambda r: (r.service_id, r.rule_id, r.topic, r.client_iss, r.client_tenant))
        return result

    def purge(self, before: datetime) -> int:
        cutoff = _utc(before)
        old_cards = sa.select(issued_card.c.card_uuid).where(issued_card.c.issued_at < cutoff)
        old_feedback = sa.or_(feedback.c.received_at < cutoff, feedback.c.card_uuid.in_(old_cards))
        with _store_errors(), self._engine.begin() as conn:
            conn.execute(
                sa.delete(feedback_suggestion).where(
                    feedback_suggestion.c.feedback_key.in_(
                        sa.select(feedback.c.feedback_key).where(old_feedback)
                    )
                )
            )
            n_feedback = conn.execute(sa.delete(feedback).where(old_feedback)).rowcount
            conn.execute(
                sa.delete(issued_suggestion).where(issued_suggestion.c.card_uuid.in_(old_cards))
            )
            n_cards = conn.execute(
                sa.delete(issued_card).where(issued_card.c.issued_at < cutoff)
            ).rowcount
        return int(n_feedback) + int(n_cards)

    def ping(self) -> bool:
        try:
            with self._reader.connect() as conn:
                conn.execute(sa.select(1))
        except SQLAlchemyError:
            return False
        return True
