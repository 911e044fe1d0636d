"""State shared by replicas in a real Redis: the JWT replay cache and snooze invalidation.

Two service instances (two apps with their own lifespans, one database and one Redis prefix)
stand for two replicas: a token accepted by one is refused by the other, feedback on one is
seen by the other within a second, and a Redis outage gives 503 (and an unready /readyz)
rather than accepting tokens unchecked. Also the attack-suite case of cache exhaustion: one
issuer filling its quota never refuses another issuer, in memory and in Redis.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis

from cds_service.api.redis_link import connect
from cds_service.api.redis_replay import RedisReplayCache
from cds_service.api.snooze_bus import SnoozeBus
from cds_service.errors import ReplayCacheUnavailable
from cds_service.settings import Settings
from tests.app_client import app_client, make_settings
from tests.jwt_client import SignedClient
from tests.redis_support import REDIS_HOST, RedisTarget, redis_target
from tests.requests import patient_view
from tests.tcp_proxy import TCPProxy

pytestmark = pytest.mark.anyio
__all__ = ["redis_target"]  # the fixture, imported for pytest

BASE = "http://test"
SERVICE = "/cds-services/glucocorticoid-safety"
FEEDBACK = f"{SERVICE}/feedback"
DISCOVERY = "/cds-services"
REASONS = "https://glucocorticoid-cds.example.org/fhir/CodeSystem/override-reason"


@pytest.fixture
def ehr() -> Iterator[SignedClient]:
    with SignedClient.start() as client:
        yield client


def write_clients(tmp_path: Path, *clients: SignedClient) -> Path:
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"clients": [c.registration() for c in clients]}), "utf-8")
    return path


def shared_settings(tmp_path: Path, clients_file: Path, url: str, prefix: str) -> Settings:
    return make_settings(
        tmp_path,
        auth="required",
        clients_file=clients_file,
        redis_url=url,
        redis_key_prefix=prefix,
    )


@asynccontextmanager
async def replicas(settings: Settings, count: int = 2) -> AsyncIterator[list[httpx.AsyncClient]]:
    """``count`` instances of the service on the same settings, each with its own lifespan."""
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(app_client(settings)) for _ in range(count)]
        for client in clients:  # the snooze subscribers connect in the background
            await eventually(5.0, partial(subscribed, client))
        yield clients


async def subscribed(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/readyz")).json().get("snooze_subscriber") == "connected")


async def eventually(timeout_s: float, condition: Callable[[], Awaitable[bool]]) -> float:
    """Poll ``condition`` until it holds (seconds it took); fails after ``timeout_s``."""
    started = time.monotonic()
    with anyio.fail_after(timeout_s):
        while True:
            if await condition():
                return time.monotonic() - started
            await anyio.sleep(0.02)


def bearer(ehr: SignedClient, path: str = SERVICE) -> dict[str, str]:
    return {"Authorization": ehr.authorization(f"{BASE}{path}")}


def topics(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}


# ---------------------------------------------------------------- the cache itself


def keys_under(target: RedisTarget) -> list[bytes]:
    with redis.Redis(host=REDIS_HOST, port=target.port) as client:
        return sorted(client.scan_iter(match=f"{target.prefix}*"))


async def test_redis_cache_is_atomic_set_if_absent_with_the_token_expiry(
    redis_target: RedisTarget,
) -> None:
    client = connect(redis_target.url, 0.5)
    try:
        cache = RedisReplayCache(
            client, prefix=redis_target.prefix, max_per_issuer=10, leeway_s=60, max_exp_ahead_s=300
        )
        exp = int(time.time()) + 120
        assert not await cache.seen("https://a.example", "jti-1", exp)
        assert await cache.seen("https://a.example", "jti-1", exp)
        assert not await cache.seen("https://b.example", "jti-1", exp)  # scoped by issuer
        jti_key, issuer_key = cache.keys("https://a.example", "jti-1")
        ttl = await client.ttl(jti_key)
        assert 120 + 60 - 2 <= ttl <= 120 + 60 + 1  # the token's expiry plus the leeway
        assert 0 < await client.ttl(issuer_key) <= 300 + 2 * 60 + 2
        # No issuer URL or jti in key names: digests only.
        assert not any(b"example" in key or b"jti-1" in key for key in keys_under(redis_target))
        # Concurrent first uses of one token: exactly one is accepted.
        results: list[bool] = []

        async def use() -> None:
            results.append(await cache.seen("https://a.example", "jti-race", exp))

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(use)
        assert results.count(False) == 1
    finally:
        await client.aclose()


async def test_redis_quota_full_for_one_issuer_never_refuses_another(
    redis_target: RedisTarget,
) -> None:
    client = connect(redis_target.url, 0.5)
    try:
        cache = RedisReplayCache(
            client, prefix=redis_target.prefix, max_per_issuer=3, leeway_s=0, max_exp_ahead_s=300
        )
        now = int(time.time())
        for jti in ("a", "b", "c"):
            assert not await cache.seen("flood", jti, now + 200)
        assert await cache.seen("flood", "d", now + 200)  # its quota is full: fails closed
        assert not await cache.seen("victim", "a", now + 200)
        # Expired entries leave the quota: seen from a clock past their expiry, it has room.
        later = RedisReplayCache(
            client,
            prefix=redis_target.prefix,
            max_per_issuer=3,
            leeway_s=0,
            max_exp_ahead_s=300,
            clock=lambda: now + 1000.0,
        )
        assert not await later.seen("flood", "e", now + 1100)
        _, issuer_key = cache.keys("flood", "e")
        assert await client.zcard(issuer_key) == 1  # a, b, c evicted
    finally:
        await client.aclose()


async def test_redis_unreachable_raises_replay_cache_unavailable_quickly() -> None:
    proxy = TCPProxy(6379)  # never started: connections are refused
    client = connect(f"redis://127.0.0.1:{proxy.port}/0", 0.5)
    try:
        cache = RedisReplayCache(
            client, prefix="cds-test-down:", max_per_issuer=3, leeway_s=0, max_exp_ahead_s=300
        )
        started = time.monotonic()
        with pytest.raises(ReplayCacheUnavailable):
            await cache.seen("iss", "jti", int(time.time()) + 100)
        assert time.monotonic() - started < 2
    finally:
        await client.aclose()


# ---------------------------------------------------------------- two replicas


async def test_token_accepted_by_one_replica_is_refused_by_the_other(
    tmp_path: Path, ehr: SignedClient, redis_target: RedisTarget
) -> None:
    settings = shared_settings(
        tmp_path, write_clients(tmp_path, ehr), redis_target.url, redis_target.prefix
    )
    async with replicas(settings) as (one, two):
        headers = bearer(ehr)
        assert (await one.post(SERVICE, json=patient_view(), headers=headers)).status_code == 200
        replayed = await two.post(SERVICE, json=patient_view(), headers=headers)
        assert replayed.status_code == 401
        # The same 401 as any other refusal: body and challenge.
        missing = await two.post(SERVICE, json=patient_view())
        assert missing.status_code == 401
        assert replayed.text == missing.text
        assert replayed.headers["www-authenticate"] == missing.headers["www-authenticate"]
        assert (
            await two.post(SERVICE, json=patient_view(), headers=bearer(ehr))
        ).status_code == 200


async def test_feedback_on_one_replica_snoozes_on_the_other_within_a_second(
    tmp_path: Path, ehr: SignedClient, redis_target: RedisTarget
) -> None:
    settings = shared_settings(
        tmp_path, write_clients(tmp_path, ehr), redis_target.url, redis_target.prefix
    )
    async with replicas(settings) as (one, two):
        # Replica two has the patient's snooze lookup cached (5 s window) before the feedback.
        before = topics(await two.post(SERVICE, json=patient_view("pt-bus"), headers=bearer(ehr)))
        assert "bone-health" in before
        card = topics(await one.post(SERVICE, json=patient_view("pt-bus"), headers=bearer(ehr)))
        override = {
            "card": card["bone-health"]["uuid"],
            "outcome": "overridden",
            "overrideReason": {"reason": {"system": REASONS, "code": "already-done"}},
            "outcomeTimestamp": "2026-11-24T05:00:00Z",
        }
        stored = await one.post(
            FEEDBACK, json={"feedback": [override]}, headers=bearer(ehr, FEEDBACK)
        )
        assert stored.status_code == 200, stored.text

        async def snoozed_on_two() -> bool:
            response = await two.post(SERVICE, json=patient_view("pt-bus"), headers=bearer(ehr))
            return "bone-health" not in topics(response)

        # Well inside replica two's 5 s cache window: only the published invalidation does it.
        assert await eventually(1.0, snoozed_on_two) < 1.0


async def test_redis_down_gives_503_and_unready_then_recovers(
    tmp_path: Path, ehr: SignedClient, redis_target: RedisTarget
) -> None:
    proxy = TCPProxy(redis_target.port)
    proxy.start()
    url = f"redis://127.0.0.1:{proxy.port}/0"
    settings = shared_settings(tmp_path, write_clients(tmp_path, ehr), url, redis_target.prefix)
    try:
        async with replicas(settings, count=1) as (service,):
            assert (await service.get("/readyz")).status_code == 200
            ok = await service.post(SERVICE, json=patient_view(), headers=bearer(ehr))
            assert ok.status_code == 200
            proxy.stop()

            down = await service.post(SERVICE, json=patient_view("pt-x"), headers=bearer(ehr))
            assert down.status_code == 503
            assert down.headers["retry-after"] == "1"
            body = down.json()
            assert body["resourceType"] == "OperationOutcome"
            assert body["issue"][0]["code"] == "transient"
            assert "pt-x" not in down.text
            feedback = await service.post(
                FEEDBACK, json={"feedback": []}, headers=bearer(ehr, FEEDBACK)
            )
            assert feedback.status_code == 503
            # A token that fails its checks is still the one 401: Redis is consulted last.
            assert (await service.post(SERVICE, json=patient_view())).status_code == 401
            ready = await service.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["reason"] == "replay cache unavailable"
            assert ready.json()["redis"] == "unreachable"
            assert (await service.get("/healthz")).status_code == 200  # liveness stays up

            proxy.start()

            async def is_ready() -> bool:
                return (await service.get("/readyz")).status_code == 200

            await eventually(10.0, is_ready)
            back = await service.post(SERVICE, json=patient_view(), headers=bearer(ehr))
            assert back.status_code == 200
    finally:
        proxy.stop()


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_one_issuer_exhausting_its_quota_never_refuses_another(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    with (
        SignedClient.start(iss="https://flood.example/fhir") as flood,
        SignedClient.start(iss="https://victim.example/fhir") as victim,
    ):
        extra: dict[str, Any] = {}
        if backend == "redis":
            target: RedisTarget = request.getfixturevalue("redis_target")
            extra = {"redis_url": target.url, "redis_key_prefix": target.prefix}
        settings = make_settings(
            tmp_path,
            auth="required",
            clients_file=write_clients(tmp_path, flood, victim),
            replay_max_per_issuer=3,
            **extra,
        )
        async with app_client(settings) as client:
            for _ in range(3):
                assert (
                    await client.get("/cds-services", headers=bearer(flood, DISCOVERY))
                ).status_code == 200
            refused = await client.get("/cds-services", headers=bearer(flood, DISCOVERY))
            assert refused.status_code == 401  # fails closed for the flooding issuer
            missing = await client.get("/cds-services")
            assert refused.text == missing.text  # the one 401
            for _ in range(3):
                assert (
                    await client.get("/cds-services", headers=bearer(victim, DISCOVERY))
                ).status_code == 200


async def test_subscriber_drops_the_whole_cache_on_every_reconnect(
    redis_target: RedisTarget,
) -> None:
    proxy = TCPProxy(redis_target.port)
    proxy.start()
    calls: list[str | None] = []
    client = connect(f"redis://127.0.0.1:{proxy.port}/0", 0.5)
    publisher = connect(redis_target.url, 0.5)
    bus = SnoozeBus(client, redis_target.prefix, calls.append)
    other = SnoozeBus(publisher, redis_target.prefix, lambda _: None)

    async def connected() -> bool:
        return bus.connected

    async def disconnected() -> bool:
        return not bus.connected

    async def heard(scope: str) -> bool:
        return scope in calls

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(bus.run)
            await eventually(5.0, connected)
            assert calls == [None]  # subscribed: start from an empty cache
            await other.publish("scope-1")
            await eventually(1.0, partial(heard, "scope-1"))
            proxy.stop()  # messages published now are lost to this subscriber
            await eventually(5.0, disconnected)
            await other.publish("scope-lost")
            proxy.start()
            await eventually(10.0, connected)
            assert "scope-lost" not in calls
            assert calls[-1] is None  # so the whole cache was dropped on reconnecting
            assert calls.count(None) == 2
            await other.publish("scope-2")
            await eventually(1.0, partial(heard, "scope-2"))
            group.cancel_scope.cancel()
    finally:
        proxy.stop()
        await client.aclose()
        await publisher.aclose()
