"""SQLFeedbackStore on SQLite and PostgreSQL: cards, feedback, snooze, stats, purge, migrations."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from cds_service.store.base import (
    CardIssued,
    FeedbackItem,
    FeedbackResult,
    IssuedSuggestion,
    StoreError,
)
from cds_service.store.connect import create_store_engine
from cds_service.store.patient_key import patient_key
from cds_service.store.sql import SQLFeedbackStore, migrate
from cds_service.store.tables import feedback, issued_card
from cds_service.tenancy import ANONYMOUS, ClientIdentity, SnoozeScope

# db_url, store, pg_url, pg_database (tests/conftest.py would be the natural home).

# A non-UTC offset, so that a conversion bug shows (cf. smart-on-fhir/cumulus-etl tests/utils.py).
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=4)))
PATIENT_A = patient_key("test-secret", "https://ehr.example.org/fhir", "pt-a")
PATIENT_B = patient_key("test-secret", "https://ehr.example.org/fhir", "pt-b")
SNOOZE = {"already-done": 30, "patient-declined": 90}


def anon(patient: str) -> SnoozeScope:
    return SnoozeScope(ANONYMOUS, patient)


def card(
    uuid: str,
    *,
    patient: str = PATIENT_A,
    topic: str = "bone-health",
    rule_id: str = "gc-bone-dxa",
    service_id: str = "gc-order-sign",
    issued_at: datetime = T0,
    suggestions: tuple[IssuedSuggestion, ...] = (),
    draft_key: str | None = None,
    client: ClientIdentity = ANONYMOUS,
) -> CardIssued:
    return CardIssued(
        card_uuid=uuid,
        service_id=service_id,
        hook="order-sign",
        hook_instance=f"hi-{uuid}",
        rule_id=rule_id,
        rule_version=2,
        topic=topic,
        indicator="warning",
        issued_at=issued_at,
        patient_key=patient,
        client=client,
        suggestions=suggestions,
        draft_key=draft_key,
    )


def overridden(
    uuid: str, code: str | None = "already-done", at: datetime = T0, comment: str | None = None
) -> FeedbackItem:
    return FeedbackItem(
        card_uuid=uuid,
        outcome="overridden",
        accepted_suggestions=(),
        override_system=None if code is None else "https://example.org/cds/override-reasons",
        override_code=code,
        user_comment=comment,
        outcome_timestamp=at,
    )


def accepted(uuid: str, *suggestions: str, at: datetime = T0) -> FeedbackItem:
    return FeedbackItem(
        card_uuid=uuid,
        outcome="accepted",
        accepted_suggestions=suggestions,
        override_system=None,
        override_code=None,
        user_comment=None,
        outcome_timestamp=at,
    )


@contextmanager
def raw(url: str) -> Iterator[sa.Connection]:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def test_cards_are_recorded_in_utc_without_patient_id(store: SQLFeedbackStore, db_url: str):
    canary = "PHI-CANARY-PATIENT-7731"
    key = patient_key("test-secret", "https://ehr.example.org/fhir", canary)
    dxa = IssuedSuggestion(uuid="s-1", key="dxa")
    store.record_cards([card("c-1", patient=key, suggestions=(dxa,), draft_key="d-1")])
    store.record_cards([card("c-1", patient=key), card("c-2", patient=key)])  # c-1 again: no-op

    with raw(db_url) as conn:
        rows = conn.execute(sa.select(issued_card).order_by(issued_card.c.card_uuid)).all()
        dump = repr([conn.execute(sa.text(f"SELECT * FROM {t}")).all() for t in TABLES])  # noqa: S608
    assert [r.card_uuid for r in rows] == ["c-1", "c-2"]
    first = rows[0]
    assert first.issued_at == T0
    assert first.issued_at.utcoffset() == timedelta(0)
    assert (first.service_id, first.hook, first.hook_instance) == (
        "gc-order-sign",
        "order-sign",
        "hi-c-1",
    )
    assert (first.rule_id, first.rule_version, first.topic, first.indicator) == (
        "gc-bone-dxa",
        2,
        "bone-health",
        "warning",
    )
    assert (first.patient_key, first.draft_key) == (key, "d-1")
    assert canary not in dump
    assert "'s-1', 'dxa'" in dump


TABLES = ("issued_card", "issued_suggestion", "feedback", "feedback_suggestion")


def test_feedback_is_idempotent(store: SQLFeedbackStore, db_url: str):
    store.record_cards([card("c-1"), card("c-2"), card("c-3")])
    item = overridden("c-1")
    assert store.record_feedback("gc-order-sign", ANONYMOUS, [item], T0) == FeedbackResult(1, 0, 0)
    # The same feedback later, in another time zone: still the same feedback.
    same = overridden("c-1", at=T0.astimezone(UTC))
    assert store.record_feedback("gc-order-sign", ANONYMOUS, [same], T0 + timedelta(hours=1)) == (
        FeedbackResult(0, 1, 0)
    )
    batch = [accepted("c-2", "s-2"), overridden("c-3", None), overridden("c-1", "patient-declined")]
    assert store.record_feedback("gc-order-sign", ANONYMOUS, batch, T0) == FeedbackResult(3, 0, 0)
    assert store.record_feedback("gc-order-sign", ANONYMOUS, batch + batch, T0) == FeedbackResult(
        0, 6, 0
    )
    with raw(db_url) as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(feedback)) == 4


def test_duplicates_within_one_batch_are_stored_once(store: SQLFeedbackStore):
    store.record_cards([card("c-1")])
    result = store.record_feedback(
        "gc-order-sign", ANONYMOUS, [accepted("c-1", "s-1", "s-2")] * 3, T0
    )
    assert result == FeedbackResult(1, 2, 0)
    # Suggestion order and repetition don't make it different feedback.
    again = store.record_feedback(
        "gc-order-sign", ANONYMOUS, [accepted("c-1", "s-2", "s-1", "s-2")], T0
    )
    assert again == FeedbackResult(0, 1, 0)


def test_unknown_card_is_stored_and_flagged(store: SQLFeedbackStore, db_url: str):
    store.record_cards([card("c-known")])
    result = store.record_feedback(
        "gc-order-sign", ANONYMOUS, [overridden("c-unknown"), overridden("c-known")], T0
    )
    assert result == FeedbackResult(stored=2, duplicates=0, unknown_cards=1)
    with raw(db_url) as conn:
        flags = dict(conn.execute(sa.select(feedback.c.card_uuid, feedback.c.unknown_card)).all())
    assert flags == {"c-unknown": True, "c-known": False}


def test_a_batch_retried_after_partial_success_adds_nothing(store: SQLFeedbackStore, db_url: str):
    """The write-behind queue retries a batch that may have been committed (the connection broke
    after COMMIT) or whose first part was written: no error, nothing counted twice."""
    dxa, pjp = IssuedSuggestion("s-1", "dxa"), IssuedSuggestion("s-2", "pjp")
    store.record_cards([card("c-1", suggestions=(dxa,)), card("c-2")])
    retried = [card("c-1", suggestions=(dxa,)), card("c-2"), card("c-3", suggestions=(pjp,))]
    store.record_cards(retried)
    store.record_cards(retried)
    with raw(db_url) as conn:
        counts = {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in TABLES}  # noqa: S608
    assert counts["issued_card"] == 3
    assert counts["issued_suggestion"] == 2
    assert [r.issued for r in store.stats(None)] == [3]


def test_feedback_before_its_card_is_matched_once_the_card_is_written(
    store: SQLFeedbackStore, db_url: str
):
    """Feedback stored while its card was still queued (another replica, an outage) is flagged
    unknown, then counted and snoozing once the card arrives."""
    result = store.record_feedback(
        "gc-order-sign", ANONYMOUS, [overridden("c-late", "already-done")], T0
    )
    assert result.unknown_cards == 1
    assert store.silenced_topics(anon(PATIENT_A), T0, SNOOZE) == frozenset()
    store.record_cards([card("c-late"), card("c-other")])
    with raw(db_url) as conn:
        flags = dict(conn.execute(sa.select(feedback.c.card_uuid, feedback.c.unknown_card)).all())
    assert flags == {"c-late": False}
    assert store.silenced_topics(anon(PATIENT_A), T0, SNOOZE) == {"bone-health"}
    (row,) = store.stats(None)
    assert (row.issued, row.overridden) == (2, 1)


def test_accepted_without_suggestions_does_not_crash(store: SQLFeedbackStore):
    store.record_cards([card("c-1")])
    assert store.record_feedback(
        "gc-order-sign", ANONYMOUS, [accepted("c-1")], T0
    ) == FeedbackResult(1, 0, 0)
    assert store.silenced_suggestions(anon(PATIENT_A), T0, {"dxa": 365}) == frozenset()
    assert store.stats(None)[0].accepted == 1


def test_user_comment_is_dropped_unless_enabled(store: SQLFeedbackStore, db_url: str):
    store.record_cards([card("c-1"), card("c-2")])
    store.record_feedback("gc-order-sign", ANONYMOUS, [overridden("c-1", comment="free text")], T0)
    with_comments = SQLFeedbackStore(db_url, store_user_comments=True)
    try:
        with_comments.record_feedback(
            "gc-order-sign", ANONYMOUS, [overridden("c-2", comment="kept")], T0
        )
    finally:
        with_comments.close()
    with raw(db_url) as conn:
        comments = dict(
            conn.execute(sa.select(feedback.c.card_uuid, feedback.c.user_comment)).all()
        )
    assert comments == {"c-1": None, "c-2": "kept"}


def test_override_snoozes_that_topic_for_that_patient_only(store: SQLFeedbackStore):
    store.record_cards(
        [
            card("a-bone"),
            card("a-infection", topic="infection-prevention"),
            card("b-bone", patient=PATIENT_B),
        ]
    )
    store.record_feedback("gc-order-sign", ANONYMOUS, [overridden("a-bone", "already-done")], T0)
    store.record_feedback(
        "gc-order-sign", ANONYMOUS, [overridden("a-infection", "not-relevant")], T0
    )

    assert store.silenced_topics(anon(PATIENT_A), T0 + timedelta(days=1), SNOOZE) == {"bone-health"}
    assert store.silenced_topics(anon(PATIENT_B), T0 + timedelta(days=1), SNOOZE) == frozenset()
    assert store.silenced_topics(anon(PATIENT_A), T0 + timedelta(days=29, hours=23), SNOOZE) == {
        "bone-health"
    }
    assert store.silenced_topics(anon(PATIENT_A), T0 + timedelta(days=30), SNOOZE) == frozenset()
    assert store.silenced_topics(anon(PATIENT_A), T0, {}) == frozenset()


def test_each_reason_has_its_own_snooze_period(store: SQLFeedbackStore):
    store.record_cards([card("c-1"), card("c-2", topic="infection-prevention")])
    store.record_feedback("gc-order-sign", ANONYMOUS, [overridden("c-1", "already-done")], T0)
    store.record_feedback("gc-order-sign", ANONYMOUS, [overridden("c-2", "patient-declined")], T0)
    assert store.silenced_topics(anon(PATIENT_A), T0 + timedelta(days=60), SNOOZE) == {
        "infection-prevention"
    }
    # An accepted card does not silence its topic.
    store.record_cards([card("c-3", topic="osteonecrosis")])
    store.record_feedback("gc-order-sign", ANONYMOUS, [accepted("c-3", "s-3")], T0)
    assert "osteonecrosis" not in store.silenced_topics(anon(PATIENT_A), T0, SNOOZE)


def test_accepted_suggestion_is_silenced_for_its_interval(store: SQLFeedbackStore):
    dxa, vit_d = IssuedSuggestion("s-dxa", "dxa"), IssuedSuggestion("s-vitd", "vitamin-d")
    store.record_cards(
        [
            card("a-1", suggestions=(dxa, vit_d)),
            card("b-1", patient=PATIENT_B, suggestions=(IssuedSuggestion("s-b", "dxa"),)),
        ]
    )
    store.record_feedback("gc-order-sign", ANONYMOUS, [accepted("a-1", "s-dxa")], T0)
    intervals = {"dxa": 730, "vitamin-d": 365}

    assert store.silenced_suggestions(anon(PATIENT_A), T0 + timedelta(days=1), intervals) == {"dxa"}
    assert (
        store.silenced_suggestions(anon(PATIENT_B), T0 + timedelta(days=1), intervals)
        == frozenset()
    )
    assert store.silenced_suggestions(anon(PATIENT_A), T0 + timedelta(days=731), intervals) == (
        frozenset()
    )
    # A suggestion uuid that belongs to another card silences nothing.
    store.record_feedback("gc-order-sign", ANONYMOUS, [accepted("a-1", "s-b")], T0)
    assert store.silenced_suggestions(anon(PATIENT_B), T0, intervals) == frozenset()


def test_recent_cards(store: SQLFeedbackStore):
    store.record_cards([card("c-1", draft_key="draft-1"), card("c-2")])
    recent = {("bone-health", "draft-1")}
    assert store.recent_cards(anon(PATIENT_A), T0 - timedelta(minutes=10)) == recent
    assert store.recent_cards(anon(PATIENT_A), T0) == recent  # issued at T0: included
    assert store.recent_cards(anon(PATIENT_A), T0 + timedelta(seconds=1)) == frozenset()
    assert store.recent_cards(anon(PATIENT_B), T0 - timedelta(hours=1)) == frozenset()


def test_stats_counts_outcomes_and_reasons(store: SQLFeedbackStore):
    old = T0 - timedelta(days=400)
    store.record_cards(
        [
            card("acc"),
            card("ovr-done"),
            card("ovr-declined"),
            card("ovr-none"),
            card("silent"),
            card("acc-then-ovr"),
            card("other-rule", rule_id="gc-infection-pjp", topic="infection-prevention"),
            card("old", issued_at=old),
        ]
    )
    store.record_feedback(
        "gc-order-sign",
        ANONYMOUS,
        [
            accepted("acc", "s-1"),
            overridden("ovr-done", "already-done"),
            overridden("ovr-declined", "patient-declined"),
            overridden("ovr-none", None),
            accepted("acc-then-ovr", "s-2"),
            overridden("acc-then-ovr", "already-done", at=T0 + timedelta(minutes=5)),
            overridden("old", "already-done"),
            overridden("never-issued", "already-done"),
        ],
        T0,
    )
    rows = store.stats(None)
    assert [(r.rule_id, r.issued) for r in rows] == [("gc-bone-dxa", 7), ("gc-infection-pjp", 1)]
    bone = rows[0]
    assert (bone.service_id, bone.topic) == ("gc-order-sign", "bone-health")
    # acc-then-ovr counts once, by its latest feedback: overridden.
    assert (bone.accepted, bone.overridden, bone.no_feedback) == (1, 5, 1)
    assert bone.acceptance_rate == pytest.approx(1 / 6)
    assert dict(bone.override_reasons) == {
        "already-done": 3,
        "patient-declined": 1,
        "unspecified": 1,
    }
    assert (rows[1].no_feedback, rows[1].acceptance_rate, dict(rows[1].override_reasons)) == (
        1,
        None,  # no feedback yet: n/a, not 0%
        {},
    )

    recent = store.stats(T0 - timedelta(days=1))
    assert recent[0].issued == 6
    assert dict(recent[0].override_reasons)["already-done"] == 2
    assert store.stats(T0 + timedelta(days=1)) == []


def test_purge_removes_old_cards_and_feedback(store: SQLFeedbackStore, db_url: str):
    old, new = T0 - timedelta(days=400), T0
    store.record_cards(
        [card("old", issued_at=old, suggestions=(IssuedSuggestion("s-old", "dxa"),)), card("new")]
    )
    store.record_feedback("gc-order-sign", ANONYMOUS, [accepted("old", "s-old", at=old)], old)
    store.record_feedback("gc-order-sign", ANONYMOUS, [overridden("new")], new)
    # Feedback received recently on an old card goes with its card.
    store.record_feedback("gc-order-sign", ANONYMOUS, [overridden("old")], new)

    assert store.purge(T0 - timedelta(days=365)) == 3  # 1 card + 2 feedback items
    assert [r.issued for r in store.stats(None)] == [1]
    with raw(db_url) as conn:
        remaining = {t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in TABLES}  # noqa: S608
    assert remaining == {
        "issued_card": 1,
        "issued_suggestion": 0,
        "feedback": 1,
        "feedback_suggestion": 0,
    }
    assert store.purge(T0 - timedelta(days=365)) == 0


def test_migrate_twice_is_a_no_op(store: SQLFeedbackStore, db_url: str):
    store.record_cards([card("c-1")])
    migrate(db_url)
    migrate(db_url)
    with raw(db_url) as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [("0002",)]
    assert store.stats(None)[0].issued == 1


def test_concurrent_migrations_upgrade_once(db_url: str):
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(migrate, [db_url] * 4))
    with raw(db_url) as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [("0002",)]


def test_restart_loses_nothing(store: SQLFeedbackStore, db_url: str):
    store.record_cards([card("c-1", suggestions=(IssuedSuggestion("s-1", "dxa"),))])
    store.record_feedback("gc-order-sign", ANONYMOUS, [accepted("c-1", "s-1")], T0)
    store.close()

    migrate(db_url)
    restarted = SQLFeedbackStore(db_url)
    try:
        assert restarted.stats(None)[0].accepted == 1
        assert restarted.silenced_suggestions(anon(PATIENT_A), T0, {"dxa": 10}) == {"dxa"}
        assert restarted.record_feedback(
            "gc-order-sign", ANONYMOUS, [accepted("c-1", "s-1")], T0
        ) == (FeedbackResult(0, 1, 0))
    finally:
        restarted.close()


def test_concurrent_feedback_is_stored_exactly_once(store: SQLFeedbackStore, db_url: str):
    threads, posts_per_thread, distinct = 16, 25, 100
    store.record_cards([card(f"c-{i}") for i in range(0, distinct, 2)])  # half are unknown
    items = [
        accepted(f"c-{i}", f"s-{i}") if i % 3 else overridden(f"c-{i}", "already-done")
        for i in range(distinct)
    ]
    start = threading.Barrier(threads)

    def post(worker: int) -> list[FeedbackResult]:
        start.wait()
        results = []
        for n in range(posts_per_thread):
            i = (worker * posts_per_thread + n) % distinct
            # Two items per post, in varying order across threads (lock ordering on PostgreSQL).
            batch = [items[i], items[(i * 7 + worker) % distinct]]
            results.append(store.record_feedback("gc-order-sign", ANONYMOUS, batch, T0))
            if n % 5 == 0:
                store.record_cards([card(f"late-{worker}-{n}"), card("c-0")])
        return results

    with ThreadPoolExecutor(threads) as pool:
        results = [r for rs in pool.map(post, range(threads)) for r in rs]

    assert sum(r.stored for r in results) == distinct
    assert sum(r.stored + r.duplicates for r in results) == threads * posts_per_thread * 2
    with raw(db_url) as conn:
        stored = conn.execute(sa.select(feedback.c.card_uuid, feedback.c.outcome)).all()
        cards = conn.scalar(sa.select(sa.func.count()).select_from(issued_card))
    assert sorted(stored) == sorted((i.card_uuid, i.outcome) for i in items)
    assert cards == distinct // 2 + threads * 5


def test_naive_datetimes_are_refused(store: SQLFeedbackStore):
    with pytest.raises(ValueError, match="naive"):
        store.record_cards([card("c-1", issued_at=datetime(2026, 1, 1))])  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        store.silenced_topics(anon(PATIENT_A), datetime(2026, 1, 1), SNOOZE)  # noqa: DTZ001


def test_ping(store: SQLFeedbackStore):
    assert store.ping()


def test_database_errors_become_store_errors_without_data(db_url: str):
    unmigrated = SQLFeedbackStore(db_url, store_user_comments=True)
    try:
        with pytest.raises(StoreError) as caught:
            unmigrated.record_feedback(
                "gc-order-sign", ANONYMOUS, [overridden("c-1", comment="PHI-CANARY-COMMENT")], T0
            )
    finally:
        unmigrated.close()
    assert "PHI-CANARY" not in str(caught.value)
    assert "PHI-CANARY" not in str(caught.value.__cause__)


def test_unreachable_postgres():
    down = SQLFeedbackStore("postgresql+psycopg://postgres@127.0.0.1:9/none")
    try:
        assert not down.ping()
        with pytest.raises(StoreError):
            down.record_cards([card("c-1")])
    finally:
        down.close()
