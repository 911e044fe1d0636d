"""The cds-service command line: evaluate prints a CDS Hooks response; bad input exits non-zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "fixtures" / "glucocorticoid-safety" / "seed-dermatomyositis" / "request.json"
NOW = "2026-11-24T10:00:00+04:00"


def run(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "cds_service", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def test_evaluate_seed_case_prints_the_four_cards() -> None:
    result = run("evaluate", str(SEED), "--now", NOW)
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    topics = {card["source"]["topic"]["code"] for card in response["cards"]}
    assert topics == {"bone-health", "osteonecrosis", "infection-prevention", "myositis-monitoring"}


def test_evaluate_with_explicit_service() -> None:
    result = run("evaluate", str(SEED), "--service", "glucocorticoid-safety", "--now", NOW)
    assert result.returncode == 0, result.stderr


def test_evaluate_bad_inputs_exit_non_zero_with_a_message(tmp_path: Path) -> None:
    missing = run("evaluate", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert "not valid JSON" in run("evaluate", str(garbage)).stderr
    not_cds = tmp_path / "not-cds.json"
    not_cds.write_text(json.dumps({"hello": 1}))
    result = run("evaluate", str(not_cds))
    assert result.returncode == 2
    assert "hook" in result.stderr
    unknown = run("evaluate", str(SEED), "--service", "nope")
    assert unknown.returncode == 2
    assert "unknown service" in unknown.stderr
    no_data = tmp_path / "no-data.json"
    body = json.loads(SEED.read_text())
    del body["prefetch"]
    no_data.write_text(json.dumps(body))
    result = run("evaluate", str(no_data), "--now", NOW)
    assert result.returncode == 2
    assert "412" in result.stderr


def test_migrate_and_report_on_a_fresh_database(tmp_path: Path) -> None:
    env = {"CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db"}
    assert run("migrate", env=env).returncode == 0
    report = run("report", "--format", "json", env=env)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout) == []


def test_database_commands_say_when_the_database_is_down() -> None:
    """migrate, purge and report exit 1 with one clear line, no traceback and no credentials."""
    url = "postgresql+psycopg://someone:s3cret-pw@127.0.0.1:1/nowhere"
    for command in ("migrate", "purge", "report"):
        result = run(command, env={"CDS_DATABASE_URL": url})
        assert result.returncode == 1, (command, result.stderr)
        assert result.stderr.startswith("error: the database could not be used"), result.stderr
        assert "Traceback" not in result.stderr
        assert "s3cret-pw" not in result.stderr + result.stdout


def test_purge_removes_records_older_than_retention(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from cds_service.store.base import CardIssued
    from cds_service.store.sql import SQLFeedbackStore, migrate
    from cds_service.tenancy import ANONYMOUS

    url = f"sqlite:///{tmp_path}/purge.db"
    migrate(url)
    store = SQLFeedbackStore(url)
    now = datetime.now(tz=UTC)
    for uuid, age in (("old", 400), ("new", 10)):
        store.record_cards(
            [
                CardIssued(
                    uuid,
                    "svc",
                    "patient-view",
                    "hi",
                    "rule",
                    1,
                    "bone-health",
                    "info",
                    now - timedelta(days=age),
                    "pk",
                    ANONYMOUS,
                )
            ]
        )
    store.close()
    result = run("purge", env={"CDS_DATABASE_URL": url, "CDS_RETENTION_DAYS": "365"})
    assert result.returncode == 0, result.stderr
    assert "purged 1 " in result.stdout
    store = SQLFeedbackStore(url)
    try:
        assert [row.issued for row in store.stats(None)] == [1]
    finally:
        store.close()


def test_serve_logs_one_line_with_its_address(tmp_path: Path) -> None:
    """The first line a newcomer reads: where the service listens (not uvicorn's template)."""
    import socket
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "CDS_AUTH": "off",
        "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db",
    }
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "cds_service", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        lines: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(json.loads(line))
            if lines[-1].get("msg") == "serving":
                break
        serving = [entry for entry in lines if entry.get("msg") == "serving"]
        assert serving, lines
        # No template whose arguments the PHI-safe formatter dropped ("Uvicorn running on %s").
        assert not [entry for entry in lines if "%" in str(entry.get("msg"))], lines
        assert serving[0]["address"] == f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


def test_explain_tells_the_story_of_the_seed_case() -> None:
    seed = REPO / "fixtures" / "glucocorticoid-safety" / "seed-dermatomyositis" / "request.json"
    result = run("explain", str(seed), "--now", "2026-11-24T10:00:00+04:00")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "prednisone 2025-12-01 to 2025-12-14 (oral): 60 mg/day prednisone-equivalent" in text
    assert ">= 20 mg/day: 92 days in all, longest run 56 days" in text
    assert "gc-bone-health (bone-health): card [warning]" in text
    assert "gc-unreadable-entry (record-quality): silent" in text
    data = json.loads(
        run("explain", str(seed), "--now", "2026-11-24T10:00:00+04:00", "--format", "json").stdout
    )
    assert data["exposure"]["long_term"] is True
    assert "MedicationRequest/mr-mtx-1" in data["facts"]["immunosuppressant_drugs"]
    assert {r["outcome"] for r in data["rules"]} >= {"card"}


def test_explain_refuses_a_file_that_is_not_a_request(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    result = run("explain", str(bad))
    assert result.returncode == 2
    assert "not a CDS Hooks request" in result.stderr


def test_serve_refuses_settings_that_must_not_serve_in_one_line(tmp_path: Path) -> None:
    """Before anything starts (no migration, no port): a repository placeholder as the
    patient-key secret beside real callers, a missing or unusable clients file."""
    bad_json = tmp_path / "clients.json"
    bad_json.write_text('{"clients": [{"iss": "https://ehr.example", "jwks": {"keys": []}}]}')
    base = {"CDS_AUTH": "required", "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/never.db"}
    cases = [
        ({"CDS_PATIENT_KEY_SECRET": "dev-only-change-me"}, "placeholder"),
        ({"CDS_PATIENT_KEY_SECRET": "CHANGE-ME-to-32-random-bytes"}, "placeholder"),
        ({"CDS_PATIENT_KEY_SECRET": "a-real-secret-of-our-own-0123456789"}, "CDS_CLIENTS_FILE"),
        (
            {
                "CDS_PATIENT_KEY_SECRET": "a-real-secret-of-our-own-0123456789",
                "CDS_CLIENTS_FILE": str(bad_json),
            },
            "CDS_CLIENTS_FILE: clients[0].jwks: expected",
        ),
    ]
    for env, says in cases:
        result = run("serve", "--port", "1", env={**base, **env})
        assert result.returncode == 2, (env, result.stderr)
        assert result.stderr.startswith("error: "), result.stderr
        assert says in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "never.db").exists()


def test_empty_optional_settings_mean_unset(monkeypatch: object) -> None:
    """`CDS_REDIS_URL=` as templates leave it: unset, not a crash or an address."""
    import pytest

    from cds_service.settings import Settings

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    for name in ("CDS_REDIS_URL", "CDS_CLIENTS_FILE", "CDS_METRICS_TOKEN", "CDS_PUBLIC_URL"):
        monkeypatch.setenv(name, "")
    settings = Settings()
    assert settings.redis_url is None
    assert settings.clients_file is None
    assert settings.metrics_token is None
    assert settings.public_url is None
