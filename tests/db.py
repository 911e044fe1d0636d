"""Database fixtures: SQLite in tmp_path, and the PostgreSQL server on 127.0.0.1:5432.

Import the fixtures you use into a test module (``from tests.db import db_url, ...``).
``db_url`` runs a test once per backend. PostgreSQL cases are skipped with the reason when the
server is unreachable, and fail instead when ``CI=true``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from cds_service.store.sql import SQLFeedbackStore, migrate

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


def _pg_connect(dbname: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, connect_timeout=3, autocommit=True
    )


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A new, uniquely named database for this test session, dropped at the end; its name."""
    try:
        admin = _pg_connect("postgres")
    except psycopg.OperationalError as exc:
        reason = (
            f"PostgreSQL unreachable at {PG_HOST}:{PG_PORT} as user {PG_USER} "
            f"({type(exc).__name__}); start it to run the PostgreSQL cases"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}. CI=true: PostgreSQL cases must not be skipped")
        pytest.skip(reason)
    name = f"cds_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with _pg_connect("postgres") as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """SQLAlchemy URL of an empty schema of its own in the session database (fast isolation:
    no CREATE DATABASE per test). The schema is dropped after the test."""
    schema = f"t_{secrets.token_hex(6)}"
    with _pg_connect(pg_database) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield (
            f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{pg_database}"
            f"?options=-csearch_path%3D{schema}"
        )
    finally:
        with _pg_connect(pg_database) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """An empty, unmigrated database on each backend (the SQLite file's directory is missing too,
    as ``./var/`` is on a fresh checkout)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/var/cds.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[SQLFeedbackStore]:
    """A migrated store on ``db_url``, closed after the test."""
    migrate(db_url)
    feedback_store = SQLFeedbackStore(db_url)
    try:
        yield feedback_store
    finally:
        feedback_store.close()
