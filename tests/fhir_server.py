"""Pytest harness for a real FHIR R4 server: sekmet-fhir 0.1.1 in its own venv (.venv-fhir).

Register the session fixture in a test module with
``from tests.fhir_server import fhir_server  # noqa: F401``, or for every module with
``pytest_plugins = ["tests.fhir_server"]`` in tests/conftest.py. ``sekmet_server()`` starts
further servers, e.g. one that enforces a bearer token.

When the venv cannot be built (no package index), tests using it are skipped, except under
``CI=true``, where that is a failure.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

SEKMET_VERSION = "0.1.1"
REPO_ROOT = Path(__file__).resolve().parents[1]
VENV = REPO_ROOT / ".venv-fhir"  # git-ignored
SEKMET_BIN = VENV / "bin" / "sekmet"
_STAMP = VENV / f".sekmet-fhir-{SEKMET_VERSION}"
_START_TIMEOUT_S = 30.0
_INSTALL_TIMEOUT_S = 600


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"sekmet-fhir is required under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def ensure_venv() -> Path:
    """Build .venv-fhir with sekmet-fhir if missing; return the ``sekmet`` executable."""
    if _STAMP.exists() and SEKMET_BIN.exists():
        return SEKMET_BIN
    lock_path = Path(tempfile.gettempdir()) / "cds-service-venv-fhir.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions (xdist workers) build it once
        if _STAMP.exists() and SEKMET_BIN.exists():
            return SEKMET_BIN
        steps = [
            [sys.executable, "-m", "venv", str(VENV)],
            [
                str(VENV / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"sekmet-fhir=={SEKMET_VERSION}",
            ],
        ]
        for step in steps:
            try:
                done = subprocess.run(  # noqa: S603 - fixed argv, no shell
                    step, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                _unavailable(f"cannot build {VENV.name}: {type(exc).__name__}")
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                _unavailable(f"cannot build {VENV.name} ({step[2]} failed): {' | '.join(tail)}")
        if not SEKMET_BIN.exists():
            _unavailable(f"{SEKMET_BIN} missing after install")
        _STAMP.touch()
    return SEKMET_BIN


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def to_put_transaction(bundle: dict[str, Any]) -> dict[str, Any]:
    """Rewrite POST entries to ``PUT <type>/<id>`` so the bundle's ids survive loading.

    Synthea entries have ``urn:uuid:`` fullUrls and resources with ids; the server resolves the
    urn:uuid references to the PUT targets (tests/data/fhir-data/README.md).
    """
    out = copy.deepcopy(bundle)
    out["type"] = "transaction"
    for entry in out.get("entry", []):
        resource = entry["resource"]
        request = entry.setdefault("request", {})
        if request.get("method", "POST") == "POST" and resource.get("id"):
            entry["request"] = {
                "method": "PUT",
                "url": f"{resource['resourceType']}/{resource['id']}",
            }
    return out


@dataclass
class SekmetServer:
    """A running sekmet-fhir; ``base_url`` is its FHIR base (``http://127.0.0.1:<port>/fhir``)."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_s: float
    tokens: tuple[str, ...] = ()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
        if self.tokens:
            headers["Authorization"] = f"Bearer {self.tokens[0]}"
        return headers

    def load_bundle(self, bundle: dict[str, Any], *, keep_ids: bool = True) -> dict[str, str]:
        """POST ``bundle`` as a transaction; return ``{entry fullUrl: "Type/id"}`` as stored.

        With ``keep_ids`` (the default) POST entries become ``PUT Type/id`` first, so the ids in
        the file are the ids on the server.
        """
        body = to_put_transaction(bundle) if keep_ids else bundle
        response = httpx.post(self.base_url, json=body, headers=self._headers(), timeout=300.0)
        if response.status_code != 200:
            raise AssertionError(f"transaction failed: HTTP {response.status_code}")
        result = response.json()
        stored: dict[str, str] = {}
        for sent, got in zip(body.get("entry", []), result.get("entry", []), strict=True):
            outcome = got.get("response", {})
            if not str(outcome.get("status", "")).startswith(("200", "201")):
                raise AssertionError(f"transaction entry failed: {outcome.get('status')}")
            location = str(outcome.get("location", ""))
            path = location.split("/fhir/", 1)[-1].split("/_history", 1)[0]
            stored[sent.get("fullUrl", path)] = path
        return stored

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _fail_start(log_path: Path, why: str) -> NoReturn:
    tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
    pytest.fail(f"sekmet did not start ({why}):\n" + "\n".join(tail), pytrace=False)


@contextlib.contextmanager
def sekmet_server(workdir: Path, *, tokens: Sequence[str] = ()) -> Iterator[SekmetServer]:
    """Run ``sekmet serve`` on a free loopback port with an in-memory store; stop it on exit.

    The lab/pharmacy simulator and the inbound traffic log are off. With ``tokens``, every FHIR
    call except ``/metadata`` needs ``Authorization: Bearer <one of tokens>``.
    """
    sekmet = ensure_venv()
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/fhir"
    config: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "base_url": base_url,  # sekmet builds next links from it
        "data_dir": str(workdir / "data"),
        "own_private_key_path": str(workdir / "keys" / "sekmet_private.pem"),
        "simulator": {"enabled": False},
        "log_inbound": False,
    }
    if tokens:
        config["server_auth"] = {"types": ["bearer"], "tokens": list(tokens)}
    config_path = workdir / "sekmet.yaml"
    config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    log_path = workdir / "sekmet.log"
    env = {**os.environ, "SEKMET_DB": ":memory:", "SEKMET_CONFIG": str(config_path)}
    env.pop("SEKMET_BASE_URL", None)
    env.pop("SEKMET_PUBLIC_URL", None)
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [str(sekmet), "serve", "--config", str(config_path)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = SekmetServer(base_url, process, log_path, 0.0, tuple(tokens))
    try:
        while True:
            if process.poll() is not None:
                _fail_start(log_path, f"exit code {process.returncode}")
            if time.monotonic() - started > _START_TIMEOUT_S:
                _fail_start(log_path, f"no answer on /metadata within {_START_TIMEOUT_S:.0f} s")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/metadata", timeout=1.0).status_code == 200:
                    break
            time.sleep(0.05)
        server.startup_s = time.monotonic() - started
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SekmetServer]:
    """One open (no auth) sekmet-fhir for the whole session; load data with ``load_bundle``."""
    with sekmet_server(tmp_path_factory.mktemp("sekmet")) as server:
        yield server
