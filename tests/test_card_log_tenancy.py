"""The card log's snooze cache and repeat check per scope (client, tenant, fhirServer and patient)."""

from __future__ import annotations

import pytest

from cds_service.api.card_log import CardLog
from cds_service.metrics import Metrics
from cds_service.tenancy import ClientIdentity, SnoozeScope
from tests.test_card_log import NOW, FakeStore, card, overridden, scope

pytestmark = pytest.mark.anyio
A = ClientIdentity("https://ehr-a.example/fhir")
B = ClientIdentity("https://ehr-b.example/fhir")


async def test_invalidate_scope_drops_that_scope_for_every_service_only() -> None:
    store = FakeStore()
    log = CardLog(store, Metrics(), snooze_ttl_s=60, clock=lambda: 0.0)  # type: ignore[arg-type]
    a, b = scope("snoozed", A), scope("snoozed", B)
    for service in ("svc", "other-svc"):
        for each in (a, b):
            await log.silenced(service, each, NOW, {}, {})
    assert store.reads == 4
    log.invalidate_scope(a)
    for service in ("svc", "other-svc"):
        for each in (a, b):
            await log.silenced(service, each, NOW, {}, {})
    assert store.reads == 6, "a's two services read again, b's still cached"
    log.invalidate_scope(scope("never-cached", A))  # a no-op, never raises


async def test_feedback_drops_the_cache_of_the_scopes_it_touched_only() -> None:
    store = FakeStore()
    log = CardLog(store, Metrics(), snooze_ttl_s=60, clock=lambda: 0.0)  # type: ignore[arg-type]
    a, b = scope("snoozed", A), scope("snoozed", B)
    log.submit([card("a-1", client=A, patient_key="snoozed")])
    await log.silenced("svc", a, NOW, {}, {})
    await log.silenced("svc", b, NOW, {}, {})
    result = await log.record_feedback("svc", A, [overridden("a-1")], NOW)
    assert result.scopes == {a}
    await log.silenced("svc", a, NOW, {}, {})
    await log.silenced("svc", b, NOW, {}, {})
    assert store.reads == 3
    # B's feedback on A's card touches no scope: nothing is dropped.
    assert (await log.record_feedback("svc", B, [overridden("a-1")], NOW)).scopes == frozenset()
    await log.silenced("svc", a, NOW, {}, {})
    assert store.reads == 3


async def test_repeat_check_on_queued_cards_is_scoped_by_client() -> None:
    store = FakeStore()
    store.fail = True  # the queued cards only
    log = CardLog(store, Metrics())  # type: ignore[arg-type]
    log.submit([card("a", draft_key="d1", client=A), card("b", draft_key="d2", client=B)])
    assert await log.recent_cards(scope("pk", A), NOW) == {("bone-health", "d1")}
    assert await log.recent_cards(scope("pk", B), NOW) == {("bone-health", "d2")}
    assert await log.recent_cards(scope(), NOW) == frozenset()


def test_scope_encoding_round_trips_and_refuses_anything_else() -> None:
    east = scope("pk", ClientIdentity("https://ehr-a.example/fhir", "east"))
    assert SnoozeScope.decode(east.encode()) == east
    assert SnoozeScope.decode(scope().encode()) == scope()
    for other in ("glucocorticoid-safety", "[1, 2, 3]", '["a", "b"]', "{}", ""):
        assert SnoozeScope.decode(other) is None


async def test_feedback_publishes_the_scopes_it_touched_and_replicas_drop_only_those() -> None:
    store = FakeStore()
    published: list[str] = []

    async def publish(message: str) -> None:
        published.append(message)

    here = CardLog(store, Metrics(), publish=publish)  # type: ignore[arg-type]
    there = CardLog(store, Metrics(), snooze_ttl_s=60, clock=lambda: 0.0)  # type: ignore[arg-type]
    a, b = scope("snoozed", A), scope("snoozed", B)
    here.submit([card("a-1", client=A, patient_key="snoozed")])
    await here.record_feedback("svc", B, [overridden("a-1")], NOW)
    assert published == [], "feedback on another client's card touches nothing anywhere"
    await here.record_feedback("svc", A, [overridden("a-1")], NOW)
    assert published == [a.encode()]
    for each in (a, b):
        await there.silenced("svc", each, NOW, {}, {})
    reads = store.reads
    there.invalidate(published[0])  # what the subscriber does with the message
    await there.silenced("svc", a, NOW, {}, {})
    await there.silenced("svc", b, NOW, {}, {})
    assert store.reads == reads + 1, "only A's scope is read again"
    there.invalidate("not a scope")  # unreadable: everything is dropped
    await there.silenced("svc", b, NOW, {}, {})
    assert store.reads == reads + 2
