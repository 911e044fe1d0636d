"""store/prepared.py: a read compiled once and run on the driver returns exactly what
``Connection.execute`` returns, on SQLite and PostgreSQL, and fails as the store fails."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from cds_service.store.base import StoreError
from cds_service.store.connect import READ_ONLY, create_store_engine
from cds_service.store.prepared import PreparedRead
from cds_service.store.sql import _RECENT_CARDS, _SILENCED_SUGGESTIONS, _SILENCED_TOPICS
from cds_service.store.tables import issued_card
from tests.db import db_url, pg_database, pg_url, store  # noqa: F401 - fixtures

metadata = sa.MetaData()
things = sa.Table(
    "prepared_things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50)),
    sa.Column("kind", sa.String(10)),
    sa.Column("seen_at", issued_card.c.issued_at.type),  # UTCDateTime: converted in and out
    sa.Column("score", sa.Float, nullable=True),
)
T0 = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:  # noqa: F811 - the fixture
    engine = create_store_engine(db_url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            things.insert(),
            [
                {
                    "id": n,
                    "name": f"thing {n}",
                    "kind": "odd" if n % 2 else "even",
                    "seen_at": T0 + timedelta(hours=n),
                    "score": None if n % 3 == 0 else n / 4,
                }
                for n in range(1, 11)
            ],
        )
    try:
        yield engine.execution_options(**{READ_ONLY: True})
    finally:
        metadata.drop_all(engine)
        engine.dispose()


STATEMENTS: dict[str, tuple[sa.Select[Any], dict[str, Any]]] = {
    # a literal fixed in the statement, a given value, a datetime in and out
    "literal-and-datetime": (
        sa.select(things.c.name, things.c.seen_at, things.c.score)
        .where(things.c.kind == "odd", things.c.seen_at > sa.bindparam("since"))
        .order_by(things.c.id),
        {"since": T0 + timedelta(hours=2)},
    ),
    # a given parameter used twice, an aware datetime in another zone
    "repeated-parameter": (
        sa.select(things.c.id)
        .where(
            sa.or_(
                things.c.name == sa.bindparam("name"),
                things.c.kind == sa.bindparam("name"),
            ),
            things.c.seen_at <= sa.bindparam("until"),
        )
        .order_by(things.c.id),
        {
            "name": "even",
            "until": (T0 + timedelta(hours=6)).astimezone(timezone(timedelta(hours=-5))),
        },
    ),
    # an aggregate of a converted column, grouped
    "aggregate": (
        sa.select(things.c.kind, sa.func.max(things.c.seen_at), sa.func.count())
        .group_by(things.c.kind)
        .order_by(things.c.kind),
        {},
    ),
    "no-rows": (
        sa.select(things.c.name).where(things.c.seen_at > sa.bindparam("since")),
        {"since": T0 + timedelta(days=30)},
    ),
}


@pytest.mark.parametrize("case", STATEMENTS)
def test_a_prepared_read_returns_what_execute_returns(engine: sa.Engine, case: str) -> None:
    statement, values = STATEMENTS[case]
    with engine.connect() as conn:
        expected = [tuple(row) for row in conn.execute(statement, values)]
    got = PreparedRead(statement, engine).rows(values)
    assert got == expected
    assert [[type(v) for v in row] for row in got] == [[type(v) for v in row] for row in expected]
    if case == "literal-and-datetime":
        assert got
        assert all(row[1].tzinfo is UTC for row in got)  # aware UTC out, as the store reads


@pytest.mark.parametrize(
    "statement", [_SILENCED_TOPICS, _SILENCED_SUGGESTIONS, _RECENT_CARDS], ids=str
)
def test_the_store_reads_of_every_hook_call_can_be_prepared(
    engine: sa.Engine, statement: sa.Select[Any]
) -> None:
    PreparedRead(statement, engine)  # no IN list, named parameters only


def test_an_in_list_cannot_be_prepared(engine: sa.Engine) -> None:
    statement = sa.select(things.c.id).where(
        things.c.kind.in_(sa.bindparam("kinds", expanding=True))
    )
    with pytest.raises(ValueError, match="IN-list"):
        PreparedRead(statement, engine)


def test_a_missing_value_is_a_programming_error(engine: sa.Engine) -> None:
    statement, _ = STATEMENTS["no-rows"]
    with pytest.raises(KeyError):
        PreparedRead(statement, engine).rows({})


def test_a_failing_database_is_a_store_error(engine: sa.Engine) -> None:
    read = PreparedRead(STATEMENTS["aggregate"][0], engine)
    metadata.drop_all(engine)  # the table is gone: the driver's own error
    with pytest.raises(StoreError, match="feedback store failed") as raised:
        read.rows({})
    assert "prepared_things" not in str(raised.value)  # type name only, no SQL or values
    metadata.create_all(engine)  # for the fixture's teardown
