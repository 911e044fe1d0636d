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

# BENCH_BODIES holds one JSON body per line. With one line wrk sends it on every request, as a
# static request. With more (BENCH_MANY=1), request k sends line BENCH_FIRST + k (wrapping
# round): the requests are formatted up front in init(), so each one costs wrk a table lookup.
# (Only the thread's Lua state runs init(); the main state, which also loads the script, never
# holds the bodies.)
# done() prints one JSON line; latencies are in microseconds.
_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local requests, next_index = {}, tonumber(os.getenv("BENCH_FIRST"))

function init(args)
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    requests[#requests + 1] = line
  end
  if #requests == 1 then
    wrk.body = requests[1]
  else
    for i, body in ipairs(requests) do
      requests[i] = wrk.format(nil, nil, nil, body)
    end
  end
end

if os.getenv("BENCH_MANY") == "1" then
  function request()
    local r = requests[next_index % #requests + 1]
    next_index = next_index + 1
    return r
  end
end

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


def read_bodies(body_file: Path) -> list[bytes]:
    """The bodies in ``body_file``: one JSON document per line (orjson never writes a newline)."""
    return body_file.read_bytes().splitlines()


def _many_lines(path: Path) -> bool:
    with path.open("rb") as file:
        file.readline()
        return bool(file.read(1))


def run_wrk(
    url: str, body_file: Path, *, connections: int, seconds: float, workdir: Path, first: int = 0
) -> LoadResult:
    """POST the bodies of ``body_file`` to ``url`` for ``seconds``, one wrk thread.

    Request k sends body ``first + k`` (wrapping round); with one body, every request sends it.
    """
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
        env={
            "BENCH_BODIES": str(body_file),
            "BENCH_MANY": "1" if _many_lines(body_file) else "0",
            "BENCH_FIRST": str(first),
        },
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


async def _httpx_load(
    url: str, bodies: list[bytes], connections: int, seconds: float, first: int
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    sent = first
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors, sent
            while time.perf_counter() < deadline:
                body = bodies[sent % len(bodies)]
                sent += 1
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


def run_httpx(
    url: str, body_file: Path, *, connections: int, seconds: float, first: int = 0
) -> LoadResult:
    """The fallback generator: ``connections`` concurrent loops posting for ``seconds``.

    The bodies are taken as in :func:`run_wrk`. It runs in Python in this process, so it
    measures less throughput than wrk would.
    """
    bodies = read_bodies(body_file)
    return asyncio.run(_httpx_load(url, bodies, connections, seconds, first))
