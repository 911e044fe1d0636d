"""The shape of the engine, held as tests: small modules, few complex functions (each with a
reason), no id()-keyed caches, hook names only in the hook table, every topic unit-tested.

Complexity is radon's cyclomatic complexity (branches and boolean operators), the measure the
architecture issue was written with; ruff's mccabe check counts fewer paths.
"""

from __future__ import annotations

import ast
from pathlib import Path

from radon.complexity import cc_visit

REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "cds_service"
MAX_MODULE_LINES = 500
MAX_COMPLEXITY = 20
MAX_COMPLEX_FUNCTIONS = 5
HOOK_NAMES = {"patient-view", "order-select", "order-sign"}


def _modules() -> list[Path]:
    return sorted(p for p in ENGINE.rglob("*.py") if "migrations" not in p.parts)


def test_engine_modules_are_at_most_500_lines() -> None:
    too_long = {
        str(p.relative_to(REPO)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}


def test_few_complex_functions_and_each_says_why() -> None:
    complex_functions = []
    for path in _modules():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for block in cc_visit(source):
            if block.complexity <= MAX_COMPLEXITY:
                continue
            name = f"{path.relative_to(REPO)}:{block.name}"
            complex_functions.append(name)
            # The reason sits in the three lines above the def or in the body's first lines.
            around = "\n".join(lines[max(block.lineno - 4, 0) : block.lineno + 3])
            assert "complexity:" in around.lower(), f"{name} ({block.complexity}) needs a reason"
    assert len(complex_functions) <= MAX_COMPLEX_FUNCTIONS, complex_functions


def test_no_cache_is_keyed_by_object_identity() -> None:
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            if isinstance(node.func, ast.Name) and node.func.id == "id":
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == [], "memo.Memo keys by content, never by id()"


def test_hook_names_appear_only_in_the_hook_table() -> None:
    offenders = []
    for path in _modules():
        if path.name == "hook_table.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in HOOK_NAMES:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value}")
    assert offenders == []


def test_every_topic_module_has_its_unit_tests() -> None:
    topics = [
        p.stem
        for p in (ENGINE / "topics").glob("*.py")
        if p.stem not in ("__init__", "patient_context")
    ]
    tests = {p.read_text(encoding="utf-8") for p in (REPO / "tests").glob("test_topic_*.py")}
    untested = [
        t for t in topics if not any(f"cds_service.topics.{t} import" in text for text in tests)
    ]
    assert untested == []
