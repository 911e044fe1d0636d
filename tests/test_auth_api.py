"""JWT trust over HTTP: the signed-client fixture drives every endpoint; attacks get one 401."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app_client import app_client, make_settings
from tests.jwt_client import SignedClient
from tests.requests import patient_view

pytestmark = pytest.mark.anyio
BASE = "http://test"
SERVICE = "/cds-services/glucocorticoid-safety"


@pytest.fixture
def ehr() -> Iterator[SignedClient]:
    with SignedClient.start() as client:
        yield client


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_every_endpoint_accepts_a_valid_token_and_refuses_none(
    tmp_path: Path, ehr: SignedClient
) -> None:
    settings = make_settings(
        tmp_path, auth="required", clients_file=ehr.write_clients_file(tmp_path)
    )
    async with app_client(settings) as client:
        assert (await client.get("/cds-services")).status_code == 401
        ok = await client.get(
            "/cds-services", headers={"Authorization": ehr.authorization(f"{BASE}/cds-services")}
        )
        assert ok.status_code == 200
        call = await client.post(
            SERVICE,
            json=patient_view(),
            headers={"Authorization": ehr.authorization(f"{BASE}{SERVICE}")},
        )
        assert call.status_code == 200
        card = call.json()["cards"][0]
        item = {
            "feedback": [
                {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-11-24T05:00:00Z",
                }
            ]
        }
        feedback = await client.post(
            f"{SERVICE}/feedback",
            json=item,
            headers={"Authorization": ehr.authorization(f"{BASE}{SERVICE}/feedback")},
        )
        assert feedback.status_code == 200
        # A token minted for the service URL is not valid for its feedback URL (aud is exact).
        wrong = await client.post(
            f"{SERVICE}/feedback",
            json=item,
            headers={"Authorization": ehr.authorization(f"{BASE}{SERVICE}")},
        )
        assert wrong.status_code == 401


async def test_attack_suite_gets_identical_401_bodies(tmp_path: Path, ehr: SignedClient) -> None:
    url = f"{BASE}{SERVICE}"
    good = ehr.mint(url)
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    attacks = {
        "missing": None,
        "alg-none": f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': 'x'})}.{payload}.",
        "tampered": f"{header}.{b64({**claims, 'aud': url, 'iss': claims['iss'], 'exp': claims['exp'] + 9999})}.{signature}",
        "wrong-aud": ehr.mint(f"{BASE}/cds-services/other"),
        "expired": ehr.mint(url, exp=1_000_000_000, iat=999_999_000),
        "unknown-kid": ehr.mint(url, header={"kid": "nope"}),
        "jku-elsewhere": ehr.mint(url, header={"jku": "http://127.0.0.1:9/evil.json"}),
        "unknown-issuer": ehr.mint(url, iss="https://evil.example"),
        "garbage": "not-a-jwt",
        # Token lifetime per CDS Hooks 2.0: exp at most 5 minutes ahead, iat and jti required.
        "exp-an-hour-ahead": ehr.mint(url, exp=int(time.time()) + 3600),
        "iat-missing": ehr.mint(url, iat=None),
        "jti-missing": ehr.mint(url, jti=None),
        "iat-in-the-future": ehr.mint(url, iat=int(time.time()) + 120),
    }
    settings = make_settings(
        tmp_path, auth="required", clients_file=ehr.write_clients_file(tmp_path)
    )
    bodies = set()
    async with app_client(settings) as client:
        replay_token = ehr.mint(url)
        assert (
            await client.post(
                SERVICE, json=patient_view(), headers={"Authorization": f"Bearer {replay_token}"}
            )
        ).status_code == 200
        attacks["replayed"] = replay_token
        for name, token in attacks.items():
            headers = {} if token is None else {"Authorization": f"Bearer {token}"}
            response = await client.post(SERVICE, json=patient_view(), headers=headers)
            assert response.status_code == 401, name
            assert response.headers["www-authenticate"] == "Bearer"
            bodies.add(response.text)
            if token:
                assert token not in response.text
    assert len(bodies) == 1


async def test_optional_mode_verifies_only_when_a_token_is_sent(
    tmp_path: Path, ehr: SignedClient
) -> None:
    settings = make_settings(
        tmp_path, auth="optional", clients_file=ehr.write_clients_file(tmp_path)
    )
    async with app_client(settings) as client:
        assert (await client.get("/cds-services")).status_code == 200
        bad = await client.get("/cds-services", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401


async def test_public_url_sets_the_expected_audience(tmp_path: Path, ehr: SignedClient) -> None:
    settings = make_settings(
        tmp_path,
        auth="required",
        clients_file=ehr.write_clients_file(tmp_path),
        public_url="https://cds.example.org",
    )
    async with app_client(settings) as client:
        internal = await client.get(
            "/cds-services", headers={"Authorization": ehr.authorization(f"{BASE}/cds-services")}
        )
        assert internal.status_code == 401
        public = await client.get(
            "/cds-services",
            headers={"Authorization": ehr.authorization("https://cds.example.org/cds-services")},
        )
        assert public.status_code == 200


def test_required_auth_without_clients_file_refuses_to_start(tmp_path: Path) -> None:
    import anyio

    async def start() -> None:
        async with app_client(make_settings(tmp_path, auth="required")):
            pass

    with pytest.raises(RuntimeError, match="CDS_CLIENTS_FILE"):
        anyio.run(start)
