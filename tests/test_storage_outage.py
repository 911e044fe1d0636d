"""A feedback store outage as the EHR and the orchestrator see it: hook calls keep working, issued
cards wait in the queue, feedback gets 503 with Retry-After, readiness stays 200, and everything
recovers when the database answers again (docs/integrity.md, "Storage outages")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa

from cds_service.main import create_app
from cds_service.store.base import StoreError
from cds_service.store.connect import create_store_engine
from cds_service.store.sql import migrate
from cds_service.store.tables import feedback
from tests.app_client import NOW, LogCapture, app_client, make_settings
from tests.db import PG_PORT
from tests.requests import patient_view
from tests.tcp_proxy import TCPProxy

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/glucocorticoid-safety"
FEEDBACK = f"{SERVICE}/feedback"
REASONS = "https://glucocorticoid-cds.example.org/fhir/CodeSystem/override-reason"
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/x"


class Outage:
    """The app's real store behind a switch: while ``down``, every call fails as with a lost
    database (StoreError; ``ping`` answers False)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                if name == "ping":
                    return False
                raise StoreError("feedback store failed: OperationalError")
            return method(*args, **kwargs)

        return call


def override(card: dict[str, Any]) -> dict[str, Any]:
    return {
        "feedback": [
            {
                "card": card["uuid"],
                "outcome": "overridden",
                "overrideReason": {"reason": {"system": REASONS, "code": "already-done"}},
                "outcomeTimestamp": "2026-11-24T05:00:00Z",
            }
        ]
    }


def topics(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}


def assert_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["details"]["coding"] == [{"code": "storage-unavailable"}]
    assert body["issue"][0]["code"] == "transient"


async def wait_for_storage(client: httpx.AsyncClient, timeout_s: float = 10) -> None:
    """Until /healthz/storage answers 200 (the backoff has passed and a ping got through)."""
    for _ in range(int(timeout_s / 0.05)):
        if (await client.get("/healthz/storage")).status_code == 200:
            return
        await anyio.sleep(0.05)
    pytest.fail("storage did not come back")


async def test_outage_feedback_503_then_cards_and_feedback_written_on_recovery(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, admin_token="adm", store_retry_max_s=0.3)
    async with app_client(settings) as client:
        runtime = client._transport.app.state.runtime  # type: ignore[attr-defined]
        outage = Outage(runtime.store)
        runtime.store = runtime.card_log.store = outage
        outage.down = True

        bone = topics(await client.post(SERVICE, json=patient_view("pt-outage")))["bone-health"]
        assert_503(await client.post(FEEDBACK, json=override(bone)))
        assert_503(await client.get("/admin/stats", headers={"Authorization": "Bearer adm"}))
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["storage"] == "unreachable"
        storage = await client.get("/healthz/storage")
        assert storage.status_code == 503
        assert storage.json()["queued_cards"] == 3

        outage.down = False
        await wait_for_storage(client)
        # The EHR retries its feedback: the cards queued here are written first, so it is matched.
        assert (await client.post(FEEDBACK, json=override(bone))).status_code == 200
        assert runtime.card_log.queued == 0
        again = topics(await client.post(SERVICE, json=patient_view("pt-outage")))
        assert "bone-health" not in again, "the override snoozes the topic"
    engine = create_store_engine(settings.database_url.get_secret_value())
    try:
        with engine.connect() as conn:
            flags = conn.execute(sa.select(feedback.c.unknown_card)).scalars().all()
    finally:
        engine.dispose()
    assert flags == [False]


async def test_readiness_stays_200_while_the_database_file_is_unusable(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), clock=lambda: NOW)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        assert (await client.get("/readyz")).json()["status"] == "ready"
        app.state.runtime.store.close()
        (tmp_path / "cds.db").unlink()
        (tmp_path / "cds.db").mkdir()  # the database file is now unusable
        response = await client.post(SERVICE, json=patient_view())
        assert response.status_code == 200
        assert len(response.json()["cards"]) == 3
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert (ready.json()["status"], ready.json()["storage"]) == ("degraded", "unreachable")
        assert (await client.get("/healthz/storage")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200


async def test_starts_with_migrations_off_and_the_database_unreachable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=UNREACHABLE, migrate_on_start=False)
    with LogCapture() as captured:
        async with app_client(settings) as client:
            bone = topics(await client.post(SERVICE, json=patient_view()))["bone-health"]
            assert_503(await client.post(FEEDBACK, json=override(bone)))
            ready = await client.get("/readyz")
            assert (ready.status_code, ready.json()["status"]) == (200, "degraded")
            storage = await client.get("/healthz/storage")
            assert (storage.status_code, storage.json()["queued_cards"]) == (503, 3)
    lines = captured.lines
    assert any("retention purge skipped" in line for line in lines)
    lost = [line for line in lines if "lost at shutdown" in line]
    assert len(lost) == 1
    assert '"count":3' in lost[0]
    assert not any("pt-api-1" in line for line in lines)


async def test_migrations_on_start_fail_fast_when_the_database_is_unreachable(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, database_url=UNREACHABLE, migrate_on_start=True)
    app = create_app(settings, clock=lambda: NOW)
    with pytest.raises(StoreError, match="schema migration failed"):
        async with app.router.lifespan_context(app):
            pass


@pytest.fixture
def proxy() -> Iterator[TCPProxy]:
    forwarder = TCPProxy(PG_PORT)
    try:
        yield forwarder
    finally:
        forwarder.stop()


@pytest.mark.postgres
async def test_postgres_down_at_start_then_back_then_down_again(
    tmp_path: Path, pg_url: str, proxy: TCPProxy
) -> None:
    """A real PostgreSQL behind a forwarder that a test can cut: the service starts while it is
    unreachable (migrations off), recovers when it answers, and rides out a second outage that
    breaks its pooled connections."""
    migrate(pg_url)
    through_proxy = pg_url.replace(f"127.0.0.1:{PG_PORT}", f"127.0.0.1:{proxy.port}")
    settings = make_settings(
        tmp_path, database_url=through_proxy, migrate_on_start=False, store_retry_max_s=0.3
    )
    async with app_client(settings) as client:
        first = topics(await client.post(SERVICE, json=patient_view("pt-pg")))
        assert_503(await client.post(FEEDBACK, json=override(first["bone-health"])))
        assert (await client.get("/readyz")).status_code == 200

        proxy.start()
        await wait_for_storage(client)
        assert (await client.post(FEEDBACK, json=override(first["bone-health"]))).status_code == 200
        second = topics(await client.post(SERVICE, json=patient_view("pt-pg")))
        assert "bone-health" not in second

        proxy.stop()  # pooled connections are cut
        third = topics(await client.post(SERVICE, json=patient_view("pt-pg-2")))
        assert_503(await client.post(FEEDBACK, json=override(third["osteonecrosis"])))
        assert (await client.get("/readyz")).status_code == 200

        proxy.start()
        await wait_for_storage(client)
        response = await client.post(FEEDBACK, json=override(third["osteonecrosis"]))
        assert response.status_code == 200
    engine = create_store_engine(pg_url)
    try:
        with engine.connect() as conn:
            issued = conn.scalar(sa.text("SELECT count(*) FROM issued_card"))
            flags = conn.execute(sa.select(feedback.c.unknown_card)).scalars().all()
    finally:
        engine.dispose()
    assert issued == 8  # 3 + 2 (bone-health snoozed) + 3: none lost, none twice
    assert flags == [False, False]
