"""dose-unknown (never silent) as pure functions of facts and thresholds."""

from __future__ import annotations

import pytest

from cds_service.facts import ClinicalFacts
from cds_service.topics.dose_unknown import DOSE_UNKNOWN
from tests.topic_support import Planned, Taken, facts, run


@pytest.mark.parametrize(
    ("case", "f", "details"),
    [
        ("no glucocorticoid: silent", facts(), None),
        ("known dose: silent", facts(taken=[Taken(30, 31, 40)]), None),
        ("current course of unknown dose", facts(taken=[Taken(5, 6, None)]), "regardless"),
        (
            "unknown dose for 14 days, ended a month ago",
            facts(taken=[Taken(45, 14, None)]),
            "regardless",
        ),
        (
            "unknown dose for 13 days, ended a month ago: silent",
            facts(taken=[Taken(45, 13, None)]),
            None,
        ),
        (
            "unknown dose for 4 months: long-term by duration",
            facts(taken=[Taken(200, 120, None)]),
            "long-term",
        ),
        (
            "a short burst of unknown dose long ago: silent",
            facts(taken=[Taken(300, 5, None)]),
            None,
        ),
        (
            "known dose beside a current unknown one",
            facts(taken=[Taken(100, 60, 5), Taken(3, 4, None)]),
            "regardless",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_patient_view(case: str, f: ClinicalFacts, details: str | None) -> None:
    finding = run(DOSE_UNKNOWN, f)
    if details is None:
        assert finding is None, case
        return
    assert finding is not None, case
    assert finding.indicator == "info"
    assert details in finding.details, case
    assert finding.evidence == ("MedicationRequest/gc",)


def test_an_order_of_unknown_dose_in_focus_is_named() -> None:
    f = facts(planned=[Planned(30, 0)])
    course = f.exposure.courses[0]
    f.exposure = type(f.exposure)(
        courses=(type(course)(**{**course.__dict__, "daily_peq_mg": None}),),
        excluded_sources=(),
        daily={},
        planned_daily={},
        today=f.today,
    )
    finding = run(DOSE_UNKNOWN, f)
    assert finding is not None
    assert finding.evidence == ("MedicationRequest/draft",)


def test_the_reason_is_said() -> None:
    f = facts(taken=[Taken(5, 6, None)])
    course = f.exposure.courses[0]
    f.exposure = type(f.exposure)(
        courses=(type(course)(**{**course.__dict__, "dose_unknown_reason": "weight-missing"}),),
        excluded_sources=(),
        daily={},
        planned_daily={},
        today=f.today,
    )
    finding = run(DOSE_UNKNOWN, f)
    assert finding is not None
    assert finding.facts["reason"] == "dose per kg without a recent body weight"


@pytest.mark.parametrize(("age", "child_lines"), [(8, True), (None, True), (40, False)])
def test_children_and_unknown_ages_get_the_per_kg_live_vaccine_line(
    age: int | None, child_lines: bool
) -> None:
    finding = run(DOSE_UNKNOWN, facts(age=age, taken=[Taken(5, 6, None)]))
    assert finding is not None
    assert ("child-lines" in finding.details) is child_lines
