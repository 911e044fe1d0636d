"""Render analytics rows (store.base.StatRow) as JSON or a plain-text table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Literal

from cds_service.store.base import StatRow

_COLUMNS = (
    "service",
    "rule",
    "topic",
    "issued",
    "accepted",
    "overridden",
    "no feedback",
    "acceptance",
    "override reasons",
)


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1%}"


def _reasons(row: StatRow) -> str:
    ranked = sorted(row.override_reasons.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{code}={count}" for code, count in ranked) or "-"


def _client(row: StatRow) -> str:
    if not row.client_iss:
        return "anonymous"
    return f"{row.client_iss} tenant={row.client_tenant}" if row.client_tenant else row.client_iss


def _printable(cell: str) -> str:
    """A cell as text for a terminal: control characters (escape sequences, newlines) from
    stored values such as a client's issuer become ``?``."""
    return "".join(ch if ch.isprintable() else "?" for ch in cell)


def render_report(rows: Sequence[StatRow], fmt: Literal["json", "table"]) -> str:
    """``json``: a list of objects with the StatRow field names (rate as a float or null).
    ``table``: aligned columns with a header, one line per row, the rate as a percentage, and
    a last ``client`` column when any row is a verified client's (docs/tenancy.md).
    The result has no trailing newline. Raises ValueError on another ``fmt``."""
    if fmt == "json":
        return json.dumps(
            [{**asdict(row), "override_reasons": dict(row.override_reasons)} for row in rows],
            indent=2,
        )
    if fmt != "table":
        raise ValueError("report format must be 'json' or 'table'")
    with_client = any(row.client_iss for row in rows)
    header = (*_COLUMNS, "client") if with_client else _COLUMNS
    lines = [header] + [
        (
            row.service_id,
            row.rule_id,
            row.topic,
            str(row.issued),
            str(row.accepted),
            str(row.overridden),
            str(row.no_feedback),
            _rate(row.acceptance_rate),
            _reasons(row),
            *((_client(row),) if with_client else ()),
        )
        for row in rows
    ]
    lines = [tuple(_printable(cell) for cell in line) for line in lines]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = range(3, 8)  # right-aligned columns

    def render(line: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join(render(line) for line in lines)
