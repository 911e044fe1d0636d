"""Golden cases in fixtures/<service>/<case>/: request.json -> expected topics and key facts."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cds_service.card_text import (
    DETAIL_MAX_WORDS,
    SUGGESTIONS_MAX,
    detail_words,
    leads_with_action,
)
from cds_service.catalog import Catalog, load_catalog
from cds_service.cdshooks import CDSRequest
from cds_service.decide import DecideOptions, clinical_facts
from cds_service.engine import Engine, HookCall
from cds_service.explain import why
from cds_service.exposure import ExposureSummary
from cds_service.gather import GatherOptions, gather
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
        if "summary_includes" in want:
            assert want["summary_includes"] in card["summary"], (topic, card["summary"])
        keys = {key.split("/", 1)[1] for _, key in rendered.suggestion_keys}
        assert set(want.get("suggestions", [])) <= keys, topic
        assert not set(want.get("absent_suggestions", [])) & keys, topic
        evidence = set(card.get("extension", {}).get("org.example.glucocorticoid-cds.evidence", []))
        assert set(want.get("evidence_includes", [])) <= evidence, topic
        detail = card.get("detail", "")
        assert all(text in detail for text in want.get("detail_contains", [])), topic
        assert not any(text in detail for text in want.get("detail_excludes", [])), topic
        # What the short card leaves out is in its explanation (cds-service explain).
        reasons = "\n".join(why(rendered.finding, rendered.rule.definition))
        for text in want.get("explanation_contains", []):
            assert text in reasons, (topic, text)
    for rendered in evaluation.rendered:
        check_readable(rendered.card, f"{case.name}/{rendered.rule.definition.topic}")
    # Entries left out (another patient's, unreadable) are exactly the ones the case expects:
    # none for most, so every fixture resource is bound to its patient and read.
    extension = evaluation.response.get("extension", {})
    assert extension.get(SKIPPED) == expected.get("skipped_entries"), case.name
    listed = set(expected.get("cards", {})) | set(expected.get("absent_topics", []))
    if case.parent.name == "glucocorticoid-safety":
        assert listed >= set(TOPICS), "every topic is either expected or expected silent"
    if "exposure" in expected:
        facts, _ = clinical_facts(call, await gather(call, GatherOptions()), DecideOptions())
        check_exposure(facts.exposure, expected["exposure"], case.name)


def check_readable(card: dict[str, Any], where: str) -> None:
    """A card a clinician reads in seconds (issue 18): the detail leads with the action, every
    paragraph starts with what to do, it stays within the word budget, and it offers at most
    SUGGESTIONS_MAX buttons (the rest named in its text)."""
    detail = card.get("detail", "")
    assert detail, f"{where}: a card says what to do in its detail"
    assert detail_words(detail) <= DETAIL_MAX_WORDS, (where, detail_words(detail))
    assert len(card.get("suggestions", [])) <= SUGGESTIONS_MAX, where
    for paragraph in detail.split("\n\n"):
        assert leads_with_action(paragraph), (where, paragraph)


COURSE_FIELDS = (
    "source", "ingredient", "start", "end", "daily_peq_mg", "route", "planned", "dose_range",
    "alternate_day", "ordered_on", "last_evidence_on", "unconfirmed_current", "dose_source",
    "dose_unknown_reason",
)  # fmt: skip


def check_exposure(summary: ExposureSummary, want: dict[str, Any], name: str) -> None:
    """The engine-level expectations of a case (expected.json "exposure"): summary numbers,
    per-threshold day counts, and courses (each listed course matches exactly one course on
    the fields it lists; dates as ISO strings)."""
    totals = {
        "current_daily_peq_mg": summary.current_daily_peq_mg(),
        "max_daily_peq_mg": summary.max_daily_peq_mg(),
        "cumulative_peq_mg": summary.cumulative_peq_mg(),
    }
    for key, value in totals.items():
        if key in want:
            assert value == pytest.approx(want[key], abs=1e-6), (name, key)
    counts: dict[str, Callable[[float], int]] = {
        "days_at_or_above": summary.days_at_or_above,
        "longest_run_at_or_above": summary.longest_run_at_or_above,
        "planned_days_at_or_above": summary.planned_days_at_or_above,
    }
    for key, count in counts.items():
        for mg, days in want.get(key, {}).items():
            assert count(float(mg)) == days, (name, key, mg)
    if "unknown_dose_sources" in want:
        assert list(summary.unknown_dose_sources()) == want["unknown_dose_sources"], name
    if "excluded_sources" in want:
        assert list(summary.excluded_sources) == want["excluded_sources"], name
    if "course_count" in want:
        assert len(summary.courses) == want["course_count"], (name, summary.courses)
    rows = [
        {f: (v.isoformat() if hasattr(v, "isoformat") else v) for f in COURSE_FIELDS for v in [getattr(c, f)]}
        for c in summary.courses
    ]  # fmt: skip
    for course in want.get("courses", []):
        unknown = set(course) - set(COURSE_FIELDS)
        assert not unknown, (name, unknown)
        found = [r for r in rows if all(_same(r[k], v) for k, v in course.items())]
        assert len(found) == 1, (name, course, rows)


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and isinstance(got, float):
        return abs(got - want) < 1e-6
    return bool(got == want)


def test_each_case_is_its_own_patient() -> None:
    """The FHIR fallback test loads every patient-view case into one server: a patient id
    shared by two cases would merge their records there. (The order cases reuse the spec
    examples' patient and are not loaded.)"""
    seen: dict[str, str] = {}
    for case in (c for c in CASES if c.parent.name == "glucocorticoid-safety"):
        patient = json.loads((case / "request.json").read_text())["context"]["patientId"]
        other = seen.setdefault(f"{case.parent.name}/{patient}", case.name)
        assert other == case.name, f"{case.name} and {other} share patient {patient}"


def test_every_prefetched_resource_is_valid_r4() -> None:
    """A FHIR server (deploy/load_fixtures.py, the fallback test) must accept every fixture
    resource: client quirks belong in draftOrders, where the sandbox sends them."""
    from fhir.resources.R4B import get_fhir_model_class

    invalid = []
    for case in CASES:
        prefetch = json.loads((case / "request.json").read_text()).get("prefetch") or {}
        for key, value in prefetch.items():
            if not isinstance(value, dict):
                continue
            bundle = value.get("resourceType") == "Bundle"
            resources = [e["resource"] for e in value.get("entry", [])] if bundle else [value]
            for resource in resources:
                try:
                    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
                except ValueError:
                    invalid.append(f"{case.name}/{key}/{resource.get('id')}")
    assert invalid == []
