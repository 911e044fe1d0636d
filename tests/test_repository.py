"""The repository stands on its own: nothing reads outside it, and test data says where it is from."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
CHECKED = ("tests", "benchmarks", "deploy", ".ci", "Makefile", "docker-compose.yml")
# Ways a path can leave the checkout: the sibling folder the test data once came from, or a
# parent of the repository root (the root's own parent, or two levels up from tests/).
OUTSIDE = re.compile(
    r"\.\./shared|[\"']shared[\"']|\b(?:REPO|ROOT|REPO_ROOT)\.parent\b|parents\[1\]\.parent"
    r"|parents\[[2-9]\]"
)


def checked_files() -> list[Path]:
    """The tracked files under CHECKED (every file there when this is not a git checkout)."""
    git = shutil.which("git")
    if git is not None:
        listed = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [git, "ls-files", "-z", "--", *CHECKED],
            cwd=REPO,
            capture_output=True,
            check=False,
        )
        if listed.returncode == 0 and listed.stdout:
            return [REPO / name for name in listed.stdout.decode().split("\0") if name]
    found: list[Path] = []
    for name in CHECKED:
        path = REPO / name
        found += [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return [p for p in found if p.is_file() and "__pycache__" not in p.parts]


def test_nothing_reads_outside_the_repository() -> None:
    files = [p for p in checked_files() if p != Path(__file__).resolve()]
    assert any(p.name == "Makefile" for p in files)
    hits = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}"
        for path in files
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        )
        if OUTSIDE.search(line)
    ]
    assert hits == []


def test_every_data_folder_names_its_files_and_licence() -> None:
    index = (DATA / "README.md").read_text(encoding="utf-8")
    folders = sorted(p for p in DATA.iterdir() if p.is_dir())
    assert folders
    for folder in folders:
        assert f"`{folder.name}/`" in index, folder.name
        readme = folder / "README.md"
        assert readme.is_file(), f"{folder.name} has no README.md"
        text = readme.read_text(encoding="utf-8")
        assert re.search(r"licen[cs]e", text, re.IGNORECASE), f"{readme}: no licence note"
        for path in folder.rglob("*"):
            if path.is_file() and path != readme:
                assert path.name in text, f"{readme} does not name {path.relative_to(DATA)}"
