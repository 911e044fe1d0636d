"""Property-based fuzzing of the running service from its own OpenAPI document (schemathesis).

The service runs as a real uvicorn process on loopback; schemathesis generates a bounded number
of requests per operation and checks for 5xx responses and responses that break the schema.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "CDS_DATABASE_URL": f"sqlite:///{tmp_path}/fuzz.db",
        "CDS_AUTH": "off",
        "CDS_OPENAPI": "true",  # the document schemathesis reads (off by default)
        "CDS_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(  # noqa: S603 - our own service
        [sys.executable, "-m", "cds_service", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("service did not start")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def test_fuzzing_finds_no_server_errors_or_schema_violations(served: str, tmp_path: Path) -> None:
    result = subprocess.run(  # noqa: S603
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{served}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-examples",
            "40",
            "--seed",
            "20261124",
            "--request-timeout",
            "10",
            "--phases",
            "examples,coverage,fuzzing",
            "--exclude-path",
            "/metrics",
            "--exclude-path",
            "/admin/stats",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
