"""benchmarks/instructions.py: the driver valgrind runs, and how its count is read."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks import instructions

pytestmark = pytest.mark.anyio


@pytest.fixture
def own_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The driver configures logging as the service does; the root logger is put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    monkeypatch.setenv("CDS_AUTH", "off")  # what the driver sets; put back after
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("own_logging")
async def test_the_driver_posts_every_chart_and_each_answers_200(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # drive() raises on any status but 200; two new charts and the same body twice, the issued
    # cards written after each call.
    monkeypatch.setattr(instructions, "FLUSH_EVERY", 1)
    await instructions.drive("seed", "different", 2)
    await instructions.drive("seed", "same", 2)


def test_one_call_is_the_difference_of_two_runs_over_the_counted_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    totals = {instructions.WARMUP: 1_000_000, instructions.WARMUP + 10: 51_000_000}
    stderr = "==1== Events    : Ir\n==1== Collected : {}\n==1==\n==1== I   refs:      {}\n"

    def fake_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls = int(command[-1].rsplit(":", 1)[1])
        text = stderr.format(totals[calls], totals[calls])
        return subprocess.CompletedProcess(command, 0, "", text)

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert instructions.per_call("seed", "different", 10) == 5_000_000


def test_a_failed_valgrind_run_is_an_error_not_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "Traceback ...\nRuntimeError: HTTP 500")

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match="HTTP 500"):
        instructions.count("seed", "different", 3)
