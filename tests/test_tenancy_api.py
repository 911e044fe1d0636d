"""Tenant-tampering attacks over HTTP, with two trusted EHRs A and B (test keys): a client can only
ever change what its own clinicians see (issue 19, docs/tenancy.md)."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.settings import Settings
from tests.app_client import FIXTURES, app_client, make_settings
from tests.fake_fhir import BASE as FHIR
from tests.fake_fhir import FakeFHIR
from tests.jwt_client import SignedClient
from tests.requests import patient_view, steroid_prefetch

pytestmark = pytest.mark.anyio
BASE = "http://test"
SERVICE = "/cds-services/glucocorticoid-safety"
FEEDBACK = f"{SERVICE}/feedback"
ORDERS = "/cds-services/glucocorticoid-orders"
REASONS = "https://glucocorticoid-cds.example.org/fhir/CodeSystem/override-reason"
ADMIN = "adm-secret"
PATIENT = "pt-shared"  # the same fhirServer (FHIR) and patient id for both EHRs


@pytest.fixture
def ehrs() -> tuple[SignedClient, SignedClient]:
    """Two EHRs with inline JWKS (the app's HTTP client goes to the fake FHIR server here)."""
    return (
        SignedClient(iss="https://ehr-a.test.example/fhir"),
        SignedClient(iss="https://ehr-b.test.example/fhir"),
    )


class EHR:
    """One trusted EHR calling the service: each call signed with a fresh token."""

    def __init__(self, http: httpx.AsyncClient, signer: SignedClient | None, **claims: Any):
        self.http, self.signer, self.claims = http, signer, claims

    def _headers(self, path: str) -> dict[str, str]:
        if self.signer is None:
            return {}
        return {"Authorization": self.signer.authorization(f"{BASE}{path}", **self.claims)}

    async def call(self, body: dict[str, Any], path: str = SERVICE) -> httpx.Response:
        return await self.http.post(path, json=body, headers=self._headers(path))

    async def cards(self, body: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        response = await self.call(body or patient_view(PATIENT, fhirServer=FHIR))
        assert response.status_code == 200, response.text
        return {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}

    async def override(self, card_uuid: str, code: str = "patient-declined") -> httpx.Response:
        item = {
            "card": card_uuid,
            "outcome": "overridden",
            "overrideReason": {"reason": {"system": REASONS, "code": code}},
            "outcomeTimestamp": "2026-11-24T05:00:00Z",
        }
        return await self.http.post(
            FEEDBACK, json={"feedback": [item]}, headers=self._headers(FEEDBACK)
        )


@asynccontextmanager
async def service(
    tmp_path: Path, *signers: SignedClient, auth: str = "required"
) -> AsyncIterator[httpx.AsyncClient]:
    """The app trusting ``signers``; the keys the EHRs leave out of prefetch are read from a
    fake FHIR server holding the same record."""
    settings: Settings = make_settings(tmp_path, auth=auth, admin_token=ADMIN)
    if signers:
        clients_file = tmp_path / "clients.json"
        clients_file.write_text(json.dumps({"clients": [s.registration() for s in signers]}))
        settings = make_settings(tmp_path, auth=auth, clients_file=clients_file, admin_token=ADMIN)
    fhir = FakeFHIR.from_prefetch(steroid_prefetch(PATIENT))
    async with app_client(settings, fhir_transport=httpx.MockTransport(fhir.handler)) as http:
        yield http


def same_answer(one: httpx.Response, other: httpx.Response) -> None:
    assert (one.status_code, one.content) == (other.status_code, other.content)
    assert one.headers.multi_items() == other.headers.multi_items()


async def test_overriding_another_ehrs_card_is_answered_as_an_unknown_card(
    tmp_path: Path, ehrs: tuple[SignedClient, SignedClient]
) -> None:
    async with service(tmp_path, *ehrs) as http:
        a, b = EHR(http, ehrs[0]), EHR(http, ehrs[1])
        a_bone = (await a.cards())["bone-health"]
        foreign = await b.override(a_bone["uuid"])
        unknown = await b.override("6c3f4f1e-0000-4000-8000-00000000dead")
        assert foreign.status_code == 200
        same_answer(foreign, unknown)
        assert "bone-health" in await a.cards(), "B's override did not silence A's card"
        assert "bone-health" in await b.cards(), "nor B's own"
        stats = await http.get("/admin/stats", headers={"Authorization": f"Bearer {ADMIN}"})
        bone_rows = {
            row["client_iss"]: row for row in stats.json()["rows"] if row["topic"] == "bone-health"
        }
        assert set(bone_rows) == {ehrs[0].iss, ehrs[1].iss}
        assert bone_rows[ehrs[0].iss]["overridden"] == 0, "B's override is not A's statistic"
        # A's own override of that card still works (B's did not take its place).
        assert (await a.override(a_bone["uuid"])).status_code == 200
        assert "bone-health" not in await a.cards()
        assert "bone-health" in await b.cards()


async def test_an_ehrs_own_override_does_not_silence_another_ehrs_card_for_the_same_patient(
    tmp_path: Path, ehrs: tuple[SignedClient, SignedClient]
) -> None:
    async with service(tmp_path, *ehrs) as http:
        a, b = EHR(http, ehrs[0]), EHR(http, ehrs[1])
        assert "infection-prevention" in await a.cards()
        b_infection = (await b.cards())["infection-prevention"]
        assert (await b.override(b_infection["uuid"])).status_code == 200
        assert "infection-prevention" not in await b.cards()
        assert "infection-prevention" in await a.cards()


async def test_same_issuer_with_another_tenant_claim_is_isolated(
    tmp_path: Path, ehrs: tuple[SignedClient, SignedClient]
) -> None:
    async with service(tmp_path, ehrs[0]) as http:
        east, west = EHR(http, ehrs[0], tenant="east"), EHR(http, ehrs[0], tenant="west")
        untenanted = EHR(http, ehrs[0])
        east_bone = (await east.cards())["bone-health"]
        west_bone = (await west.cards())["bone-health"]
        same_answer(await west.override(east_bone["uuid"]), await west.override("no-such-card"))
        assert "bone-health" in await east.cards()
        assert (await west.override(west_bone["uuid"])).status_code == 200
        assert "bone-health" not in await west.cards()
        assert "bone-health" in await east.cards()
        assert "bone-health" in await untenanted.cards()


async def test_order_sign_repeat_check_is_per_ehr(
    tmp_path: Path, ehrs: tuple[SignedClient, SignedClient]
) -> None:
    select = json.loads(
        (
            FIXTURES / "glucocorticoid-orders" / "pjp-tmp-smx-in-same-draft" / "request.json"
        ).read_text()
    )
    sign = copy.deepcopy(select)
    sign["hook"] = "order-sign"
    sign["hookInstance"] = "0e7f2c6a-0000-4000-8000-0000000000aa"
    del sign["context"]["selections"]
    async with service(tmp_path, *ehrs) as http:
        a, b = EHR(http, ehrs[0]), EHR(http, ehrs[1])
        shown = await a.call(select, ORDERS)
        assert shown.status_code == 200
        assert shown.json()["cards"]
        # A's order-select does not count as B having seen the advice ...
        b_sign = await b.call(sign, ORDERS)
        assert len(b_sign.json()["cards"]) == len(shown.json()["cards"])
        # ... while A's own order-sign of the same draft is a repeat.
        assert (await a.call(sign, ORDERS)).json()["cards"] == []


async def test_auth_off_is_one_anonymous_tenant_as_before(tmp_path: Path) -> None:
    async with service(tmp_path, auth="off") as http:
        first, second = EHR(http, None), EHR(http, None)
        bone = (await first.cards())["bone-health"]
        assert (await first.override(bone["uuid"])).status_code == 200
        assert "bone-health" not in await second.cards(), "every caller is the same tenant"


async def test_optional_auth_keeps_anonymous_and_verified_callers_apart(
    tmp_path: Path, ehrs: tuple[SignedClient, SignedClient]
) -> None:
    async with service(tmp_path, ehrs[0], auth="optional") as http:
        anonymous, a = EHR(http, None), EHR(http, ehrs[0])
        a_bone = (await a.cards())["bone-health"]
        same_answer(await anonymous.override(a_bone["uuid"]), await anonymous.override("nope"))
        assert "bone-health" in await a.cards()
        anonymous_bone = (await anonymous.cards())["bone-health"]
        assert (await anonymous.override(anonymous_bone["uuid"])).status_code == 200
        assert "bone-health" not in await anonymous.cards()
        assert "bone-health" in await a.cards()
