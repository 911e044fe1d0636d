"""Tests that break the bundled content on purpose: a copy of hooks/ to edit, and the edit."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def hooks_copy(tmp_path: Path) -> Path:
    """A copy of the bundled hooks/ folder, free to edit."""
    target = tmp_path / "hooks"
    shutil.copytree(REPO / "hooks", target)
    return target


def edit(path: Path, change: Callable[[str], str]) -> None:
    """Rewrite ``path`` with ``change``; the edit must change something."""
    text = path.read_text()
    changed = change(text)
    assert changed != text, "the edit did not apply"
    path.write_text(changed)
