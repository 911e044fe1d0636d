"""A patient the record says has died gets no recommendations, and the response says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.app_client import FIXTURES, app_client, make_settings

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/glucocorticoid-safety"
DECEASED = "org.example.glucocorticoid-cds.patient-deceased"


def seed_with(**patient_fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        (FIXTURES / "glucocorticoid-safety" / "seed-dermatomyositis" / "request.json").read_text()
    )
    body["prefetch"]["patient"].update(patient_fields)
    return body


@pytest.mark.parametrize(
    ("fields", "silent"),
    [
        ({}, False),
        ({"deceasedBoolean": False}, False),
        ({"deceasedBoolean": True}, True),
        ({"deceasedDateTime": "2026-10-01"}, True),  # before the evaluation date (2026-11-24)
        ({"deceasedDateTime": "2026-11-24T01:00:00+04:00"}, True),  # earlier the same day
        ({"deceasedDateTime": "2027-01-01"}, False),  # a date after today: not yet
    ],
)
async def test_no_cards_for_a_deceased_patient(
    tmp_path: Path, fields: dict[str, Any], silent: bool
) -> None:
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(SERVICE, json=seed_with(**fields))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["cards"] == []) is silent
    assert body.get("extension", {}).get(DECEASED, False) is silent


def test_the_explanation_says_no_rule_ran_for_a_deceased_patient(tmp_path: Path) -> None:
    import subprocess
    import sys

    request = tmp_path / "request.json"
    request.write_text(json.dumps(seed_with(deceasedBoolean=True)))
    result = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "cds_service", "explain", str(request), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outcomes = {rule["outcome"] for rule in json.loads(result.stdout)["rules"]}
    assert outcomes == {"not run: the record says the patient has died"}
