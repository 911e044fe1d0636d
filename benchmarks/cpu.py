"""CPU time per hook call, in process: repeatable under load, unlike wall-clock req/s.

The service app (``create_app``, as ``cds-service serve`` builds it: JSON logs at INFO to a
file, SQLite in a temporary directory, no auth) is called through ASGI without a socket; each
call is timed with ``time.process_time`` (CPU seconds of this process, so other jobs on the
machine barely move it), over many calls, and the table gives the minimum of ``--rounds``
rounds in ms per call. Each body is sent two ways, as in ``benchmarks.run``: ``different``
(another chart every call: new patient and resource ids) and ``same``. ``--profile NAME``
prints a cProfile summary of the ``different`` calls of that body instead.

    python -m benchmarks.cpu [--only seed,slice-100] [--calls 200] [--rounds 3] [--profile seed]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from benchmarks.bodies import SERVICE_ID, Body, build_bodies
from benchmarks.charts import ChartTemplate

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
# Calls per round by body: enough for a stable mean, few enough for a 2-core machine.
DEFAULT_CALLS = {"seed": 400, "slice-100": 200, "wendell-1116": 40, "slice-1000": 40}


async def post(app: ASGIApp, body: bytes) -> int:
    """One POST to the hook endpoint through ASGI; returns the status code."""
    sent = False
    status = 0

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/cds-services/{SERVICE_ID}",
        "raw_path": f"/cds-services/{SERVICE_ID}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    return status


async def _rounds(app: ASGIApp, bodies: list[bytes], rounds: int) -> float:
    """Minimum over ``rounds`` of the CPU ms per call, each round posting every body once."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for data in bodies:
            status = await post(app, data)
            if status != 200:
                raise RuntimeError(f"HTTP {status}")
        best = min(best, (time.process_time() - start) * 1000 / len(bodies))
    return best


async def measure(args: argparse.Namespace, bodies: list[Body]) -> None:
    from pydantic import SecretStr

    from cds_service.logs import configure_logging
    from cds_service.main import create_app
    from cds_service.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="cds-cpu-"))
    log_file = (tmp / "service.log").open("a", encoding="utf-8")
    configure_logging("INFO")
    for handler in logging.getLogger().handlers:  # as in production: JSON lines, to a file
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(log_file)
    os.environ.setdefault("CDS_AUTH", "off")
    settings = Settings(database_url=SecretStr(f"sqlite:///{tmp}/cds.db"))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        print("| body | resources | chart per call | CPU ms / call | µs / resource |")
        print("|---|---:|---|---:|---:|")
        for body in bodies:
            calls = args.calls or DEFAULT_CALLS.get(body.name, 10)
            template = ChartTemplate(body.data, salt=body.name)
            charts = [template.chart(n) for n in range(calls * (args.rounds + 1))]
            await _rounds(app, charts[:calls], 1)  # warm-up: code paths, memos of codes
            fresh = charts[calls:]
            if args.profile == body.name:
                profile = cProfile.Profile()
                profile.enable()
                await _rounds(app, [body.data] * calls if args.same else fresh[:calls], 1)
                profile.disable()
                out = io.StringIO()
                stats = pstats.Stats(profile, stream=out).sort_stats(args.sort)
                stats.print_stats(45)
                if os.environ.get("CPU_CALLERS"):
                    stats.print_callers(os.environ["CPU_CALLERS"])
                print(out.getvalue())
                continue
            different = min(
                [
                    await _rounds(app, fresh[r * calls : (r + 1) * calls], 1)
                    for r in range(args.rounds)
                ]
            )
            same = await _rounds(app, [body.data] * calls, args.rounds)
            for mode, ms in (("different", different), ("same", same)):
                per = ms * 1000 / body.resources
                print(
                    f"| {body.name} | {body.resources:,} | {mode} | {ms:.3f} | {per:.1f} |",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="seed,slice-100,slice-1000,ebony-5712")
    parser.add_argument("--calls", type=int, default=0, help="calls per round (default by body)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default="", help="a body name: cProfile its calls")
    parser.add_argument("--same", action="store_true", help="profile the same body each call")
    parser.add_argument("--sort", default="cumulative", help="cProfile sort key (tottime...)")
    args = parser.parse_args()
    bodies, notes = build_bodies(set(args.only.split(",")))
    for note in notes:
        print(note)
    asyncio.run(measure(args, bodies))


if __name__ == "__main__":
    main()
