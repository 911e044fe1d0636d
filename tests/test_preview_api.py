"""The preview's HTTP surface without a browser: off by default (404), refused beside
authenticated hooks, its own strict CSP, the bundled cases, the explain endpoint (explanation,
chart, snoozes after real feedback), and the static files as package data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cds_service.main import create_app
from cds_service.preview.routes import PREVIEW_CSP, load_static
from tests.app_client import FIXTURES, app_client, make_settings

pytestmark = pytest.mark.anyio
SEED = FIXTURES / "glucocorticoid-safety" / "seed-dermatomyositis"
NOW = datetime.fromisoformat(json.loads((SEED / "expected.json").read_text())["now"])


def _seed() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((SEED / "request.json").read_text())
    return body


async def test_preview_is_off_by_default(tmp_path: Path) -> None:
    async with app_client(make_settings(tmp_path)) as client:
        for path in ("/preview", "/preview/static/preview.js", "/preview/api/fixtures"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.json()["resourceType"] == "OperationOutcome"
        response = await client.post("/preview/api/explain/glucocorticoid-safety", json=_seed())
        assert response.status_code == 404


@pytest.mark.parametrize("auth", ["required", "optional"])
def test_preview_is_refused_beside_authenticated_hooks(tmp_path: Path, auth: str) -> None:
    settings = make_settings(tmp_path, preview=True, auth=auth)
    with pytest.raises(RuntimeError, match="CDS_PREVIEW=true needs CDS_AUTH=off"):
        create_app(settings)


def test_serve_refuses_preview_with_auth_and_says_why(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cds_service", "serve", "--port", "1"],
        env={"CDS_PREVIEW": "true", "CDS_AUTH": "required", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "CDS_PREVIEW=true needs CDS_AUTH=off" in result.stderr


async def test_page_and_static_files_carry_the_preview_csp(tmp_path: Path) -> None:
    async with app_client(make_settings(tmp_path, preview=True)) as client:
        page = await client.get("/preview")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["content-security-policy"] == PREVIEW_CSP
        assert "<script>" not in page.text  # nothing inline
        assert "style=" not in page.text
        for name in ("preview.js", "markdown.js", "chart.js", "preview.css"):
            assert f"/preview/static/{name}" in page.text
            response = await client.get(f"/preview/static/{name}")
            assert response.status_code == 200, name
            assert response.headers["content-security-policy"] == PREVIEW_CSP
            assert response.headers["x-content-type-options"] == "nosniff"
        assert (
            (await client.get("/preview/static/preview.js"))
            .headers["content-type"]
            .startswith("text/javascript")
        )
        for path in ("/preview/static/index.html", "/preview/static/..%2Fchart.py"):
            assert (await client.get(path)).status_code == 404
        # Everything else keeps the service's own CSP.
        health = await client.get("/healthz")
        assert health.headers["content-security-policy"].startswith("default-src 'none'")
        assert health.headers.get_list("content-security-policy") == [
            "default-src 'none'; frame-ancestors 'none'"
        ]


async def test_fixtures_are_listed_and_served_by_name(tmp_path: Path) -> None:
    async with app_client(make_settings(tmp_path, preview=True)) as client:
        listing = (await client.get("/preview/api/fixtures")).json()["fixtures"]
        by_name = {f["name"]: f for f in listing}
        assert by_name["seed-dermatomyositis"] == {
            "name": "seed-dermatomyositis",
            "service": "glucocorticoid-safety",
            "hook": "patient-view",
        }
        assert {f["hook"] for f in listing} >= {"patient-view", "order-select", "order-sign"}
        response = await client.get("/preview/api/fixtures/seed-dermatomyositis")
        assert response.json() == _seed()
        for name in ("no-such-case", "..", "seed-dermatomyositis%2F..%2F..%2Fexpected"):
            assert (await client.get(f"/preview/api/fixtures/{name}")).status_code == 404


async def test_fixture_listing_is_empty_without_the_folder(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, preview=True, preview_fixtures_dir=tmp_path / "absent")
    async with app_client(settings) as client:
        assert (await client.get("/preview/api/fixtures")).json() == {"fixtures": []}


async def _override(client: httpx.AsyncClient, card: dict[str, Any], code: str) -> None:
    reason = next(r for r in card["overrideReasons"] if r["code"] == code)
    feedback = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": reason},
        "outcomeTimestamp": datetime.now(tz=UTC).isoformat(),
    }
    response = await client.post(
        "/cds-services/glucocorticoid-safety/feedback", json={"feedback": [feedback]}
    )
    assert response.status_code == 200, response.text


async def test_explain_gives_explanation_chart_and_snoozes(tmp_path: Path) -> None:
    async with app_client(make_settings(tmp_path, preview=True), clock=lambda: NOW) as client:
        explained = await client.post("/preview/api/explain/glucocorticoid-safety", json=_seed())
        assert explained.status_code == 200, explained.text
        body = explained.json()
        assert set(body) == {"explanation", "text", "chart"}
        outcomes = {r["topic"]: r["outcome"] for r in body["explanation"]["rules"]}
        assert outcomes["bone-health"] == "card"
        assert body["explanation"]["snoozed_topics"] == []
        assert body["text"].startswith("glucocorticoid-safety / patient-view")
        chart = body["chart"]
        assert [line["mg"] for line in chart["lines"]] == [2.5, 7.5, 20.0, 30.0]
        assert chart["today"] == NOW.date().isoformat()
        assert any(c["drug"] == "prednisone" for c in chart["courses"])
        assert max(run["mg"] for run in chart["daily"]) == body["explanation"]["exposure"]["max_mg"]

        # The explanation records nothing: feedback needs the hook call's own cards.
        cards = (await client.post("/cds-services/glucocorticoid-safety", json=_seed())).json()
        bone = next(c for c in cards["cards"] if c["source"]["topic"]["code"] == "bone-health")
        await _override(client, bone, "already-done")

        again = (
            await client.post("/preview/api/explain/glucocorticoid-safety", json=_seed())
        ).json()
        assert again["explanation"]["snoozed_topics"] == ["bone-health"]
        assert "Snoozed: bone-health" in again["text"]
        rule = next(r for r in again["explanation"]["rules"] if r["topic"] == "bone-health")
        assert "snoozed" in rule["outcome"]


async def test_explain_answers_like_the_hook_endpoint_on_bad_input(tmp_path: Path) -> None:
    async with app_client(make_settings(tmp_path, preview=True)) as client:
        unknown = await client.post("/preview/api/explain/no-such-service", json=_seed())
        assert unknown.status_code == 404
        broken = await client.post(
            "/preview/api/explain/glucocorticoid-safety",
            content=b'{"hook": "patient-view"}',
            headers={"Content-Type": "application/json"},
        )
        assert broken.status_code == 400
        assert broken.json()["resourceType"] == "OperationOutcome"
        wrong_hook = {**_seed(), "hook": "order-sign"}
        response = await client.post("/preview/api/explain/glucocorticoid-safety", json=wrong_hook)
        assert response.status_code == 400


def test_static_files_are_package_data(tmp_path: Path) -> None:
    """A non-editable install carries the page: setuptools' build copies static/ with the
    package (pyproject package-data)."""
    static = load_static()
    assert set(static) >= {"index.html", "preview.js", "markdown.js", "chart.js", "preview.css"}
    subprocess.run(  # noqa: S603 - setuptools on our own pyproject
        [
            sys.executable,
            "-c",
            "import setuptools; setuptools.setup()",
            "-q",
            "build_py",
            "--build-lib",
            str(tmp_path),
        ],
        cwd=FIXTURES.parent,
        capture_output=True,
        check=True,
        timeout=120,
    )
    built = {p.name for p in (tmp_path / "cds_service" / "preview" / "static").iterdir()}
    assert built == set(static)


def test_static_files_load_nothing_from_elsewhere() -> None:
    for name, (content, _) in load_static().items():
        text = content.decode()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), name
        assert not re.search(r"""fetch\(\s*["'`]https?:""", text), name
        assert "<script>" not in text, name
        assert not re.search(r"\son[a-z]+=", text), name  # no inline handlers
