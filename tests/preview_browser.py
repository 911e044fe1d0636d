"""The real service in a thread and Debian's Chromium through its chromedriver, for the
preview's browser test and the README screenshot. Nothing here downloads a browser or driver:
both paths are given, and Selenium Manager is told to stay offline."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr

from cds_service.main import create_app
from cds_service.metrics import Metrics
from cds_service.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "fixtures" / "glucocorticoid-safety" / "seed-dermatomyositis"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMEDRIVER_NAMES = ("chromedriver",)


def find_binary(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name) or (
            f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None
        )
        if found:
            return found
    return None


def browser_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver) when both are installed, else None."""
    browser, driver = find_binary(CHROMIUM_NAMES), find_binary(CHROMEDRIVER_NAMES)
    return (browser, driver) if browser and driver else None


def fixture_now(case: Path = SEED) -> datetime:
    """The evaluation time the case was written for (its expected.json)."""
    return datetime.fromisoformat(json.loads((case / "expected.json").read_text())["now"])


def preview_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": SecretStr(f"sqlite:///{tmp_path}/cds.db"),
        "auth": "off",
        "preview": True,
        "strict_response_check": True,
        "patient_key_secret": SecretStr("preview-test-secret"),
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def serve(settings: Settings, clock: Callable[[], datetime]) -> Iterator[str]:
    """The service (create_app, uvicorn) on a free loopback port; yields its base URL."""
    app = create_app(settings, clock=clock, metrics=Metrics())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        ws="none",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextmanager
def chromium(browser: str, driver: str, width: int = 1440, height: int = 1500) -> Iterator[Any]:
    """A headless Chromium session (selenium imported here: a dev dependency only)."""
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager fetch anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield session
    finally:
        session.quit()
