"""Feedback endpoint and the snooze loop over HTTP: card -> override -> silence -> report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app_client import SPEC, app_client, make_settings
from tests.requests import patient_view

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/glucocorticoid-safety"
FEEDBACK = f"{SERVICE}/feedback"
REASONS = "https://glucocorticoid-cds.example.org/fhir/CodeSystem/override-reason"


def cards_by_topic(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}


@pytest.mark.parametrize(
    "name",
    ["feedback-accepted.json", "feedback-overridden.json", "feedback-overridden-with-reason.json"],
)
async def test_spec_feedback_examples_are_accepted(tmp_path: Path, name: str) -> None:
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(FEEDBACK, json=json.loads((SPEC / name).read_text()))
        assert response.status_code == 200, response.text
        assert response.json() == {}


@pytest.mark.parametrize(
    "item",
    [
        {"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"},
        {"card": "x", "outcome": "maybe", "outcomeTimestamp": "2026-01-01T00:00:00Z"},
        {"card": "x", "outcome": "overridden", "outcomeTimestamp": "yesterday"},
        {"card": "x", "outcome": "overridden", "outcomeTimestamp": "2026-01-01"},
        {"card": "x", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00"},
        {"outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z"},
    ],
)
async def test_invalid_feedback_is_400(tmp_path: Path, item: dict[str, Any]) -> None:
    async with app_client(make_settings(tmp_path)) as client:
        response = await client.post(FEEDBACK, json={"feedback": [item]})
        assert response.status_code == 400
        assert response.json()["resourceType"] == "OperationOutcome"
    async with app_client(make_settings(tmp_path)) as client:
        assert (await client.post(FEEDBACK, json={"feedback": []})).status_code == 400


async def test_unknown_reason_without_display_and_unknown_card_are_accepted(tmp_path: Path) -> None:
    item = {
        "card": "no-such-card",
        "outcome": "overridden",
        "overrideReason": {"reason": {"code": "zzz", "system": "urn:x"}},
        "outcomeTimestamp": "2026-11-24T06:00:00.52Z",
    }
    async with app_client(make_settings(tmp_path)) as client:
        assert (await client.post(FEEDBACK, json={"feedback": [item]})).status_code == 200
        assert (await client.post(FEEDBACK, json={"feedback": [item]})).status_code == 200


async def test_snooze_loop_end_to_end(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with app_client(settings) as client:
        first = cards_by_topic(await client.post(SERVICE, json=patient_view("pt-loop")))
        assert set(first) == {"bone-health", "osteonecrosis", "infection-prevention"}
        bone = first["bone-health"]
        override = {
            "card": bone["uuid"],
            "outcome": "overridden",
            "overrideReason": {"reason": {"system": REASONS, "code": "already-done"}},
            "outcomeTimestamp": "2026-11-24T05:00:00Z",
        }
        assert (await client.post(FEEDBACK, json={"feedback": [override]})).status_code == 200

        again = cards_by_topic(await client.post(SERVICE, json=patient_view("pt-loop")))
        assert set(again) == {"osteonecrosis", "infection-prevention"}
        other = cards_by_topic(await client.post(SERVICE, json=patient_view("pt-other")))
        assert "bone-health" in other  # other patients are unaffected

        infection = again["infection-prevention"]
        igra = next(s for s in infection["suggestions"] if "interferon" in s["label"].lower())
        accepted = {
            "card": infection["uuid"],
            "outcome": "accepted",
            "acceptedSuggestions": [{"id": igra["uuid"]}],
            "outcomeTimestamp": "2026-11-24T05:30:00Z",
        }
        assert (await client.post(FEEDBACK, json={"feedback": [accepted]})).status_code == 200
        third = cards_by_topic(await client.post(SERVICE, json=patient_view("pt-loop")))
        labels = [s["label"] for s in third["infection-prevention"]["suggestions"]]
        assert not any("interferon" in label.lower() for label in labels)
        assert any("hepatitis" in label.lower() for label in labels)

    env = {**os.environ, "CDS_DATABASE_URL": settings.database_url.get_secret_value()}
    report = subprocess.run(
        [sys.executable, "-m", "cds_service", "report", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    rows = {row["topic"]: row for row in json.loads(report.stdout)}
    assert rows["bone-health"]["overridden"] == 1
    assert rows["bone-health"]["override_reasons"] == {"already-done": 1}
    assert rows["infection-prevention"]["accepted"] == 1


@pytest.mark.parametrize(
    "reason",
    [
        {"system": "urn:another-ehr:reasons", "code": "already-done"},
        {"code": "already-done"},
        {"system": REASONS, "code": "\x1b[31mforged\nrow"},
    ],
    ids=["foreign-system", "no-system", "control-characters"],
)
async def test_a_reason_the_card_never_offered_counts_but_never_snoozes(
    tmp_path: Path, reason: dict[str, str]
) -> None:
    """Only the card's own overrideReasons (system and code) snooze; anything else is stored as
    'unrecognised', so a caller's text never reaches the report."""
    async with app_client(make_settings(tmp_path, admin_token="adm-test")) as client:
        bone = cards_by_topic(await client.post(SERVICE, json=patient_view("pt-foreign")))[
            "bone-health"
        ]
        override = {
            "card": bone["uuid"],
            "outcome": "overridden",
            "overrideReason": {"reason": reason},
            "outcomeTimestamp": "2026-11-24T05:00:00Z",
        }
        assert (await client.post(FEEDBACK, json={"feedback": [override]})).status_code == 200
        again = cards_by_topic(await client.post(SERVICE, json=patient_view("pt-foreign")))
        assert "bone-health" in again
        stats = await client.get("/admin/stats", headers={"Authorization": "Bearer adm-test"})
    assert stats.status_code == 200, stats.text
    rows = {row["topic"]: row for row in stats.json()["rows"]}
    assert rows["bone-health"]["override_reasons"] == {"unrecognised": 1}


async def test_restart_keeps_feedback(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with app_client(settings) as client:
        bone = cards_by_topic(await client.post(SERVICE, json=patient_view("pt-restart")))[
            "bone-health"
        ]
        item = {
            "card": bone["uuid"],
            "outcome": "overridden",
            "overrideReason": {"reason": {"system": REASONS, "code": "patient-declined"}},
            "outcomeTimestamp": "2026-11-24T05:00:00Z",
        }
        await client.post(FEEDBACK, json={"feedback": [item]})
    async with app_client(settings) as client:
        assert "bone-health" not in cards_by_topic(
            await client.post(SERVICE, json=patient_view("pt-restart"))
        )
