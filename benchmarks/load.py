"""Load generators: ``wrk`` when installed, otherwise a bounded async httpx loop."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

WRK_INSTALL_HINT = "apt-get install -y wrk"

# wrk prints this JSON line from done(); latencies are in microseconds.
_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*all")
f:close()

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50": %d, "p95": %d, "p99": %d, "non2xx": %d, ' ..
    '"socket_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured. Latencies in milliseconds."""

    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int  # non-2xx responses plus socket errors and timeouts
    tool: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def wrk_path() -> str | None:
    """The wrk binary, or None when it is not installed."""
    return shutil.which("wrk")


def run_wrk(
    url: str, body_file: Path, *, connections: int, seconds: float, workdir: Path
) -> LoadResult:
    """POST ``body_file`` to ``url`` for ``seconds`` with one wrk thread and ``connections``."""
    binary = wrk_path()
    if binary is None:
        raise RuntimeError(f"wrk is not installed ({WRK_INSTALL_HINT})")
    script = workdir / "post.lua"
    script.write_text(_WRK_SCRIPT, encoding="utf-8")
    command = [
        binary,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        env={"BENCH_BODY": str(body_file)},
    )
    line = next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{"))
    data = json.loads(line)
    return LoadResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50"] / 1000,
        p95_ms=data["p95"] / 1000,
        p99_ms=data["p99"] / 1000,
        errors=int(data["non2xx"]) + int(data["socket_errors"]),
        tool="wrk",
    )


def _percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def _httpx_load(url: str, body: bytes, connections: int, seconds: float) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                    ok = response.is_success
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - started) * 1000)
                errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=_percentile(latencies, 50),
        p95_ms=_percentile(latencies, 95),
        p99_ms=_percentile(latencies, 99),
        errors=errors,
        tool="httpx",
    )


def run_httpx(url: str, body: bytes, *, connections: int, seconds: float) -> LoadResult:
    """The fallback generator: ``connections`` concurrent loops posting ``body`` for ``seconds``.

    It runs in Python in this process, so it measures less throughput than wrk would.
    """
    return asyncio.run(_httpx_load(url, body, connections, seconds))
