"""Store pieces without a database server: patient keys, URLs, report rendering, schema drift."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cds_service.store.base import StatRow
from cds_service.store.connect import create_store_engine, database_url
from cds_service.store.patient_key import normalise_fhir_server, patient_key
from cds_service.store.report import render_report
from cds_service.store.sql import SQLFeedbackStore, migrate
from cds_service.store.tables import metadata


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://EHR.Example.org/fhir/", "https://ehr.example.org/fhir"),
        ("HTTPS://ehr.example.org:8443/R4/", "https://ehr.example.org:8443/R4"),
        ("https://ehr.example.org/fhir//", "https://ehr.example.org/fhir/"),  # one "/" only
        ("https://ehr.example.org", "https://ehr.example.org"),
        ("not a url/", "not a url"),
        (None, ""),
    ],
)
def test_normalise_fhir_server(given: str | None, expected: str):
    assert normalise_fhir_server(given) == expected


def test_patient_key_links_the_same_patient_only():
    key = patient_key("s3cret", "https://ehr.example.org/fhir", "pt-1")
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert key == patient_key("s3cret", "HTTPS://EHR.EXAMPLE.ORG/fhir/", "pt-1")
    assert key != patient_key("s3cret", "https://ehr.example.org/FHIR", "pt-1")  # path case
    assert key != patient_key("s3cret", "https://other.example.org/fhir", "pt-1")
    assert key != patient_key("s3cret", "https://ehr.example.org/fhir", "pt-2")
    assert key != patient_key("other", "https://ehr.example.org/fhir", "pt-1")
    assert "pt-1" not in key


def test_patient_key_refuses_empty_inputs():
    with pytest.raises(ValueError, match="secret"):
        patient_key("", "https://ehr.example.org", "pt-1")
    with pytest.raises(ValueError, match="patient id") as caught:
        patient_key("s3cret", "https://ehr.example.org", "")
    assert "ehr.example.org" not in str(caught.value)


def test_database_url_hides_the_password_and_defaults_to_psycopg():
    assert database_url("postgresql://u:pw@db/cds").drivername == "postgresql+psycopg"
    with pytest.raises(ValueError, match="database URL") as caught:
        database_url("mysql://u:hunter2@db/cds")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="database URL") as caught:
        database_url("::hunter2::")
    assert "hunter2" not in str(caught.value)


def test_relative_sqlite_url_and_migrate_do_not_depend_on_the_package_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    migrate("sqlite:///./var/cds.db")  # the default URL: ./var/ is created
    assert (tmp_path / "var" / "cds.db").is_file()
    store = SQLFeedbackStore("sqlite:///./var/cds.db")
    try:
        assert store.ping()
        assert store.stats(None) == []
    finally:
        store.close()


def test_migrations_match_the_tables_the_store_queries(db_url: str):
    migrate(db_url)
    engine = create_store_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
            journal = conn.exec_driver_sql("PRAGMA journal_mode") if "sqlite" in db_url else None
            assert journal is None or journal.scalar() == "wal"
    finally:
        engine.dispose()


ROWS = [
    StatRow(
        service_id="gc-order-sign",
        rule_id="gc-bone-dxa",
        topic="bone-health",
        issued=4,
        accepted=1,
        overridden=2,
        no_feedback=1,
        acceptance_rate=0.25,
        override_reasons={"patient-declined": 1, "already-done": 1},
    ),
    StatRow(
        service_id="gc-order-sign",
        rule_id="gc-infection-pjp",
        topic="infection-prevention",
        issued=0,
        accepted=0,
        overridden=0,
        no_feedback=0,
        acceptance_rate=None,
        override_reasons={},
    ),
]


def test_render_report_json():
    data = json.loads(render_report(ROWS, "json"))
    assert data[0] == {
        "service_id": "gc-order-sign",
        "rule_id": "gc-bone-dxa",
        "topic": "bone-health",
        "issued": 4,
        "accepted": 1,
        "overridden": 2,
        "no_feedback": 1,
        "acceptance_rate": 0.25,
        "override_reasons": {"patient-declined": 1, "already-done": 1},
        "client_iss": "",
        "client_tenant": "",
    }
    assert data[1]["acceptance_rate"] is None
    assert json.loads(render_report([], "json")) == []


def test_render_report_table():
    lines = render_report(ROWS, "table").splitlines()
    assert lines[0].startswith("service        rule              topic")
    assert "25.0%" in lines[1]
    assert lines[1].endswith("already-done=1, patient-declined=1")
    assert lines[2].endswith("-")  # no override reasons
    assert " n/a " in lines[2]  # no feedback yet: the rate is not 0%
    assert len(lines) == 3
    assert render_report([], "table").startswith("service")


def test_render_report_table_names_verified_clients():
    clients = [
        replace(ROWS[0], client_iss="https://ehr-a.example/fhir", client_tenant="east"),
        ROWS[1],
    ]
    lines = render_report(clients, "table").splitlines()
    assert lines[0].endswith("override reasons                    client")
    assert lines[1].endswith("  https://ehr-a.example/fhir tenant=east")
    assert lines[2].endswith("  anonymous")


def test_render_report_refuses_other_formats():
    with pytest.raises(ValueError, match="format"):
        render_report(ROWS, "csv")  # type: ignore[arg-type]


def test_store_tables_use_plain_core_types():
    # Every column type is something both dialects render (no JSON/ARRAY surprises).
    for table in metadata.sorted_tables:
        for column in table.columns:
            assert isinstance(
                column.type,
                sa.String | sa.Integer | sa.Boolean | sa.Text | sa.types.TypeDecorator,
            ), column


def test_the_report_table_prints_no_control_characters() -> None:
    """A stored value (a client's issuer, a reason from before the feedback check) cannot
    colour the operator's terminal or forge a row."""
    row = replace(
        ROWS[0],
        override_reasons={"\x1b[31mred\nforged": 1},
        client_iss="https://ehr.example/\x07",
    )
    table = render_report([row], "table")
    assert "\x1b" not in table
    assert "\x07" not in table
    assert table.count("\n") == 1  # the header and one row
