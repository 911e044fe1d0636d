"""Operational endpoints: /metrics behind CDS_METRICS_TOKEN, the OpenAPI document off by default."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.app_client import app_client, make_settings

pytestmark = pytest.mark.anyio
METRICS_TOKEN = "metrics-token-for-tests-3f9a"


async def test_metrics_open_when_no_token_is_configured(tmp_path: Path) -> None:
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert "cds_" in response.text


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        f"Bearer {METRICS_TOKEN}x",
        f"Bearer {METRICS_TOKEN[:-1]}",
        f"Basic {METRICS_TOKEN}",
        METRICS_TOKEN,
        "Bearer ",
    ],
)
async def test_metrics_need_the_token_when_configured(
    tmp_path: Path, authorization: str | None
) -> None:
    settings = make_settings(tmp_path, metrics_token=SecretStr(METRICS_TOKEN))
    async with app_client(settings) as client:
        reference = await client.post("/cds-services/glucocorticoid-safety/feedback")  # no auth
        headers = {} if authorization is None else {"Authorization": authorization}
        refused = await client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["issue"][0]["code"] == "login"
        assert "cds_" not in refused.text
        assert METRICS_TOKEN not in refused.text
        assert reference.status_code != 401  # auth is off: only /metrics asks for a token
        allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert allowed.status_code == 200
        assert "cds_" in allowed.text


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_openapi_document_and_viewers_are_off_by_default(tmp_path: Path, path: str) -> None:
    async with app_client(make_settings(tmp_path)) as client:
        assert (await client.get(path)).status_code == 404


async def test_openapi_on_when_enabled_and_docs_get_a_csp_that_loads_swagger_ui(
    tmp_path: Path,
) -> None:
    async with app_client(make_settings(tmp_path, openapi=True)) as client:
        document = await client.get("/openapi.json")
        assert document.status_code == 200
        assert "/cds-services/{service_id}" in document.json()["paths"]
        docs = await client.get("/docs")
        assert docs.status_code == 200
        assert "swagger-ui" in docs.text
        csp = docs.headers["content-security-policy"]
        assert "https://cdn.jsdelivr.net" in csp
        assert "frame-ancestors 'none'" in csp
        assert (await client.get("/redoc")).status_code == 200
        # The API itself keeps the strict policy.
        api_csp = (await client.get("/healthz")).headers["content-security-policy"]
        assert api_csp == "default-src 'none'; frame-ancestors 'none'"
