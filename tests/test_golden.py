"""Golden cases in fixtures/<service>/<case>/: request.json -> expected topics and key facts."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service.catalog import Catalog, load_catalog
from cds_service.cdshooks import CDSRequest
from cds_service.decide import DecideOptions
from cds_service.engine import Engine, HookCall
from cds_service.topics import KINDS

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]
CASES = sorted(p.parent for p in (REPO / "fixtures").glob("*/*/expected.json"))
TOPICS = ("bone-health", "osteonecrosis", "infection-prevention")
SKIPPED = "org.example.glucocorticoid-cds.skipped-entries"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(REPO / "hooks", KINDS)


def test_there_are_enough_golden_cases() -> None:
    assert len([c for c in CASES if c.parent.name == "glucocorticoid-safety"]) >= 26


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_golden_case(case: Path, catalog: Catalog) -> None:
    expected: dict[str, Any] = json.loads((case / "expected.json").read_text())
    request = CDSRequest.model_validate(json.loads((case / "request.json").read_text()))
    service = catalog.find(case.parent.name)
    assert service is not None
    call = HookCall.of(request, service, datetime.fromisoformat(expected["now"]))
    evaluation = await Engine(decide=DecideOptions(strict=True)).evaluate(call)
    assert evaluation.failed_rules == []
    by_topic = {r.rule.definition.topic: r for r in evaluation.rendered}
    assert len(by_topic) == len(evaluation.rendered), "one card per topic at most"
    for topic in expected.get("absent_topics", []):
        assert topic not in by_topic, f"{topic} should be silent: {case.name}"
    for topic, want in expected.get("cards", {}).items():
        assert topic in by_topic, f"{topic} card expected: {case.name}"
        rendered = by_topic[topic]
        card = rendered.card
        if "indicator" in want:
            assert card["indicator"] == want["indicator"], topic
        keys = {key.split("/", 1)[1] for _, key in rendered.suggestion_keys}
        assert set(want.get("suggestions", [])) <= keys, topic
        assert not set(want.get("absent_suggestions", [])) & keys, topic
        evidence = set(card.get("extension", {}).get("org.example.glucocorticoid-cds.evidence", []))
        assert set(want.get("evidence_includes", [])) <= evidence, topic
        assert want.get("summary_includes", "") in card["summary"], topic
        detail = card.get("detail", "")
        assert all(text in detail for text in want.get("detail_contains", [])), topic
        assert not any(text in detail for text in want.get("detail_excludes", [])), topic
    # Entries left out (another patient's, unreadable) are exactly the ones the case expects:
    # none for most, so every fixture resource is bound to its patient and read.
    extension = evaluation.response.get("extension", {})
    assert extension.get(SKIPPED) == expected.get("skipped_entries"), case.name
    listed = set(expected.get("cards", {})) | set(expected.get("absent_topics", []))
    if case.parent.name == "glucocorticoid-safety":
        assert listed >= set(TOPICS), "every topic is either expected or expected silent"
