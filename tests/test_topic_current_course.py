"""glucocorticoid-course (never silent, fallback) as pure functions of facts and thresholds."""

from __future__ import annotations

import pytest

from cds_service.facts import ClinicalFacts
from cds_service.topics.current_course import CURRENT_COURSE
from tests.topic_support import Planned, Taken, facts, run


@pytest.mark.parametrize(
    ("case", "f", "fires"),
    [
        ("a 5-day burst ending today", facts(taken=[Taken(4, 5, 40)]), True),
        ("a burst long ago: silent", facts(taken=[Taken(200, 5, 40)]), False),
        ("ended yesterday: silent", facts(taken=[Taken(10, 10, 40)]), False),
        ("no glucocorticoid: silent", facts(), False),
        ("unknown dose: the dose-unknown card's business", facts(taken=[Taken(4, 5, None)]), False),
        ("a short course being ordered", facts(planned=[Planned(7, 40)]), True),
        ("long-term and everything done: silent", facts(taken=[Taken(200, 201, 5)]), False),
        ("28 days at 20 mg: past the PJP line, silent", facts(taken=[Taken(27, 28, 20)]), False),
        ("27 days at 20 mg: nothing due yet", facts(taken=[Taken(26, 27, 20)]), True),
        (
            "an IV pulse: the osteonecrosis rule's business",
            facts(taken=[Taken(3, 4, 5)], pulses=[2]),
            False,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_current_course(case: str, f: ClinicalFacts, fires: bool) -> None:
    finding = run(CURRENT_COURSE, f)
    assert (finding is not None) is fires, case
    if finding is not None:
        assert finding.indicator == "info"
        assert finding.summary == "nothing-due"


def _burst_call(failing: str | None) -> list[str]:
    """The current-burst fixture through decide(), with one rule made to fail."""
    import dataclasses
    import json
    from datetime import datetime
    from pathlib import Path
    from typing import Any

    import anyio

    from cds_service.catalog import load_catalog
    from cds_service.cdshooks import CDSRequest
    from cds_service.engine import Engine, HookCall
    from cds_service.topics import KINDS

    repo = Path(__file__).resolve().parents[1]
    case = repo / "fixtures" / "glucocorticoid-safety" / "current-burst-nothing-due-yet"
    service = load_catalog(repo / "hooks", KINDS).find("glucocorticoid-safety")
    assert service is not None

    def boom(*_: Any) -> None:
        raise ValueError("rule bug")

    rules = tuple(
        dataclasses.replace(r, kind=dataclasses.replace(r.kind, evaluate=boom))
        if r.definition.id == failing
        else r
        for r in service.rules
    )
    service = dataclasses.replace(service, rules=rules)
    request = CDSRequest.model_validate(json.loads((case / "request.json").read_text()))
    now = datetime.fromisoformat(json.loads((case / "expected.json").read_text())["now"])
    evaluation = anyio.run(Engine().evaluate, HookCall.of(request, service, now))
    return [r.rule.definition.topic for r in evaluation.rendered]


def test_the_fallback_speaks_when_every_rule_judged_and_found_nothing() -> None:
    assert _burst_call(None) == ["glucocorticoid-course"]


def test_the_fallback_stays_silent_when_a_rule_failed() -> None:
    assert _burst_call("gc-infection-prevention") == []


@pytest.mark.parametrize(
    ("age", "child_lines"), [(12, True), (None, True), (17, True), (18, False)]
)
def test_children_and_unknown_ages_get_the_per_kg_live_vaccine_line(
    age: int | None, child_lines: bool
) -> None:
    finding = run(CURRENT_COURSE, facts(age=age, taken=[Taken(4, 5, 10)]))
    assert finding is not None
    assert ("child-lines" in finding.details) is child_lines


def _start_unknown(f: ClinicalFacts, source: str) -> ClinicalFacts:
    """``f`` with the course from ``source`` marked as an active order with no date at all."""
    import dataclasses

    courses = tuple(
        dataclasses.replace(c, start_unknown=True) if c.source == source else c
        for c in f.exposure.courses
    )
    return dataclasses.replace(f, exposure=dataclasses.replace(f.exposure, courses=courses))


@pytest.mark.parametrize(
    ("case", "f", "summary", "details"),
    [
        (
            "an order with no date, counted today only: ask how long, never 'nothing due'",
            _start_unknown(facts(taken=[Taken(0, 1, 20)]), "MedicationRequest/gc"),
            "start-unknown",
            ("start-unknown", "course", "when-due"),
        ),
        (
            "a dated 1-day course: nothing due yet",
            facts(taken=[Taken(0, 1, 20)]),
            "nothing-due",
            ("course", "when-due"),
        ),
        (
            "a dated course beside an undated one: the undated one decides",
            _start_unknown(
                facts(taken=[Taken(3, 4, 5), Taken(0, 1, 10, source="MedicationRequest/nodate")]),
                "MedicationRequest/nodate",
            ),
            "start-unknown",
            ("start-unknown", "course", "when-due"),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_an_order_with_no_date_asks_how_long(
    case: str, f: ClinicalFacts, summary: str, details: tuple[str, ...]
) -> None:
    finding = run(CURRENT_COURSE, f)
    assert finding is not None, case
    assert finding.summary == summary, case
    assert tuple(d for d in finding.details if d != "child-lines") == details, case
    expected_drug = "prednisone" if summary == "start-unknown" else "none"
    assert finding.facts["start_unknown_drug"] == expected_drug, case
