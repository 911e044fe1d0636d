"""Engines for sqlite:/// and postgresql+psycopg:// URLs, and the Alembic upgrade."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from cds_service.store.base import StoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

SQLITE_BUSY_TIMEOUT_S = 30.0
_WAL_ATTEMPTS = 250
READ_ONLY = "cds_read_only"  # execution option: a plain deferred BEGIN on SQLite


def database_url(url: str) -> URL:
    """Parse ``url``; a bare ``postgresql://`` means psycopg 3. The error never echoes the URL
    (it may hold a password)."""
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise ValueError("database URL cannot be parsed") from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError("database URL must be sqlite:/// or postgresql+psycopg://")
    return parsed


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # pysqlite's own implicit BEGIN is deferred and skips DDL; we emit BEGIN ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    # WAL: readers never block the writer. It persists in the file, so this runs once per new
    # database; switching can fail with "locked" without calling the busy handler when other
    # connections are opening the same new file, hence the retry.
    (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
    for attempt in range(_WAL_ATTEMPTS):
        if str(mode).lower() in ("wal", "memory"):
            break
        try:
            (mode,) = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
        except sqlite3.OperationalError:
            if attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.02)
    # synchronous=NORMAL is durable across a process crash (not a power cut) and keeps a
    # commit well under a millisecond in WAL mode.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    # Writers take the write lock up front: a deferred transaction that reads and then writes
    # fails at once with "database is locked" under concurrency instead of waiting
    # (https://www.sqlite.org/lang_transaction.html, "BEGIN IMMEDIATE").
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_store_engine(url: str) -> Engine:
    """An Engine for ``url`` set up for concurrent use from threads.

    SQLite: the parent directory of the file is created; WAL, a busy timeout and
    ``BEGIN IMMEDIATE`` for writes. PostgreSQL: pre-ping so a restarted server is survived.
    Statement parameters are never put in exception messages.
    """
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            parsed,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return sa.create_engine(
        parsed,
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=8,
        max_overflow=16,
        connect_args={"connect_timeout": 5},
    )


# Any constant works; it only has to be the same in every process running migrate().
_MIGRATE_LOCK_ID = 0x0CD5_5107


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the schema at ``url`` to ``revision`` (the newest by default; the tests upgrade
    from an older one); a no-op when it is current.

    Safe to run from several processes at once (an advisory lock on PostgreSQL, the write lock
    on SQLite) and independent of the working directory. Raises StoreError when the database
    fails, and alembic.util.CommandError when it holds a revision this code does not know.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    engine = create_store_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATE_LOCK_ID)))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        raise StoreError(f"schema migration failed: {type(exc).__name__}") from exc
    finally:
        engine.dispose()
