"""Write-behind card recording and cached snooze lookups."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from cds_service.api import card_log
from cds_service.api.card_log import CardLog
from cds_service.errors import StorageUnavailable
from cds_service.metrics import Metrics
from cds_service.store.base import (
    CardIssued,
    FeedbackItem,
    FeedbackResult,
    IssuedSuggestion,
    StoreError,
)
from cds_service.store.sql import SQLFeedbackStore
from cds_service.tenancy import ANONYMOUS, ClientIdentity, SnoozeScope
from tests.app_client import LogCapture

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def scope(patient_key: str = "pk", client: ClientIdentity = ANONYMOUS) -> SnoozeScope:
    return SnoozeScope(client, patient_key)


class FakeStore:
    local_reads = False  # reads in a thread, as for PostgreSQL

    def __init__(self) -> None:
        self.recorded: list[CardIssued] = []
        self.reads = 0
        self.writes = 0
        self.pings = 0
        self.fail = False

    def record_cards(self, cards: Sequence[CardIssued]) -> frozenset[SnoozeScope]:
        self.writes += 1
        if self.fail:
            raise StoreError("feedback store failed: OperationalError")
        self.recorded.extend(cards)
        return frozenset()

    def record_feedback(
        self,
        service_id: str,
        client: ClientIdentity,
        items: Sequence[FeedbackItem],
        received_at: datetime,
    ) -> FeedbackResult:
        if self.fail:
            raise StoreError("feedback store failed: OperationalError")
        known = {c.card_uuid: c.scope for c in self.recorded if c.client == client}
        unknown = sum(1 for item in items if item.card_uuid not in known)
        scopes = frozenset(known[item.card_uuid] for item in items if item.card_uuid in known)
        return FeedbackResult(len(items), 0, unknown, scopes)

    def ping(self) -> bool:
        self.pings += 1
        return not self.fail

    def silenced_topics(
        self, scope: SnoozeScope, now: datetime, snooze_days: Mapping[str, int]
    ) -> frozenset[str]:
        self.reads += 1
        if self.fail:
            raise StoreError("feedback store failed: OperationalError")
        return frozenset({"bone-health"}) if scope.patient_key == "snoozed" else frozenset()

    def silenced_suggestions(
        self, scope: SnoozeScope, now: datetime, intervals: Mapping[str, int]
    ) -> frozenset[str]:
        return frozenset()

    def recent_cards(self, scope: SnoozeScope, since: datetime) -> frozenset[tuple[str, str]]:
        if self.fail:
            raise StoreError("feedback store failed: OperationalError")
        return frozenset(
            (c.topic, c.draft_key)
            for c in self.recorded
            if c.scope == scope and c.draft_key is not None and c.issued_at >= since
        )


def card(uuid: str, **extra: Any) -> CardIssued:
    values: dict[str, Any] = {
        "card_uuid": uuid,
        "service_id": "svc",
        "hook": "order-select",
        "hook_instance": "h",
        "rule_id": "r",
        "rule_version": 1,
        "topic": "bone-health",
        "indicator": "info",
        "issued_at": NOW,
        "patient_key": "pk",
        "client": ANONYMOUS,
    }
    values.update(extra)
    return CardIssued(**values)


def overridden(uuid: str) -> FeedbackItem:
    return FeedbackItem(
        card_uuid=uuid,
        outcome="overridden",
        accepted_suggestions=(),
        override_system=None,
        override_code=None,
        user_comment=None,
        outcome_timestamp=NOW,
    )


def errors(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("cds_store_errors_total")
    return value or 0.0


async def test_cards_are_written_in_one_batch_on_flush() -> None:
    store = FakeStore()
    log = CardLog(store, Metrics())  # type: ignore[arg-type]
    log.submit([card("a"), card("b")])
    log.submit([card("c")])
    assert store.recorded == []
    await log.flush()
    assert [c.card_uuid for c in store.recorded] == ["a", "b", "c"]


async def test_full_queue_drops_the_oldest_logs_and_counts() -> None:
    store, metrics = FakeStore(), Metrics()
    log = CardLog(store, metrics, max_pending=2)  # type: ignore[arg-type]
    with LogCapture() as captured:
        log.submit([card("a"), card("b")])
        log.submit([card("c")])
    await log.flush()
    assert [c.card_uuid for c in store.recorded] == ["b", "c"]
    assert (log.dropped, errors(metrics)) == (1, 1)
    (line,) = [json.loads(x) for x in captured.lines if "dropped" in x]
    assert (line["count"], line["reason"]) == (1, "queue-full")
    assert "pk" not in json.dumps(line)


async def test_storage_outage_is_logged_and_counted_not_raised() -> None:
    store, metrics = FakeStore(), Metrics()
    store.fail = True
    log = CardLog(store, metrics)  # type: ignore[arg-type]
    log.submit([card("a")])
    assert not await log.flush()
    assert log.storage_down
    # Backing off: the snooze lookup answers empty without asking the store.
    assert await log.silenced("svc", scope(), NOW, {}, {}) == (frozenset(), frozenset())
    assert (store.reads, errors(metrics)) == (0, 1)


async def test_a_failed_batch_is_kept_and_retried_after_a_backoff() -> None:
    clock = [0.0]
    store, metrics = FakeStore(), Metrics()
    log = CardLog(store, metrics, retry_max_s=3, clock=lambda: clock[0])  # type: ignore[arg-type]
    store.fail = True
    log.submit([card("a"), card("b")])
    assert not await log.flush()
    log.submit([card("c")])  # issued during the outage: queued behind the failed batch
    assert log.queued == 3
    assert not await log.flush()
    assert store.writes == 1, "nothing is tried during the backoff"
    waits = []
    for _ in range(5):  # the backoff doubles from the flush interval (0.2 s) up to retry_max_s
        waits.append(round(log._retry_at - clock[0], 2))
        clock[0] = log._retry_at
        assert not await log.flush()
    assert waits == [0.4, 0.8, 1.6, 3.0, 3.0]
    store.fail = False
    assert not await log.flush(), "still backing off"
    clock[0] = log._retry_at
    assert await log.flush()
    assert [c.card_uuid for c in store.recorded] == ["a", "b", "c"]
    assert not log.storage_down
    assert errors(metrics) == 6


async def test_concurrent_failures_at_the_start_of_an_outage_count_as_one() -> None:
    clock = [0.0]
    store, metrics = FakeStore(), Metrics()
    log = CardLog(store, metrics, clock=lambda: clock[0])  # type: ignore[arg-type]
    store.fail = True
    async with anyio.create_task_group() as group:
        for patient in ("p1", "p2", "p3", "p4"):
            group.start_soon(log.silenced, "svc", scope(patient), NOW, {}, {})
    assert store.reads == 4
    assert errors(metrics) == 4
    assert log.retry_after_s() == 1  # the first backoff (0.4 s), not the fourth


async def test_flush_writes_in_batches_and_keeps_what_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    store = FakeStore()
    log = CardLog(store, Metrics(), clock=lambda: clock[0])  # type: ignore[arg-type]
    monkeypatch.setattr(card_log, "BATCH", 2)
    log.submit([card(c) for c in "abcde"])

    original = store.record_cards

    def second_batch_fails(cards: Sequence[CardIssued]) -> frozenset[SnoozeScope]:
        store.fail = store.writes == 1
        return original(cards)

    monkeypatch.setattr(store, "record_cards", second_batch_fails)
    assert not await log.flush()
    assert [c.card_uuid for c in store.recorded] == ["a", "b"]
    assert log.queued == 3
    monkeypatch.setattr(store, "record_cards", original)
    store.fail = False
    clock[0] = 60
    assert await log.flush()
    assert [c.card_uuid for c in store.recorded] == list("abcde")


async def test_a_batch_the_store_refuses_is_lost_not_retried_forever() -> None:
    store, metrics = FakeStore(), Metrics()

    def refuse(cards: Sequence[CardIssued]) -> frozenset[SnoozeScope]:
        raise ValueError("naive datetime: the store needs timezone-aware datetimes")

    store.record_cards = refuse  # type: ignore[method-assign]
    log = CardLog(store, metrics)  # type: ignore[arg-type]
    log.submit([card("a")])
    assert await log.flush()
    assert (log.queued, log.lost, log.storage_down) == (0, 1, False)


async def test_shutdown_flushes_once_more_even_during_a_backoff() -> None:
    store = FakeStore()
    log = CardLog(store, Metrics(), retry_max_s=600)  # type: ignore[arg-type]
    store.fail = True
    log.submit([card("a")])
    assert not await log.flush()
    store.fail = False  # back, but the next retry is not due yet
    await log.close()
    assert [c.card_uuid for c in store.recorded] == ["a"]
    assert log.lost == 0


async def test_cards_still_unwritable_at_shutdown_are_logged_lost_with_a_count() -> None:
    store, metrics = FakeStore(), Metrics()
    store.fail = True
    log = CardLog(store, metrics)  # type: ignore[arg-type]
    log.submit([card("a", patient_key="PHI-CANARY-KEY"), card("b")])
    with LogCapture() as captured:
        await log.close()
    assert (log.queued, log.lost) == (0, 2)
    assert store.writes == 1
    lost = [json.loads(x) for x in captured.lines if "lost at shutdown" in x]
    assert [(x["count"], x["reason"]) for x in lost] == [(2, "shutdown")]
    assert not any("PHI-CANARY" in x for x in captured.lines)


async def test_feedback_is_refused_with_retry_after_until_its_card_is_written() -> None:
    clock = [0.0]
    store = FakeStore()
    log = CardLog(store, Metrics(), clock=lambda: clock[0])  # type: ignore[arg-type]
    store.fail = True
    log.submit([card("a")])
    with pytest.raises(StorageUnavailable) as refused:
        await log.record_feedback("svc", ANONYMOUS, [overridden("a")], NOW)
    assert refused.value.status == 503
    assert refused.value.retry_after_s == 1
    store.fail = False
    with pytest.raises(StorageUnavailable):  # the backoff holds until it has passed
        await log.record_feedback("svc", ANONYMOUS, [overridden("a")], NOW)
    clock[0] = 1
    result = await log.record_feedback("svc", ANONYMOUS, [overridden("a")], NOW)
    assert result.unknown_cards == 0, "the card was written before its feedback"


async def test_feedback_is_refused_when_only_the_feedback_write_fails() -> None:
    store = FakeStore()
    log = CardLog(store, Metrics())  # type: ignore[arg-type]
    assert await log.flush()
    store.fail = True
    with pytest.raises(StorageUnavailable):
        await log.record_feedback("svc", ANONYMOUS, [overridden("a")], NOW)
    assert log.storage_down


async def test_hook_call_reads_wait_until_storage_has_answered_again() -> None:
    """Snooze lookups never make the retry: a database that drops packets would hold each hook
    call for a connect timeout. They resume once a flush or a ping got through."""
    clock = [0.0]
    store = FakeStore()
    log = CardLog(store, Metrics(), clock=lambda: clock[0])  # type: ignore[arg-type]
    store.fail = True
    assert (await log.silenced("svc", scope("snoozed"), NOW, {}, {}))[0] == frozenset()
    assert store.reads == 1
    store.fail = False
    clock[0] = 60  # long past the backoff
    assert (await log.silenced("svc", scope("snoozed"), NOW, {}, {}))[0] == frozenset()
    assert store.reads == 1
    assert await log.check_storage(1)
    assert (await log.silenced("svc", scope("snoozed"), NOW, {}, {}))[0] == {"bone-health"}
    assert store.reads == 2


class SlowPing(FakeStore):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def ping(self) -> bool:
        self.release.wait(5)
        return super().ping()


async def test_after_the_backoff_one_attempt_at_a_time() -> None:
    clock = [0.0]
    store = SlowPing()
    log = CardLog(store, Metrics(), clock=lambda: clock[0])  # type: ignore[arg-type]
    store.fail = True
    with pytest.raises(StorageUnavailable):
        await log.record_feedback("svc", ANONYMOUS, [overridden("a")], NOW)
    store.fail = False
    clock[0] = 60
    async with anyio.create_task_group() as group:
        group.start_soon(log.check_storage, 10)  # the attempt: a ping that takes its time
        await anyio.sleep(0.05)
        with pytest.raises(StorageUnavailable):  # refused at once, not a second attempt
            await log.record_feedback("svc", ANONYMOUS, [overridden("a")], NOW)
        store.release.set()
    assert not log.storage_down
    assert (await log.record_feedback("svc", ANONYMOUS, [overridden("a")], NOW)).stored == 1


async def test_a_ping_ends_an_outage_when_nothing_is_queued() -> None:
    clock = [0.0]
    store = FakeStore()
    log = CardLog(store, Metrics(), clock=lambda: clock[0])  # type: ignore[arg-type]
    store.fail = True
    assert not await log.check_storage(1)
    assert not await log.check_storage(1)
    assert store.pings == 1, "no ping during the backoff"
    store.fail = False
    clock[0] = 1
    assert await log.check_storage(1)
    assert not log.storage_down


async def test_snooze_lookups_are_cached_until_ttl_or_invalidation() -> None:
    clock = [0.0]
    store = FakeStore()
    log = CardLog(store, Metrics(), snooze_ttl_s=5, clock=lambda: clock[0])  # type: ignore[arg-type]
    assert (await log.silenced("svc", scope("snoozed"), NOW, {}, {}))[0] == {"bone-health"}
    await log.silenced("svc", scope("snoozed"), NOW, {}, {})
    assert store.reads == 1
    clock[0] = 6  # past the TTL: the cached answer is served and read again in the background
    assert (await log.silenced("svc", scope("snoozed"), NOW, {}, {}))[0] == {"bone-health"}
    assert store.reads == 1
    await log.refresh_stale()
    assert store.reads == 2
    await log.silenced("svc", scope("snoozed"), NOW, {}, {})
    await log.refresh_stale()
    assert store.reads == 2, "fresh again after the background read"
    log.invalidate()
    await log.silenced("svc", scope("snoozed"), NOW, {}, {})
    assert store.reads == 3


class SlowStore(FakeStore):
    """A store whose reads wait until the test lets them finish."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def silenced_topics(
        self, scope: SnoozeScope, now: datetime, snooze_days: Mapping[str, int]
    ) -> frozenset[str]:
        self.release.wait(5)
        return super().silenced_topics(scope, now, snooze_days)


async def test_concurrent_misses_for_one_patient_share_one_read() -> None:
    store = SlowStore()
    log = CardLog(store, Metrics())  # type: ignore[arg-type]
    answers: list[frozenset[str]] = []

    async def ask() -> None:
        answers.append((await log.silenced("svc", scope("snoozed"), NOW, {}, {}))[0])

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(ask)
        await anyio.sleep(0.05)
        store.release.set()
    assert store.reads == 1
    assert answers == [frozenset({"bone-health"})] * 4


async def test_a_read_begun_before_feedback_is_not_cached() -> None:
    store = SlowStore()
    log = CardLog(store, Metrics())  # type: ignore[arg-type]
    async with anyio.create_task_group() as group:
        group.start_soon(log.silenced, "svc", scope("snoozed"), NOW, {}, {})
        await anyio.sleep(0.05)
        log.invalidate()  # feedback stored while the read was under way
        store.release.set()
    await log.silenced("svc", scope("snoozed"), NOW, {}, {})
    assert store.reads == 2


async def test_repeat_check_sees_cards_still_queued() -> None:
    store = FakeStore()
    log = CardLog(store, Metrics())  # type: ignore[arg-type]
    log.submit([card("a", draft_key="d1")])
    assert await log.recent_cards(scope(), NOW) == {("bone-health", "d1")}


async def test_repeat_check_answers_empty_when_storage_is_down() -> None:
    store = FakeStore()
    store.fail = True
    log = CardLog(store, Metrics())  # type: ignore[arg-type]
    assert await log.recent_cards(scope(), NOW) == frozenset()


async def test_repeat_check_sees_queued_cards_while_storage_is_down() -> None:
    store = FakeStore()
    store.fail = True
    log = CardLog(store, Metrics())  # type: ignore[arg-type]
    log.submit([card("a", draft_key="d1"), card("b", draft_key="d2", patient_key="other")])
    assert await log.recent_cards(scope(), NOW) == {("bone-health", "d1")}
    assert log.queued == 2


class CommitThenFail:
    """A real store whose next write commits and then raises, as when the connection drops
    after COMMIT: the client cannot tell whether the batch was written."""

    def __init__(self, inner: SQLFeedbackStore) -> None:
        self.inner = inner
        self.ambiguous = 1

    def record_cards(self, cards: Sequence[CardIssued]) -> frozenset[SnoozeScope]:
        adopted = self.inner.record_cards(cards)
        if self.ambiguous:
            self.ambiguous -= 1
            raise StoreError("feedback store failed: OperationalError")
        return adopted

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_batch_retried_after_an_ambiguous_commit_is_written_once(
    store: SQLFeedbackStore, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [0.0]
    flaky = CommitThenFail(store)
    log = CardLog(flaky, Metrics(), clock=lambda: clock[0])
    monkeypatch.setattr(card_log, "BATCH", 2)
    dxa = IssuedSuggestion(uuid="s-1", key="dxa")
    log.submit([card("a", suggestions=(dxa,)), card("b"), card("c")])
    assert not await log.flush()  # a and b committed, but the write "failed"
    assert log.queued == 3
    clock[0] = 1
    assert await log.flush()
    (row,) = store.stats(None)
    assert row.issued == 3
    result = await log.record_feedback("svc", ANONYMOUS, [overridden("a")], NOW)
    assert result.unknown_cards == 0


async def test_feedback_stored_before_its_card_counts_at_once_when_the_card_is_written(
    store: SQLFeedbackStore,
) -> None:
    """Replica one issued the card but has not written it yet; the EHR's override reaches
    replica two (stored as about an unknown card). When one writes the card the feedback is
    adopted: one drops its cached snooze answer and publishes the scope for the others, so the
    snooze shows at once rather than after the cache window."""
    published: list[str] = []

    async def publish(message: str) -> None:
        published.append(message)

    one = CardLog(store, Metrics(), publish=publish)
    two = CardLog(store, Metrics(), publish=publish)
    snooze = {"already-done": 90}
    one.submit([card("late")])  # issued by one, still queued there
    assert (await one.silenced("svc", scope(), NOW, snooze, {}))[0] == frozenset()  # cached
    item = replace(overridden("late"), override_code="already-done")
    stored = await two.record_feedback("svc", ANONYMOUS, [item], NOW)
    assert stored.unknown_cards == 1
    assert published == []  # nothing known to invalidate yet
    assert await one.flush()
    assert published == [scope().encode()]
    assert (await one.silenced("svc", scope(), NOW, snooze, {}))[0] == {"bone-health"}
    # Written again (a retry after an ambiguous commit): nothing adopted, nothing published.
    assert store.record_cards([card("late")]) == frozenset()


async def test_feedback_from_another_client_is_not_adopted_when_the_card_is_written(
    store: SQLFeedbackStore,
) -> None:
    published: list[str] = []

    async def publish(message: str) -> None:
        published.append(message)

    one = CardLog(store, Metrics(), publish=publish)
    two = CardLog(store, Metrics(), publish=publish)
    one.submit([card("theirs")])  # issued by one to the anonymous client, still queued
    other = ClientIdentity("https://other-ehr.example", "")
    item = replace(overridden("theirs"), override_code="already-done")
    await two.record_feedback("svc", other, [item], NOW)
    assert await one.flush()
    assert published == []
    snooze = {"already-done": 90}
    assert (await one.silenced("svc", scope(), NOW, snooze, {}))[0] == frozenset()


async def test_reads_of_a_local_sqlite_file_run_inline_and_others_in_a_thread(
    store: SQLFeedbackStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite in WAL mode answers a read without waiting for a writer: the per-call reads run
    on the event loop (a thread hop costs more than the read). PostgreSQL's go to a thread."""
    hops: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", "?"))
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    log = CardLog(store, Metrics())
    await log.silenced("svc", scope(), NOW, {"already-done": 90}, {"dxa": 30})
    await log.recent_cards(scope(), NOW)
    local = store._dialect == "sqlite"
    assert store.local_reads is local
    assert hops == ([] if local else ["read", "recent_cards"])
