"""osteonecrosis as pure functions of facts and thresholds."""

from __future__ import annotations

import pytest

from cds_service.facts import ClinicalFacts
from cds_service.topics.osteonecrosis import ORDER_OSTEONECROSIS, OSTEONECROSIS
from tests.topic_support import Planned, Taken, facts, hit, run


@pytest.mark.parametrize(
    ("case", "f", "summary", "suggestions"),
    [
        (
            "no steroid: silent even with prior osteonecrosis",
            facts(hit("osteonecrosis", "Condition/avn", site="hip")),
            None,
            None,
        ),
        ("low cumulative dose, no run: silent", facts(taken=[Taken(100, 90, 10)]), None, None),
        (
            "cumulative above 2 g",
            facts(taken=[Taken(200, 150, 15)]),
            "risk",
            ("mri-hip", "mri-other-joint"),
        ),
        (
            "28 days at 20 mg",
            facts(taken=[Taken(100, 28, 20)]),
            "risk",
            ("mri-hip", "mri-other-joint"),
        ),
        ("27 days at 20 mg: silent", facts(taken=[Taken(100, 27, 20)]), None, None),
        (
            "an IV pulse",
            facts(taken=[Taken(100, 5, 5)], pulses=[50]),
            "risk",
            ("mri-hip", "mri-other-joint"),
        ),
        (
            "both hips replaced: knee MRI, never the hip",
            facts(
                hit("hip_prosthesis", "Procedure/thr", laterality="bilateral"),
                taken=[Taken(100, 28, 20)],
            ),
            "both-hips-replaced",
            ("mri-knee", "mri-other-joint"),
        ),
        (
            "joint pain leads",
            facts(hit("joint_pain", "Condition/pain"), taken=[Taken(100, 28, 20)]),
            "pain",
            ("mri-hip", "mri-other-joint"),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_patient_view(
    case: str, f: ClinicalFacts, summary: str | None, suggestions: tuple[str, ...] | None
) -> None:
    finding = run(OSTEONECROSIS, f)
    assert (finding.summary if finding else None) == summary, case
    if finding is not None:
        assert finding.suggestions == suggestions, case
        assert finding.indicator == ("warning" if summary == "pain" else "info")


def test_prior_hip_necrosis_with_prosthesis_is_multifocal() -> None:
    f = facts(
        hit("osteonecrosis", "Condition/avn", site="hip"),
        hit("hip_prosthesis", "Procedure/thr", laterality="bilateral"),
        taken=[Taken(30, 10, 5)],
    )
    finding = run(OSTEONECROSIS, f)
    assert finding is not None
    assert {"prior", "multifocal", "hips-replaced"} <= set(finding.details)
    assert {"Condition/avn", "Procedure/thr"} <= set(finding.evidence)


@pytest.mark.parametrize(
    ("case", "f", "summary"),
    [
        ("nothing ordered: silent", facts(taken=[Taken(100, 28, 20)]), None),
        ("28 days at 20 mg ordered", facts(planned=[Planned(28, 20)]), "risk"),
        ("27 days at 20 mg ordered: silent", facts(planned=[Planned(27, 20)]), None),
        (
            "projected cumulative over 2 g",
            facts(taken=[Taken(200, 150, 10)], planned=[Planned(60, 10)]),
            "risk",
        ),
        (
            "prior osteonecrosis",
            facts(hit("osteonecrosis", "Condition/avn"), planned=[Planned(28, 20)]),
            "prior",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_order_hooks(case: str, f: ClinicalFacts, summary: str | None) -> None:
    finding = run(ORDER_OSTEONECROSIS, f)
    assert (finding.summary if finding else None) == summary, case
