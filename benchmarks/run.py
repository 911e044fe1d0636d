"""``make bench``: the service and the parse-only ceiling, side by side, on the same bodies.

Both run as subprocesses with one uvicorn worker on free loopback ports: the service as in
production (``cds-service serve``, JSON logs on), the ceiling under plain ``uvicorn``. For each
body (seed case; 100, ~660, 1,000 and ~4,200-resource prefetch built from the Synthea bundles in
``tests/data/fhir-data``) the load generator (``wrk`` if installed, else an async httpx loop)
posts it for a fixed time to the ceiling, then to the service, and the table gives p50/p95/p99,
requests/s, the server's peak RSS during the run, and our p50 over the ceiling's. Each body is
sent two ways: ``different``, another chart on every call (``benchmarks.charts``: new patient
and resource ids, so no content cache can answer; the headline), and ``same``, the one body
over and over. ``--write-docs`` also writes docs/performance.md.

    python -m benchmarks.run [--duration 5] [--only seed,ebony-5712] [--modes different] [--write-docs]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import httpx

from benchmarks.bodies import ROOT, SERVICE_ID, Body, build_bodies, declared_keys
from benchmarks.charts import ChartTemplate
from benchmarks.load import (
    WRK_INSTALL_HINT,
    LoadResult,
    run_httpx,
    run_wrk,
    wrk_path,
)

DOCS = ROOT / "docs" / "performance.md"
NOTES_HEADING = "## Analysis (kept across runs)"
CEILING_APP = "benchmarks.ceiling:app"
UVICORN_FLAGS = ("--host", "127.0.0.1", "--no-access-log", "--log-level", "warning")
# The service runs as in production (`cds-service serve`: JSON logging configured, one worker).
SERVICE_COMMAND = ("cds_service", "serve", "--host", "127.0.0.1", "--workers", "1")
CEILING_COMMAND = ("uvicorn", CEILING_APP, *UVICORN_FLAGS)
# Issue 20's targets: the seed case within SEED_RATIO of the ceiling at SEED_RPS or more; the
# large records within LARGE_RATIO; RSS under RSS_MB with the 5,712-entry record.
SEED_RPS, SEED_RATIO, LARGE_RATIO, RSS_MB = 1000, 3.0, 1.5, 200
LARGE = ("slice-1000", "ebony-5712")
CURVE = ("slice-100", "wendell-1116", "slice-1000", "ebony-5712")
# How each body is sent. DIFFERENT (the headline): every call is another chart, with its own
# patient and resource ids, so no content cache (the validation cache keys on each resource's
# JSON) can answer. SAME: one body over and over, as when a chart is reopened.
DIFFERENT, SAME = "different", "same"
MODES = (DIFFERENT, SAME)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MB, from /proc/<pid>/status (None if unavailable)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


class Server:
    """One uvicorn subprocess on a free loopback port, its output in a log file."""

    def __init__(
        self, name: str, module_args: Sequence[str], env: dict[str, str], workdir: Path
    ) -> None:
        self.name = name
        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *module_args, "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> str | None:
        """Wait for ``GET /healthz`` to answer 200; returns None, or why it did not start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with code {self.proc.returncode}: {self.tail()}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/healthz", timeout=1.0).status_code == 200:
                    return None
            time.sleep(0.2)
        return f"no 200 from /healthz within {timeout:.0f} s"

    def tail(self, lines: int = 3) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace").strip()
        return " | ".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


@contextlib.contextmanager
def sample_rss(pid: int, interval: float = 0.1) -> Iterator[list[float]]:
    """Sample the RSS of ``pid`` in a thread while the block runs; yields the samples (MB)."""
    samples: list[float] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            value = rss_mb(pid)
            if value is not None:
                samples.append(value)
            stop.wait(interval)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


@dataclass
class Row:
    """One (body, target) measurement."""

    body: Body
    target: str
    mode: str = SAME
    result: LoadResult | None = None
    rss_peak_mb: float | None = None
    note: str = ""
    ratio: float | None = None


@dataclass
class Run:
    """Everything one benchmark run measured, for the console and the docs."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tool: str = ""
    duration: float = 0.0
    started: str = ""


def _connections(body: Body) -> int:
    # c=8 for small bodies, c=4 for large ones: the settings of the earlier component measurements.
    return 8 if len(body.data) < 200_000 else 4


def _load(
    url: str, body: Body, body_file: Path, seconds: float, tool: str, tmp: Path, first: int
) -> LoadResult:
    c = _connections(body)
    if tool == "wrk":
        return run_wrk(url, body_file, connections=c, seconds=seconds, workdir=tmp, first=first)
    return run_httpx(url, body_file, connections=c, seconds=seconds, first=first)


def _preflight(url: str, data: bytes) -> tuple[str | None, list[str]]:
    """POST once: (None, the cards' summaries) when the answer is 200, else (a short reason, [])."""
    try:
        response = httpx.post(
            url, content=data, headers={"Content-Type": "application/json"}, timeout=60.0
        )
    except httpx.HTTPError as error:
        return f"request failed: {type(error).__name__}", []
    if response.status_code != 200:
        return f"HTTP {response.status_code}", []
    return None, sorted(str(card.get("summary")) for card in response.json().get("cards", []))


def chart_count(body: Body, same: list[Row], args: argparse.Namespace) -> int:
    """How many different charts to make for ``body``: enough for every call, within the budget.

    The same body is the fastest case for the service (its cache answers), so its req/s bounds
    the calls a run with a different chart each time can make; the ceiling cycles through them.
    """
    budget = max(2, int(args.charts_mb) * 2**20 // len(body.data))
    service = next((r.result for r in same if r.target == "service" and r.result), None)
    if service is None:
        return budget
    per_load = _connections(body) + 1  # in flight at the end, plus wrk's check of request()
    calls = service.rps * (float(args.warmup) + float(args.duration)) * 1.25
    return min(budget, 2 + 2 * per_load + int(calls))


def write_charts(body: Body, count: int, path: Path) -> bytes:
    """Write ``count`` different charts made from ``body``, one per line; returns the first."""
    template = ChartTemplate(body.data, salt=body.name)
    with path.open("wb") as out:
        for n in range(count):
            out.write(template.chart(n) + b"\n")
    return template.chart(0)


def _measure_mode(
    servers: dict[str, Server],
    body: Body,
    mode: str,
    same: list[Row],
    args: argparse.Namespace,
    tmp: Path,
    run: Run,
) -> list[Row]:
    """Warm up and measure ``body`` sent in ``mode`` against each server; ``same``: SAME rows."""
    if mode == SAME:
        body_file, count, first_body = tmp / f"{body.name}.jsonl", 1, body.data
        body_file.write_bytes(body.data)
    else:
        body_file, count = tmp / f"{body.name}-charts.jsonl", chart_count(body, same, args)
        first_body = write_charts(body, count, body_file)
    rows: dict[str, Row] = {}
    for name, server in servers.items():
        row = rows[name] = Row(body, name, mode)
        url = f"{server.base}/cds-services/{SERVICE_ID}"
        problem, cards = _preflight(url, first_body)
        if problem is None and mode == DIFFERENT and cards != _preflight(url, body.data)[1]:
            problem = "a different chart got other cards than the original body"
        if problem is not None:
            row.note = problem
            continue
        first, warm_calls = (1 if count > 1 else 0), 0  # chart 0 went with the preflight
        if args.warmup > 0:
            warm_calls = _load(url, body, body_file, args.warmup, run.tool, tmp, first).requests
            first += warm_calls + _connections(body) + 1
        with sample_rss(server.proc.pid) as samples:
            row.result = _load(url, body, body_file, args.duration, run.tool, tmp, first)
        row.rss_peak_mb = max(samples) if samples else None
        print(f"  {body.name:>13} {mode:>9} {name:>8}: {_short(row)}", flush=True)
        if mode == DIFFERENT and name != "ceiling":
            sent = first + row.result.requests + _connections(body) + 1
            reused = max(0, sent - count)
            run.notes.append(
                f"{body.name}, {name}, a different chart per call: {count:,} charts made up front, "
                f"{row.result.requests:,} calls measured after {warm_calls:,} warm-up calls: "
                + (f"{reused:,} calls reused a chart" if reused else "no chart sent twice")
            )
    ceiling = rows.get("ceiling")
    for name, row in rows.items():
        if name != "ceiling" and ceiling and ceiling.result and row.result:
            row.ratio = row.result.p50_ms / ceiling.result.p50_ms
    return list(rows.values())


def start_servers(mode: str, args: argparse.Namespace, tmp: Path, run: Run) -> dict[str, Server]:
    """Fresh servers for the rows of one mode, so both modes' rows have the same process history."""
    env = _server_env(tmp, mode)
    commands: dict[str, tuple[Sequence[str], dict[str, str]]] = {"ceiling": (CEILING_COMMAND, env)}
    if not args.no_service:
        commands["service"] = (SERVICE_COMMAND, env)
    servers = {name: Server(f"{name}-{mode}", c, e, tmp) for name, (c, e) in commands.items()}
    for name, server in list(servers.items()):
        problem = server.wait_ready()
        if problem is not None:
            run.notes.append(f"{name} ({mode}) did not start ({problem}); not measured")
            server.stop()
            del servers[name]
    return servers


def measure(
    bodies: list[Body],
    mode: str,
    same: dict[str, list[Row]],
    args: argparse.Namespace,
    tmp: Path,
    run: Run,
) -> dict[str, list[Row]] | None:
    """Measure every body sent in ``mode`` on fresh servers, ceiling first; rows by body name.

    ``same`` holds the same-body rows already measured. None when the ceiling did not start.
    """
    servers = start_servers(mode, args, tmp, run)
    try:
        if "ceiling" not in servers:
            return None
        return {
            body.name: _measure_mode(servers, body, mode, same.get(body.name, []), args, tmp, run)
            for body in bodies
        }
    finally:
        for server in servers.values():
            server.stop()


def _short(row: Row) -> str:
    r = row.result
    if r is None:
        return row.note
    return f"{r.rps:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, {r.errors} errors"


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def results_table(run: Run) -> str:
    """The results as a Markdown table."""
    lines = [
        "| body | chart per call | resources | size | app | req/s | p50 ms | p95 ms | p99 ms | errors | peak RSS MB | p50 / ceiling |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in run.rows:
        r = row.result
        size = f"{len(row.body.data) / 1024:,.0f} KB"
        if r is None:
            cells = ["-"] * 5 + [_fmt(row.rss_peak_mb, ".0f"), row.note or "-"]
        else:
            cells = [
                f"{r.rps:,.0f}",
                f"{r.p50_ms:.2f}",
                f"{r.p95_ms:.2f}",
                f"{r.p99_ms:.2f}",
                str(r.errors),
                _fmt(row.rss_peak_mb, ".0f"),
                _fmt(row.ratio, ".2f") + ("x" if row.ratio is not None else ""),
            ]
        lines.append(
            f"| {row.body.name} | {row.mode} | {row.body.resources:,} | {size} | {row.target} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def headline(run: Run) -> str:
    """The mode whose rows are the headline: a different chart per call, when it was measured."""
    return DIFFERENT if any(row.mode == DIFFERENT for row in run.rows) else SAME


def cost_curve(run: Run, mode: str) -> str:
    """Service p50 per resource at each prefetch size (linear growth keeps it flat)."""
    lines = [
        "| body | resources | service p50 ms | ceiling p50 ms | service µs / resource | ceiling µs / resource |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    by_key = {(row.body.name, row.target): row for row in run.rows if row.mode == mode}
    for name in CURVE:
        service, ceiling = by_key.get((name, "service")), by_key.get((name, "ceiling"))
        if ceiling is None or ceiling.result is None:
            continue
        n = ceiling.body.resources
        s = service.result.p50_ms if service and service.result else None
        c = ceiling.result.p50_ms
        lines.append(
            f"| {name} | {n:,} | {_fmt(s, '.2f')} | {c:.2f} | "
            f"{_fmt(None if s is None else s * 1000 / n, '.0f')} | {c * 1000 / n:.0f} |"
        )
    return "\n".join(lines)


def target_checks(run: Run, mode: str) -> list[str]:
    """The issue's targets on the rows of ``mode``, each as a PASS/FAIL/n.a. line."""
    by_key = {(row.body.name, row.target): row for row in run.rows if row.mode == mode}

    def service(name: str) -> Row | None:
        row = by_key.get((name, "service"))
        return row if row is not None and row.result is not None else None

    checks: list[str] = []
    seed = service("seed")
    if seed is not None and seed.result is not None:
        ok = seed.result.rps >= SEED_RPS
        checks.append(
            f"{'PASS' if ok else 'FAIL'} seed ≥ {SEED_RPS:,} req/s: {seed.result.rps:,.0f}"
        )
        if seed.ratio is not None:
            ok = seed.ratio <= SEED_RATIO
            checks.append(
                f"{'PASS' if ok else 'FAIL'} seed p50 ≤ {SEED_RATIO:g}x ceiling: {seed.ratio:.2f}x"
            )
    else:
        checks.append("n.a. seed targets: no service measurement")
    for name in LARGE:
        row = service(name)
        if row is not None and row.ratio is not None:
            ok = row.ratio <= LARGE_RATIO
            checks.append(
                f"{'PASS' if ok else 'FAIL'} {name} p50 ≤ {LARGE_RATIO:g}x ceiling: {row.ratio:.2f}x"
            )
        else:
            checks.append(f"n.a. {name} ratio: no service measurement")
    big = service("ebony-5712")
    if big is not None and big.rss_peak_mb is not None:
        ok = big.rss_peak_mb < RSS_MB
        checks.append(
            f"{'PASS' if ok else 'FAIL'} ebony-5712 RSS < {RSS_MB} MB: {big.rss_peak_mb:.0f} MB"
        )
    else:
        checks.append("n.a. RSS target: no service measurement on ebony-5712")
    return checks


def machine() -> list[str]:
    """A description of this machine and the software versions that matter."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = "unknown"
    with contextlib.suppress(OSError, AttributeError, IndexError):
        total_kb = int(Path("/proc/meminfo").read_text(encoding="ascii").split()[1])
        mem = f"{total_kb / 1024 / 1024:.1f} GiB"
    versions = []
    for package in ("uvicorn", "fastapi", "starlette", "orjson", "pydantic", "fhir.resources"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    wrk = wrk_path()
    wrk_version = "not installed"
    if wrk is not None:
        out = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False, timeout=10)
        wrk_version = (out.stdout or out.stderr).split("[")[0].strip() or "installed"
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return [
        f"- Code: commit {commit or 'unknown'} of this repository",
        f"- CPU: {model}, {nproc} cores available (nproc)",
        f"- Memory: {mem}",
        f"- OS: {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- {', '.join(versions)}",
        f"- Load generator: {wrk_version}; it shares the cores with the server",
    ]


def report(run: Run) -> str:
    """The console report (also the body of docs/performance.md)."""
    mode = headline(run)
    parts = [
        results_table(run),
        "",
        f"`{DIFFERENT}`: every call sends another chart (its own patient and resource ids), so no"
        " content cache can answer; these rows are the headline. "
        f"`{SAME}`: one body over and over (secondary; nothing is cached between calls, so the"
        " difference is what the service does once per patient: the snooze read).",
        "",
        f"Cost curve (p50 against prefetch size, `{mode}` chart per call):",
        "",
        cost_curve(run, mode),
        "",
        f"Targets (issue 20), `{mode}` chart per call:",
        "",
        *[f"- {line}" for line in target_checks(run, mode)],
    ]
    if mode == DIFFERENT and any(row.mode == SAME for row in run.rows):
        parts += [
            "",
            f"The same targets, `{SAME}` body on every call (secondary, not for --check):",
        ]
        parts += ["", *[f"- {line}" for line in target_checks(run, SAME)]]
    if run.notes:
        parts += ["", "Notes:", "", *[f"- {note}" for note in run.notes]]
    return "\n".join(parts)


def write_docs(run: Run, path: Path) -> None:
    """Write docs/performance.md: how to run, the machine, method, results."""
    declared = declared_keys(ROOT / "hooks" / SERVICE_ID)
    keys = ", ".join(f"`{key}`" for key in declared)
    text = f"""# Performance

Measured by `make bench` (`python -m benchmarks.run --write-docs`) on {run.started}.
This file is generated; rerun the command to refresh it.

## Machine

{chr(10).join(machine())}

## Method

- The service (`python -m {" ".join(SERVICE_COMMAND)}`: as in production, JSON logs at INFO
  to a file, `CDS_AUTH=off`, SQLite in a temporary directory, bundled `hooks/`) and the
  **ceiling** (`uvicorn {CEILING_APP} {" ".join(UVICORN_FLAGS)}`: a FastAPI POST that only reads
  the body and `orjson`-parses it) run side by side as subprocesses, one uvicorn worker each
  (uvloop and httptools), on free loopback ports.
- For each body: one POST must answer 200, then {run.tool} loads each server in turn, the
  ceiling first, for {run.duration:g} s each (after a short warm-up), with 8 connections for bodies under
  200 KB and 4 above. Peak RSS is `VmRSS` from `/proc/<pid>/status`, sampled every 100 ms while
  the load runs. "p50 / ceiling" is the service's p50 over the ceiling's on the same body.
- Bodies: `seed` is `fixtures/{SERVICE_ID}/seed-dermatomyositis/request.json` (full prefetch).
  The others are Synthea transaction bundles from `tests/data/fhir-data/` turned into a
  patient-view request whose prefetch fills every key the service declares ({keys}): the
  Patient, and a searchset Bundle of the key's resource type for each other key. The type's other
  search parameters (the observations key's code filter) are not applied, so every Observation is
  sent, under every key that asks for Observations: the worst case of an EHR that prefetches
  the whole record. `wendell-1116` and
  `ebony-5712` are the whole 1,116- and 5,712-entry bundles (types no key asks for, such as Claim
  or Encounter, are left out; the resources column counts what is sent), `slice-100` and
  `slice-1000` the first 100 and 1,000 of those resources from the 5,712-entry bundle.
- Each body is sent two ways ("chart per call"). `{DIFFERENT}` (the headline rows): every call is
  another chart. The patient id, every resource id, the references between them (subject and
  patient references, Bundle `fullUrl`s, `urn:uuid:` references), `context.patientId` and
  `hookInstance` are replaced by ids of the same length derived from a chart number
  (`benchmarks/charts.py`), so no content cache can answer and each chart has exactly the
  body's size. The charts are made before the run (as many as the `{SAME}` run's req/s says
  the service can take, within `--charts-mb` of memory) and wrk sends the next one on each
  call; the ceiling cycles through them. The notes say, per run, how many charts were made
  and whether any was sent twice. `{SAME}`: the one body on every call. Each way runs on fresh
  server processes, `{SAME}` first, so the two have the same history before each body.
- The service caches no request data (no validation cache, no evaluation cache); the one thing
  it keeps per patient is the snooze lookup (5 s), which the `{SAME}` rows hit.
- Wall-clock numbers on a shared machine move with other jobs; `python -m benchmarks.cpu`
  measures CPU time per call in process (same two ways, repeatable under load) and, with
  `--profile seed`, prints a cProfile summary of the seed call.

## Results

{report(run)}

## Reading the numbers

- The ceiling is what one worker can do with the body at all: with a few MB of JSON, parsing
  and garbage collection dominate, not HTTP. A ratio close to 1x means the service adds little
  on top of reading its input.
- The load generator runs on the same cores as the server, so absolute req/s are lower than on
  a dedicated machine; the ratios compare like with like.
- Scale out with replicas (deploy/k8s): throughput grows with cores, one worker per core.
"""
    # Hand-written analysis below this heading survives regeneration.
    if path.is_file() and NOTES_HEADING in (old := path.read_text(encoding="utf-8")):
        text += "\n" + old[old.index(NOTES_HEADING) :]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _server_env(tmp: Path, mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        {
            "CDS_AUTH": "off",
            "CDS_DATABASE_URL": f"sqlite:///{tmp}/bench-{mode}.db",
            "CDS_HOOKS_DIR": str(ROOT / "hooks"),
            "CDS_LOG_LEVEL": "INFO",  # production default: per-request log lines included
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per body")
    parser.add_argument("--only", default="", help="comma-separated body names")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"comma-separated, of {', '.join(MODES)}: a different chart per call, the same body",
    )
    parser.add_argument(
        "--charts-mb", type=int, default=512, help="memory for the different charts of one body"
    )
    parser.add_argument("--loadgen", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--no-service", action="store_true", help="measure the ceiling only")
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOCS.relative_to(ROOT)}")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    args.duration = min(max(args.duration, 1.0), 30.0)  # bounded: total stays in minutes
    args.warmup = min(max(args.warmup, 0.0), 5.0)
    args.modes = {mode.strip() for mode in args.modes.split(",") if mode.strip()}
    if not args.modes or not args.modes <= set(MODES):
        parser.error(f"--modes takes {', '.join(MODES)}")

    run = Run(duration=args.duration, started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    if args.loadgen == "wrk" or (args.loadgen == "auto" and wrk_path() is not None):
        if wrk_path() is None:
            print(f"wrk is not installed: {WRK_INSTALL_HINT}", file=sys.stderr)
            return 2
        run.tool = "wrk"
        args.warmup = max(args.warmup, 1.0) if args.warmup else 0.0  # wrk runs whole seconds
    else:
        run.tool = "httpx"
        print(
            f"wrk not found, using the slower httpx load generator; to install: {WRK_INSTALL_HINT}"
        )

    only = {name.strip() for name in args.only.split(",") if name.strip()} or None
    bodies, run.notes = build_bodies(only)
    if not bodies:
        print("no bodies to measure: " + "; ".join(run.notes), file=sys.stderr)
        return 2

    print(f"load generator: {run.tool}; {args.duration:g} s per run", flush=True)
    measured: dict[str, dict[str, list[Row]]] = {}
    with tempfile.TemporaryDirectory(prefix="cds-bench-") as tmpdir:
        # Same-body rows first: their req/s sizes the set of different charts.
        for mode in (m for m in (SAME, DIFFERENT) if m in args.modes):
            rows = measure(bodies, mode, measured.get(SAME, {}), args, Path(tmpdir), run)
            if rows is None:
                print("; ".join(run.notes), file=sys.stderr)
                return 2
            measured[mode] = rows
    # Listed by body, the headline (a different chart per call) first.
    run.rows = [r for b in bodies for mode in MODES for r in measured.get(mode, {}).get(b.name, [])]

    text = report(run)
    print()
    print(text)
    if args.write_docs:
        write_docs(run, DOCS)
        print(f"\nwrote {DOCS.relative_to(ROOT)}")
    failed = any(line.startswith("FAIL") for line in target_checks(run, headline(run)))
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
