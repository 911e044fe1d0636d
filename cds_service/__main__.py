"""Command line: ``cds-service serve | evaluate | migrate | report``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from cds_service.logs import configure_logging
from cds_service.settings import Settings, get_settings, is_placeholder_secret
from cds_service.store.base import StoreError

if TYPE_CHECKING:
    from cds_service.catalog import Service
    from cds_service.cdshooks import CDSRequest


def _startup_problem(settings: Settings) -> str | None:
    """A setting that must stop `serve` before anything starts, said in one line: the preview
    beside authenticated hooks, a repository placeholder as the patient-key secret, a missing or
    unusable clients file. None when the settings can serve."""
    from cds_service.api.trusted_clients import ClientsFileError, load_clients
    from cds_service.main import PREVIEW_NEEDS_AUTH_OFF

    if settings.auth == "off":
        return None
    if settings.preview:
        return PREVIEW_NEEDS_AUTH_OFF
    if is_placeholder_secret(settings.patient_key_secret.get_secret_value()):
        return (
            "CDS_PATIENT_KEY_SECRET is a placeholder from this repository: set a secret of your "
            f"own (e.g. 32 random bytes) before serving with CDS_AUTH={settings.auth}"
        )
    if settings.clients_file is None:
        return f"CDS_AUTH={settings.auth} needs CDS_CLIENTS_FILE (the trusted EHR clients)"
    try:
        load_clients(settings.clients_file)
    except ClientsFileError as error:  # names the file and the entry, never a key
        return f"CDS_CLIENTS_FILE: {error}"
    return None


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    problem = _startup_problem(settings)
    if problem is not None:
        return _fail(problem)
    workers = args.workers or settings.workers
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker keeps its own counters; /metrics merges them from this directory.
        from cds_service.metrics import prepare_multiprocess_dir

        directory = Path(tempfile.gettempdir()) / f"cds-metrics-{os.getpid()}"
        prepare_multiprocess_dir(directory)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    # One line with the address (uvicorn's own startup line is a template: the JSON formatter
    # never fills in arguments, so no value can leak through it).
    logging.getLogger("cds_service").info(
        "serving", extra={"address": f"http://{args.host}:{args.port}", "workers": workers}
    )
    if settings.preview:
        logging.getLogger("cds_service").info(
            "try-it page", extra={"address": f"http://{args.host}:{args.port}/preview"}
        )
    uvicorn.run(
        "cds_service.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=20,
    )
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)  # noqa: T201 - CLI output
    return 2


def _load_call(
    args: argparse.Namespace, settings: Settings
) -> tuple[CDSRequest, Service, datetime] | int:
    """The request file, its service and the evaluation time; an exit code on a bad input."""
    from cds_service.catalog import load_catalog
    from cds_service.cdshooks import CDSRequest
    from cds_service.topics import KINDS

    path = Path(args.request)
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        return _fail(f"cannot read {path}")
    except json.JSONDecodeError:
        return _fail(f"{path} is not valid JSON")
    try:
        request = CDSRequest.model_validate(raw)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
        return _fail("not a CDS Hooks request; invalid or missing fields: " + ", ".join(fields))
    catalog = load_catalog(settings.hooks_dir, KINDS)
    if args.service:
        service = catalog.find(args.service)
        if service is None:
            return _fail(
                f"unknown service {args.service!r}; known: {', '.join(s.id for s in catalog.services)}"
            )
    else:
        service = next((s for s in catalog.services if request.hook in s.definition.hooks), None)
        if service is None:
            return _fail(f"no service handles hook {request.hook!r}")
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(tz=UTC)
    if now.tzinfo is None:
        return _fail("--now needs a UTC offset, e.g. 2026-11-24T10:00:00+00:00")
    return request, service, now


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    """Run one hook call offline (no FHIR fetches) and print the CDS Hooks response."""
    from cds_service.decide import DecideOptions
    from cds_service.engine import Engine, HookCall
    from cds_service.errors import CDSError

    loaded = _load_call(args, settings)
    if isinstance(loaded, int):
        return loaded
    request, service, now = loaded
    try:
        engine = Engine(decide=DecideOptions(lookback_days=settings.lookback_days, strict=True))
        evaluation = asyncio.run(engine.evaluate(HookCall.of(request, service, now)))
    except CDSError as error:
        return _fail(f"{error.status} {error.code}: {error.detail}")
    print(json.dumps(evaluation.response, indent=2))  # noqa: T201 - CLI output
    return 0


def _explain(args: argparse.Namespace, settings: Settings) -> int:
    """The story of one hook call offline: courses, exposure, facts, each rule's outcome."""
    from cds_service.decide import DecideOptions
    from cds_service.engine import HookCall
    from cds_service.errors import CDSError
    from cds_service.explain import explain, render_json, render_text
    from cds_service.gather import GatherOptions

    loaded = _load_call(args, settings)
    if isinstance(loaded, int):
        return loaded
    request, service, now = loaded
    try:
        explanation = asyncio.run(
            explain(
                HookCall.of(request, service, now),
                GatherOptions(),
                DecideOptions(lookback_days=settings.lookback_days),
            )
        )
    except CDSError as error:
        return _fail(f"{error.status} {error.code}: {error.detail}")
    if args.format == "json":
        print(json.dumps(render_json(explanation), indent=2))  # noqa: T201 - CLI output
    else:
        print(render_text(explanation))  # noqa: T201 - CLI output
    return 0


def _migrate(_: argparse.Namespace, settings: Settings) -> int:
    from cds_service.store.connect import migrate

    migrate(settings.database_url.get_secret_value())
    print("database schema is up to date")  # noqa: T201
    return 0


def _purge(_: argparse.Namespace, settings: Settings) -> int:
    from cds_service.store.connect import migrate
    from cds_service.store.sql import SQLFeedbackStore

    url = settings.database_url.get_secret_value()
    migrate(url)
    store = SQLFeedbackStore(url)
    try:
        cutoff = datetime.now(tz=UTC) - timedelta(days=settings.retention_days)
        print(f"purged {store.purge(cutoff)} records older than {settings.retention_days} days")  # noqa: T201
    finally:
        store.close()
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from cds_service.store.connect import migrate
    from cds_service.store.report import render_report
    from cds_service.store.sql import SQLFeedbackStore

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            return _fail("--since must be an ISO date, e.g. 2026-01-01")
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    url = settings.database_url.get_secret_value()
    migrate(url)
    store = SQLFeedbackStore(url)
    try:
        print(render_report(store.stats(since), args.format))  # noqa: T201
    finally:
        store.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cds-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="uvicorn worker processes (default CDS_WORKERS or 1)",
    )
    serve.set_defaults(func=_serve)
    ev = sub.add_parser("evaluate", help="run one hook call offline and print the response JSON")
    ev.add_argument("request", help="CDS Hooks request JSON file")
    ev.add_argument("--service", help="service id (default: the service for the request's hook)")
    ev.add_argument("--now", help="evaluation time, ISO 8601 with offset (default: now)")
    ev.set_defaults(func=_evaluate)
    ex = sub.add_parser("explain", help="explain one hook call offline: courses, facts, rules")
    ex.add_argument("request", help="a CDS Hooks request JSON file")
    ex.add_argument("--now", help="evaluation time (ISO 8601 with offset); default now")
    ex.add_argument("--service", help="service id (default: the one serving the hook)")
    ex.add_argument("--format", choices=("text", "json"), default="text")
    ex.set_defaults(func=_explain)
    mig = sub.add_parser("migrate", help="create or upgrade the database schema")
    mig.set_defaults(func=_migrate)
    purge = sub.add_parser("purge", help="delete cards and feedback older than CDS_RETENTION_DAYS")
    purge.set_defaults(func=_purge)
    rep = sub.add_parser("report", help="card and feedback statistics")
    rep.add_argument("--format", choices=["json", "table"], default="table")
    rep.add_argument("--since", help="only cards issued on or after this date")
    rep.set_defaults(func=_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging("WARNING" if args.command != "serve" else settings.log_level)
    try:
        result: int = args.func(args, settings)
    except StoreError as exc:  # migrate, purge, report: the database did not answer
        print(  # noqa: T201 - CLI output; the message names no URL or credentials
            f"error: the database could not be used ({exc}); check CDS_DATABASE_URL and that "
            "the server is running",
            file=sys.stderr,
        )
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
