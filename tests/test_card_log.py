"""Write-behind card recording and cached snooze lookups."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from cds_service.api.card_log import CardLog
from cds_service.metrics import Metrics
from cds_service.store.base import CardIssued, StoreError

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 24, tzinfo=UTC)


class FakeStore:
    def __init__(self) -> None:
        self.recorded: list[CardIssued] = []
        self.reads = 0
        self.fail = False

    def record_cards(self, cards: Sequence[CardIssued]) -> None:
        if self.fail:
            raise StoreError("feedback store failed: OperationalError")
        self.recorded.extend(cards)

    def silenced_topics(
        self, patient_key: str, now: datetime, snooze_days: Mapping[str, int]
    ) -> frozenset[str]:
        self.reads += 1
        if self.fail:
            raise StoreError("feedback store failed: OperationalError")
        return frozenset({"bone-health"}) if patient_key == "snoozed" else frozenset()

    def silenced_suggestions(
        self, patient_key: str, now: datetime, intervals: Mapping[str, int]
    ) -> frozenset[str]:
        return frozenset()

    def recent_cards(self, patient_key: str, since: datetime) -> frozenset[tuple[str, str]]:
        if self.fail:
            raise StoreError("feedback store failed: OperationalError")
        return frozenset(
            (c.topic, c.draft_key)
            for c in self.recorded
            if c.patient_key == patient_key and c.draft_key is not None and c.issued_at >= since
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
    }
    values.update(extra)
    return CardIssued(**values)


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


async def test_full_queue_drops_and_counts() -> None:
    store, metrics = FakeStore(), Metrics()
    log = CardLog(store, metrics, max_pending=2)  # type: ignore[arg-type]
    log.submit([card("a"), card("b")])
    log.submit([card("c")])
    await log.flush()
    assert [c.card_uuid for c in store.recorded] == ["a", "b"]
    assert errors(metrics) == 1


async def test_storage_outage_is_logged_and_counted_not_raised() -> None:
    store, metrics = FakeStore(), Metrics()
    store.fail = True
    log = CardLog(store, metrics)  # type: ignore[arg-type]
    log.submit([card("a")])
    await log.flush()
    assert await log.silenced("svc", "pk", NOW, {}, {}) == (frozenset(), frozenset())
    assert errors(metrics) == 2


async def test_snooze_lookups_are_cached_until_ttl_or_invalidation() -> None:
    clock = [0.0]
    store = FakeStore()
    log = CardLog(store, Metrics(), snooze_ttl_s=5, clock=lambda: clock[0])  # type: ignore[arg-type]
    assert (await log.silenced("svc", "snoozed", NOW, {}, {}))[0] == {"bone-health"}
    await log.silenced("svc", "snoozed", NOW, {}, {})
    assert store.reads == 1
    clock[0] = 6  # past the TTL: the cached answer is served and read again in the background
    assert (await log.silenced("svc", "snoozed", NOW, {}, {}))[0] == {"bone-health"}
    assert store.reads == 1
    await log.refresh_stale()
    assert store.reads == 2
    await log.silenced("svc", "snoozed", NOW, {}, {})
    await log.refresh_stale()
    assert store.reads == 2, "fresh again after the background read"
    log.invalidate()
    await log.silenced("svc", "snoozed", NOW, {}, {})
    assert store.reads == 3


class SlowStore(FakeStore):
    """A store whose reads wait until the test lets them finish."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def silenced_topics(
        self, patient_key: str, now: datetime, snooze_days: Mapping[str, int]
    ) -> frozenset[str]:
        self.release.wait(5)
        return super().silenced_topics(patient_key, now, snooze_days)


async def test_concurrent_misses_for_one_patient_share_one_read() -> None:
    store = SlowStore()
    log = CardLog(store, Metrics())  # type: ignore[arg-type]
    answers: list[frozenset[str]] = []

    async def ask() -> None:
        answers.append((await log.silenced("svc", "snoozed", NOW, {}, {}))[0])

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
        group.start_soon(log.silenced, "svc", "snoozed", NOW, {}, {})
        await anyio.sleep(0.05)
        log.invalidate()  # feedback stored while the read was under way
        store.release.set()
    await log.silenced("svc", "snoozed", NOW, {}, {})
    assert store.reads == 2


async def test_repeat_check_sees_cards_still_queued() -> None:
    store = FakeStore()
    log = CardLog(store, Metrics())  # type: ignore[arg-type]
    log.submit([card("a", draft_key="d1")])
    assert await log.recent_cards("pk", NOW) == {("bone-health", "d1")}


async def test_repeat_check_answers_empty_when_storage_is_down() -> None:
    store = FakeStore()
    store.fail = True
    log = CardLog(store, Metrics())  # type: ignore[arg-type]
    assert await log.recent_cards("pk", NOW) == frozenset()
