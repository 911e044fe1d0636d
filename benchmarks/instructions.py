"""Instructions per hook call, counted by valgrind: the same number on a busy or a quiet machine.

Wall-clock req/s and even CPU time move with whatever else the machine runs (two cores shared
with wrk, other jobs, the caches they evict). ``valgrind --tool=callgrind`` counts the
instructions the interpreter executes, which do not depend on that: two runs of the same code
and inputs agree to a few parts in ten thousand. This is the measure for a before/after
comparison of a change of a few percent.

For each body, the app (as in ``benchmarks.cpu``: JSON logs at INFO to a file, SQLite, no
auth; issued cards written every ``FLUSH_EVERY`` calls) is started under callgrind twice: once with ``WARMUP`` calls only, once with ``WARMUP +
--calls`` calls, each call a new chart (``different``) or the one body (``same``). The
difference of the two totals over ``--calls`` is the cost of one call, start-up and warm-up
excluded. Valgrind runs the interpreter about 50 times slower: a few hundred seed calls take
about a minute.

    python -m benchmarks.instructions [--only seed,slice-100] [--calls 100] [--modes different]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.bodies import ROOT, build_bodies
from benchmarks.charts import ChartTemplate
from benchmarks.cpu import post

WARMUP = 30  # calls before the counted ones: code paths, memos of codes, the store's tables
# Issued cards are written in one batch every FLUSH_EVERY calls, as a busy worker's write-behind
# task does every 0.2 s. The task itself is slowed to a crawl: under valgrind 0.2 s is a couple
# of calls, and batches that follow the wall clock would make the count vary by several percent.
FLUSH_EVERY = 20
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


async def drive(name: str, mode: str, calls: int) -> None:
    """Inside valgrind: start the app and post ``calls`` bodies of ``name`` (``mode``)."""
    from pydantic import SecretStr

    from cds_service.logs import configure_logging
    from cds_service.main import create_app
    from cds_service.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="cds-instructions-"))
    (body,), _ = build_bodies({name})
    template = ChartTemplate(body.data, salt=body.name)
    bodies = [template.chart(n) if mode == "different" else body.data for n in range(calls)]
    configure_logging("INFO")
    with (tmp / "service.log").open("a", encoding="utf-8") as log_file:
        for handler in logging.getLogger().handlers:  # as in production: JSON lines, to a file
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(log_file)
        os.environ.setdefault("CDS_AUTH", "off")
        settings = Settings(
            database_url=SecretStr(f"sqlite:///{tmp}/cds.db"), card_flush_interval_s=3600.0
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            card_log = app.state.runtime.card_log
            for n, data in enumerate(bodies, start=1):
                status = await post(app, data)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}")
                if n % FLUSH_EVERY == 0:
                    await card_log.flush()
    shutil.rmtree(tmp, ignore_errors=True)


def count(name: str, mode: str, calls: int) -> int:
    """Instructions valgrind counts for a run of ``calls`` calls, start-up included."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        "--drive",
        f"{name}:{mode}:{calls}",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "0"}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"valgrind run failed ({proc.returncode}): {tail}")
    return int(found.group(1))


def per_call(name: str, mode: str, calls: int) -> float:
    """Instructions of one call: the run with ``calls`` more calls, less the warm-up run."""
    return (count(name, mode, WARMUP + calls) - count(name, mode, WARMUP)) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--only", default="seed,slice-100")
    parser.add_argument("--calls", type=int, default=100, help="counted calls per body")
    parser.add_argument("--modes", default="different", help="of different, same")
    parser.add_argument("--drive", default="", help=argparse.SUPPRESS)  # NAME:MODE:CALLS
    args = parser.parse_args()
    if args.drive:
        name, mode, calls = args.drive.split(":")
        asyncio.run(drive(name, mode, int(calls)))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    print("| body | chart per call | instructions per call (millions) |")
    print("|---|---|---:|")
    for name in args.only.split(","):
        for mode in args.modes.split(","):
            millions = per_call(name, mode, args.calls) / 1e6
            print(f"| {name} | {mode} | {millions:.2f} |", flush=True)


if __name__ == "__main__":
    main()
