"""Tenancy in the store, on SQLite and PostgreSQL: feedback acts only on the cards of the client
that sent it; snoozes and repeats are scoped by client, tenant and patient; migration 0002 gives
rows stored before it the anonymous identity (docs/tenancy.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from cds_service.store.base import FeedbackResult, IssuedSuggestion
from cds_service.store.sql import SQLFeedbackStore, feedback_key, migrate
from cds_service.store.tables import UTCDateTime
from cds_service.tenancy import ANONYMOUS, ClientIdentity, SnoozeScope
from tests.test_store import PATIENT_A, SNOOZE, T0, accepted, card, overridden, raw

A = ClientIdentity("https://ehr-a.example/fhir")
B = ClientIdentity("https://ehr-b.example/fhir")
A_EAST = ClientIdentity("https://ehr-a.example/fhir", tenant="east")
DAY = T0 + timedelta(days=1)


def in_scope(client: ClientIdentity) -> SnoozeScope:
    return SnoozeScope(client, PATIENT_A)


def test_feedback_on_another_clients_card_is_an_unknown_card(store: SQLFeedbackStore):
    store.record_cards([card("a-bone", client=A)])
    foreign = store.record_feedback("gc-order-sign", B, [overridden("a-bone")], T0)
    unknown = store.record_feedback("gc-order-sign", B, [overridden("never-issued")], T0)
    assert foreign == unknown == FeedbackResult(stored=1, duplicates=0, unknown_cards=1)
    assert foreign.scopes == unknown.scopes == frozenset()
    assert store.silenced_topics(in_scope(A), DAY, SNOOZE) == frozenset()
    assert store.silenced_topics(in_scope(B), DAY, SNOOZE) == frozenset()
    # The owner's own feedback still works, and names the scope whose cache to drop.
    own = store.record_feedback("gc-order-sign", A, [overridden("a-bone")], T0)
    assert own == FeedbackResult(stored=1, duplicates=0, unknown_cards=0)
    assert own.scopes == {in_scope(A)}
    assert store.silenced_topics(in_scope(A), DAY, SNOOZE) == {"bone-health"}


def test_a_clients_own_override_does_not_snooze_another_clients_card(store: SQLFeedbackStore):
    # Same fhirServer and patient id (so the same patient key), two clients.
    store.record_cards([card("a-inf", client=A), card("b-inf", client=B)])
    store.record_feedback("gc-order-sign", B, [overridden("b-inf")], T0)
    assert store.silenced_topics(in_scope(B), DAY, SNOOZE) == {"bone-health"}
    assert store.silenced_topics(in_scope(A), DAY, SNOOZE) == frozenset()
    assert store.silenced_topics(in_scope(ANONYMOUS), DAY, SNOOZE) == frozenset()


def test_same_issuer_other_tenant_is_another_client(store: SQLFeedbackStore):
    store.record_cards([card("west", client=A), card("east", client=A_EAST)])
    assert store.record_feedback("gc-order-sign", A_EAST, [overridden("west")], T0).unknown_cards
    store.record_feedback("gc-order-sign", A_EAST, [overridden("east")], T0)
    assert store.silenced_topics(in_scope(A_EAST), DAY, SNOOZE) == {"bone-health"}
    assert store.silenced_topics(in_scope(A), DAY, SNOOZE) == frozenset()


def test_accepted_suggestions_are_scoped_by_client(store: SQLFeedbackStore):
    dxa = (IssuedSuggestion(uuid="s-a", key="dxa"),)
    store.record_cards([card("a-1", client=A, suggestions=dxa)])
    store.record_feedback("gc-order-sign", B, [accepted("a-1", "s-a")], T0)
    assert store.silenced_suggestions(in_scope(A), DAY, {"dxa": 730}) == frozenset()
    assert store.silenced_suggestions(in_scope(B), DAY, {"dxa": 730}) == frozenset()
    store.record_feedback("gc-order-sign", A, [accepted("a-1", "s-a")], T0)
    assert store.silenced_suggestions(in_scope(A), DAY, {"dxa": 730}) == {"dxa"}
    assert store.silenced_suggestions(in_scope(B), DAY, {"dxa": 730}) == frozenset()


def test_recent_cards_are_scoped_by_client(store: SQLFeedbackStore):
    store.record_cards([card("a-1", client=A, draft_key="d-1")])
    since = T0 - timedelta(minutes=10)
    assert store.recent_cards(in_scope(A), since) == {("bone-health", "d-1")}
    assert store.recent_cards(in_scope(B), since) == frozenset()
    assert store.recent_cards(in_scope(A_EAST), since) == frozenset()


def test_early_feedback_from_another_client_stays_unknown_once_the_card_is_written(
    store: SQLFeedbackStore, db_url: str
):
    """Feedback can arrive before its card is written (queued on another replica): only the
    card's own client's early feedback becomes known and acts on it."""
    store.record_feedback("gc-order-sign", B, [overridden("late", "patient-declined")], T0)
    store.record_feedback("gc-order-sign", A, [overridden("late")], T0)
    store.record_cards([card("late", client=A)])
    with raw(db_url) as conn:
        rows = conn.execute(
            sa.text("SELECT client_iss, unknown_card FROM feedback ORDER BY client_iss")
        ).all()
    assert [(iss, bool(unknown)) for iss, unknown in rows] == [(A.iss, False), (B.iss, True)]
    # B's reason (patient-declined, 90 days) is not applied to A's card: A's (30 days) is.
    assert store.silenced_topics(in_scope(A), T0 + timedelta(days=31), SNOOZE) == frozenset()


def test_another_clients_identical_feedback_does_not_shadow_the_owners(store: SQLFeedbackStore):
    """Feedback is idempotent per client: B sending A's feedback first (same card, outcome and
    time) must not make A's own a duplicate."""
    store.record_cards([card("a-1", client=A)])
    assert store.record_feedback("gc-order-sign", B, [overridden("a-1")], T0).stored == 1
    assert store.record_feedback("gc-order-sign", A, [overridden("a-1")], T0).stored == 1
    assert store.silenced_topics(in_scope(A), DAY, SNOOZE) == {"bone-health"}


def test_anonymous_feedback_keys_are_those_from_before_tenancy():
    args = ("c-1", "overridden", T0, (), "https://example.org/r", "already-done")
    assert feedback_key(*args, ANONYMOUS) == feedback_key(*args)
    assert len({feedback_key(*args), feedback_key(*args, A), feedback_key(*args, A_EAST)}) == 3


def _legacy_rows(url: str, issued_at: datetime) -> None:
    """Rows as revision 0001 stored them: a card with a suggestion, an override and an
    acceptance (with the feedback keys 0001's code computed)."""
    key_override = feedback_key("old-1", "overridden", issued_at, (), "sys", "already-done")
    key_accept = feedback_key("old-1", "accepted", issued_at, ("s-old",), None, None)
    when = {"t": issued_at}
    stamp = sa.bindparam("t", type_=UTCDateTime())  # as 0001's code stored it (naive on SQLite)
    with raw(url) as conn:
        conn.execute(
            sa.text(
                "INSERT INTO issued_card VALUES ('old-1', 'gc-order-sign', 'order-sign', 'h', "
                "'gc-bone-dxa', 2, 'bone-health', 'warning', :t, :pk, 'd-1')"
            ).bindparams(stamp),
            {**when, "pk": PATIENT_A},
        )
        conn.execute(sa.text("INSERT INTO issued_suggestion VALUES ('old-1', 's-old', 'dxa')"))
        for key, outcome, system, code in (
            (key_override, "overridden", "sys", "already-done"),
            (key_accept, "accepted", None, None),
        ):
            conn.execute(
                sa.text(
                    "INSERT INTO feedback VALUES (:key, 'gc-order-sign', 'old-1', :outcome, :t, "
                    ":t, :system, :code, NULL, :unknown)"
                ).bindparams(stamp),
                {**when, "key": key, "outcome": outcome, "system": system, "code": code}
                | {"unknown": False},
            )
        conn.execute(
            sa.text("INSERT INTO feedback_suggestion VALUES (:key, 's-old', 'old-1')"),
            {"key": key_accept},
        )
        conn.commit()


def test_upgrade_from_0001_gives_existing_rows_the_anonymous_identity(db_url: str):
    migrate(db_url, "0001")
    issued_at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    _legacy_rows(db_url, issued_at)
    migrate(db_url)
    with raw(db_url) as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [("0002",)]
        for table in ("issued_card", "feedback"):
            rows = conn.execute(sa.text(f"SELECT client_iss, client_tenant FROM {table}")).all()  # noqa: S608
            assert set(rows) == {("", "")}, table
    store = SQLFeedbackStore(db_url)
    try:
        later = issued_at + timedelta(days=1)
        # The anonymous client (CDS_AUTH=off) keeps its snoozes and its repeat check ...
        assert store.silenced_topics(in_scope(ANONYMOUS), later, SNOOZE) == {"bone-health"}
        assert store.silenced_suggestions(in_scope(ANONYMOUS), later, {"dxa": 730}) == {"dxa"}
        assert store.recent_cards(in_scope(ANONYMOUS), issued_at) == {("bone-health", "d-1")}
        # ... and sending the same feedback again is still a duplicate.
        again = replace(overridden("old-1", at=issued_at), override_system="sys")
        assert store.record_feedback("gc-order-sign", ANONYMOUS, [again], later).duplicates == 1
        # A verified client starts with none of them (cards shown again: the safe side).
        assert store.silenced_topics(in_scope(A), later, SNOOZE) == frozenset()
        assert store.recent_cards(in_scope(A), issued_at) == frozenset()
        assert store.record_feedback("gc-order-sign", A, [again], later).unknown_cards == 1
        # Stats still count the legacy card and its latest feedback.
        (row,) = store.stats(None)
        assert (row.issued, row.accepted + row.overridden) == (1, 1)
    finally:
        store.close()


def test_after_the_upgrade_every_insert_must_name_its_client(db_url: str):
    """The server default used to fill existing rows is gone: a row without a client fails."""
    migrate(db_url, "0001")
    migrate(db_url)
    with raw(db_url) as conn, pytest.raises(IntegrityError):
        conn.execute(
            sa.text(
                "INSERT INTO issued_card (card_uuid, service_id, hook, hook_instance, rule_id, "
                "rule_version, topic, indicator, issued_at, patient_key) VALUES ('x', 's', 'h', "
                "'i', 'r', 1, 't', 'info', :t, 'pk')"
            ),
            {"t": T0},
        )


def test_stats_are_per_client_and_count_only_the_owners_feedback(store: SQLFeedbackStore):
    store.record_cards([card("a-1", client=A), card("a-2", client=A), card("e-1", client=A_EAST)])
    store.record_feedback("gc-order-sign", B, [overridden("a-1")], T0)  # foreign: not counted
    store.record_feedback("gc-order-sign", A, [accepted("a-2")], T0)
    store.record_feedback("gc-order-sign", A_EAST, [overridden("e-1")], T0)
    rows = {(r.client_iss, r.client_tenant): r for r in store.stats(None)}
    assert set(rows) == {(A.iss, ""), (A.iss, "east")}
    a, east = rows[(A.iss, "")], rows[(A.iss, "east")]
    assert (a.issued, a.accepted, a.overridden, a.no_feedback) == (2, 1, 0, 1)
    assert (east.issued, east.overridden, dict(east.override_reasons)) == (
        1,
        1,
        {"already-done": 1},
    )
