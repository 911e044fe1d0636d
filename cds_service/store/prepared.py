"""The reads of every hook call, compiled once and run on the DB-API cursor.

A new patient's first hook call reads its snoozes (two SELECTs on indexed tables, and a third
for order-sign's repeat check). Through ``Connection.execute`` each read cost about 150 µs of
CPU, nearly all of it SQLAlchemy's per-execution work (compiled-cache lookup, parameter and
result bookkeeping), against about 15 µs for the database itself: some 10% of a whole seed
call. A :class:`PreparedRead` keeps what SQLAlchemy gives (the SQL, compiled from the Core
statement for the engine's dialect, and each value's conversion in and out from the column
types, ``UTCDateTime`` included) and skips the rest: the statement is compiled once, the
bound values are converted by the types' own processors, and the rows come straight from the
driver's cursor. ``tests/test_store_prepared.py`` checks that it returns exactly what
``Connection.execute`` returns, on SQLite and PostgreSQL.

Only plain SELECTs with named bind parameters and no ``expanding`` (IN-list) parameter can be
prepared: an IN list is rendered per execution by SQLAlchemy, which is the work skipped here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from cds_service.store.base import StoreError

__all__ = ["PreparedRead"]

Processor = Callable[[Any], Any] | None
_GIVEN = object()  # a parameter whose value each call gives


class PreparedRead:
    """``statement`` compiled for ``engine``'s dialect, run with :meth:`rows`."""

    def __init__(self, statement: sa.Select[Any], engine: sa.Engine) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        binds = compiled.binds
        if any(bind.expanding for bind in binds.values()):
            raise ValueError("an IN-list (expanding) parameter is rendered per call: not prepared")
        self._sql = compiled.string
        self._positional = compiled.positional
        names = compiled.positiontup if compiled.positional else list(binds)
        # Each parameter in the driver's order (a name may repeat when positional): its name,
        # the value fixed in the statement (a literal such as outcome == "overridden"; _GIVEN
        # when the caller gives it) and its type's conversion.
        self._params: tuple[tuple[str, Any, Processor], ...] = tuple(
            (
                name,
                _GIVEN if binds[name].required else binds[name].value,
                binds[name].type.dialect_impl(dialect).bind_processor(dialect),
            )
            for name in names or ()
        )
        # Result conversions depend on the type the driver reports for each column (PostgreSQL
        # numerics): found from the cursor's description, kept per description.
        self._columns = tuple(
            column.type.dialect_impl(dialect) for column in statement.selected_columns
        )
        self._results: dict[tuple[Any, ...], tuple[Processor, ...]] = {}
        self._dialect = dialect
        self._driver_error: type[Exception] = dialect.loaded_dbapi.Error
        self._engine = engine

    def rows(self, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The result rows for the caller's ``values`` (every required parameter by name), each
        value converted as ``Connection.execute`` converts it. A database failure raises
        :class:`StoreError`, as every store method does."""
        converted = [
            (name, value if process is None else process(value))
            for name, fixed, process in self._params
            for value in (values[name] if fixed is _GIVEN else fixed,)
        ]
        args = tuple(v for _, v in converted) if self._positional else dict(converted)
        try:
            with self._engine.connect() as connection:
                cursor = connection.connection.cursor()
                try:
                    cursor.execute(self._sql, args)
                    fetched = cursor.fetchall()
                    results = self._result_processors(cursor.description)
                finally:
                    cursor.close()
        except (sa.exc.SQLAlchemyError, self._driver_error) as exc:
            raise StoreError(f"feedback store failed: {type(exc).__name__}") from exc
        if not any(results):
            return [tuple(row) for row in fetched]
        return [
            tuple(v if p is None else p(v) for v, p in zip(row, results, strict=True))
            for row in fetched
        ]

    def _result_processors(self, description: Sequence[Sequence[Any]]) -> tuple[Processor, ...]:
        """Each column's conversion of what the driver returns, for the type codes it reports."""
        codes = tuple(column[1] for column in description)
        found = self._results.get(codes)
        if found is None:
            found = self._results[codes] = tuple(
                impl.result_processor(self._dialect, code)
                for impl, code in zip(self._columns, codes, strict=True)
            )
        return found
