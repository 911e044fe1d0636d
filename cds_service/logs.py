"""PHI-safe structured JSON logging: constant messages plus an allow-list of fields."""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any

import orjson

# Only these ``extra`` keys reach a log line. Anything else (ids, URLs, bodies, tokens) is dropped.
SAFE_FIELDS = frozenset(
    {
        "service_id",
        "hook",
        "hook_instance",
        "rule_id",
        "rule_version",
        "card_count",
        "route",
        "method",
        "status",
        "duration_ms",
        "fhir_resource_type",
        "fhir_status",
        "error_code",
        "error_type",
        "prefetch_key",
        "prefetch_keys_provided",
        "prefetch_keys_fetched",
        "prefetch_keys_incomplete",
        "prefetch_keys_missing",
        "skipped_count",
        "resource_type",
        "reason",
        "iss",
        "jti",
        "count",
        "topic",
        "outcome",
        "component",
        "address",  # the service's own listening address (startup line)
        "workers",
    }
)


class SafeJSONFormatter(logging.Formatter):
    """Formats records as one JSON object per line without message arguments or exception text.

    ``record.msg`` is written as is (the template), so ``%s`` arguments never leak. Exceptions are
    reduced to their type and the ``file:line function`` frames: pydantic and httpx messages can
    echo input values.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": str(record.msg),
        }
        for key in SAFE_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            entry["exc_type"] = exc_type.__name__
            entry["exc_frames"] = [
                f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}"
                for frame in traceback.extract_tb(tb)
            ][-8:]
        return orjson.dumps(entry, default=str).decode()


def quiet_noisy_loggers() -> None:
    """httpx logs every request URL (which holds patient ids) at INFO: keep it at WARNING.
    uvicorn's and alembic's INFO lines are templates whose arguments this formatter drops
    ("Uvicorn running on %s://%s:%d"): the service logs its own `serving` line instead."""
    for noisy in ("httpx", "httpcore", "uvicorn.access", "uvicorn.error", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def configure_logging(level: str = "INFO") -> None:
    """Send every log record through the PHI-safe formatter on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeJSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_noisy_loggers()
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
