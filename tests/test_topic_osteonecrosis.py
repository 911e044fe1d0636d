"""osteonecrosis as pure functions of facts and thresholds."""

from __future__ import annotations

import pytest

from cds_service.facts import ClinicalFacts, Hit
from cds_service.rule_kind import Finding
from cds_service.topics.osteonecrosis import ORDER_OSTEONECROSIS, OSTEONECROSIS
from cds_service.topics.patient_context import Site, joints_of, pain_sites, side_of
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
    # multifocal says what prior would (other sites), with MRI to consider without symptoms
    assert {"multifocal", "hips-replaced"} <= set(finding.details)
    assert "prior" not in finding.details
    assert "mri-knee" in finding.suggestions
    assert {"Condition/avn", "Procedure/thr"} <= set(finding.evidence)


def test_prior_necrosis_elsewhere_keeps_the_prior_paragraph() -> None:
    f = facts(hit("osteonecrosis", "Condition/avn", site="shoulder"), taken=[Taken(30, 10, 5)])
    finding = run(OSTEONECROSIS, f)
    assert finding is not None
    assert "prior" in finding.details
    assert "multifocal" not in finding.details


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


# ---------------------------------------------------------------------------------------------
# Replaced joints and sides (clinical-knowledge-2.md 9): every prosthesis is kept out of MRI, a
# painful one gets radiographs, ESR/CRP and orthopaedic review; MRI orders carry the side.

HIGH = [Taken(100, 28, 20)]
BOTH_HIPS = hit("hip_prosthesis", "Condition/hips", laterality="bilateral")


def pain(ref: str, *location: str) -> list[Hit]:
    """A joint-pain entry with its joint-site and laterality role hits (as the facts step
    reads them from the code text or bodySite), e.g. pain("Condition/p", "knee", "right")."""
    hits = [hit("joint_pain", ref)]
    for word in location:
        role = (
            f"laterality_{word}" if word in ("left", "right", "bilateral") else f"joint_site_{word}"
        )
        hits.append(hit(role, ref))
    return hits


def on(*hits: Hit) -> Finding:
    finding = run(OSTEONECROSIS, facts(*hits, taken=HIGH))
    assert finding is not None
    return finding


def test_issue_case_both_hips_and_right_knee_replaced_right_knee_pain() -> None:
    finding = on(
        BOTH_HIPS,
        hit("knee_prosthesis", "Condition/knee", laterality="right"),
        *pain("Condition/p", "knee", "right"),
    )
    assert finding.summary == "prosthesis-pain"
    assert finding.indicator == "warning"
    assert finding.suggestions == (
        "xray-knee-right",
        "pji-bloods",
        "orthopaedic-review",
        "mri-knee-left",
        "mri-other-joint",
    )
    assert finding.recommended == ("xray-knee-right",)
    assert finding.facts["painful_prostheses"] == "right knee"
    assert finding.facts["replaced_joints"] == "left hip, right hip, right knee"
    assert {"prosthesis-pain", "hips-replaced", "prostheses"} <= set(finding.details)
    assert {"Condition/knee", "Condition/hips", "Condition/p"} <= set(finding.evidence)


@pytest.mark.parametrize("joint", ["hip", "knee", "shoulder", "ankle", "elbow"])
@pytest.mark.parametrize("side", ["left", "right"])
def test_every_painful_prosthesis_is_worked_up_not_imaged(joint: str, side: str) -> None:
    finding = on(
        hit(f"{joint}_prosthesis", "Condition/z96", laterality=side),
        *pain("Condition/p", joint, side),
    )
    assert finding.summary == "prosthesis-pain"
    assert finding.suggestions[:3] == (f"xray-{joint}-{side}", "pji-bloods", "orthopaedic-review")
    assert f"mri-{joint}-{side}" not in finding.suggestions
    assert finding.facts["painful_prostheses"] == f"{side} {joint}"


@pytest.mark.parametrize(
    ("joint", "side", "key"),
    [
        ("knee", "left", "mri-knee-left"),
        ("hip", "right", "mri-hip-right"),
        ("shoulder", "right", "mri-shoulder-right"),
        ("ankle", "left", "mri-ankle-left"),
        ("elbow", "left", "mri-other-joint"),  # no sided elbow MRI: the detail names it
        ("knee", None, "mri-knee"),
        ("shoulder", None, "mri-other-joint"),
    ],
)
def test_painful_native_joint_gets_mri_of_that_joint_and_side(
    joint: str, side: str | None, key: str
) -> None:
    location = [joint, side] if side else [joint]
    finding = on(*pain("Condition/p", *location))
    assert finding.summary == "pain-joint"
    assert finding.suggestions[0] == key
    assert finding.recommended == (key,)
    assert finding.facts["painful_native"] == (f"{side} {joint}" if side else joint)
    assert "pain-native" in finding.details


def test_pain_side_unknown_with_one_knee_replaced_offers_both_and_says_so() -> None:
    finding = on(
        hit("knee_prosthesis", "Condition/knee", laterality="right"), *pain("Condition/p", "knee")
    )
    assert finding.summary == "prosthesis-pain"
    assert {"xray-knee-right", "mri-knee-left"} <= set(finding.suggestions)
    assert "prosthesis-side-unclear" in finding.details


def test_prosthesis_of_unknown_side_is_taken_as_the_painful_one() -> None:
    finding = on(
        hit("knee_prosthesis", "Procedure/tka", laterality="unknown"),
        *pain("Condition/p", "knee", "left"),
    )
    assert finding.suggestions[0] == "xray-knee-left"
    assert "mri-knee-left" not in finding.suggestions
    assert "prosthesis-side-unclear" in finding.details


def test_both_knees_painful_one_replaced() -> None:
    finding = on(
        hit("knee_prosthesis", "Condition/knee", laterality="right"),
        *pain("Condition/p", "knee", "bilateral"),
    )
    assert {"xray-knee-right", "mri-knee-left"} <= set(finding.suggestions)
    assert finding.facts["painful_prostheses"] == "right knee"
    assert finding.facts["painful_native"] == "left knee"


def test_text_only_prosthesis_takes_its_side_from_the_laterality_roles() -> None:
    finding = on(
        hit("knee_prosthesis", "Procedure/tka"),  # a text match: no laterality property
        hit("laterality_left", "Procedure/tka"),
        *pain("Condition/p", "knee", "left"),
    )
    assert finding.suggestions[0] == "xray-knee-left"
    assert "prosthesis-side-unclear" not in finding.details


def test_several_joints_and_both_sides_named_leave_each_side_unknown() -> None:
    # "Right hip and left knee pain": which side is which joint is not known.
    finding = on(*pain("Condition/p", "hip", "knee", "left", "right"))
    assert {"mri-hip", "mri-knee"} <= set(finding.suggestions)
    assert not {"mri-hip-left", "mri-hip-right", "mri-knee-left", "mri-knee-right"} & set(
        finding.suggestions
    )


def test_one_hip_replaced_names_the_native_hip() -> None:
    finding = on(hit("hip_prosthesis", "Condition/z96641", laterality="right"))
    assert finding.suggestions == ("mri-hip-left", "mri-other-joint")
    assert finding.summary == "risk"


def test_unlocated_pain_keeps_the_generic_card() -> None:
    finding = on(hit("joint_pain", "Condition/arthralgia"))
    assert finding.summary == "pain"
    assert finding.suggestions == ("mri-hip", "mri-other-joint")
    assert finding.recommended == ()


def test_other_prostheses_are_listed_and_cited_without_pain() -> None:
    finding = on(
        BOTH_HIPS,
        hit("ankle_prosthesis", "Condition/ankle", laterality="right"),
        hit("elbow_prosthesis", "Condition/elbow", laterality="left"),
    )
    assert finding.summary == "both-hips-replaced"
    assert finding.indicator == "info"
    assert "prostheses" in finding.details
    assert finding.facts["replaced_joints"] == "left hip, right hip, right ankle, left elbow"
    assert {"Condition/ankle", "Condition/elbow"} <= set(finding.evidence)


def test_both_knees_replaced_after_both_hips_drops_knee_mri() -> None:
    finding = on(BOTH_HIPS, hit("knee_prosthesis", "Condition/knees", laterality="bilateral"))
    assert finding.suggestions == ("mri-other-joint",)


def test_pain_sites_reader() -> None:
    f = facts(
        *pain("Condition/a", "knee", "right"),
        *pain("Condition/b"),
        hit("joint_pain", "Condition/c", active=False),
        hit("osteonecrosis", "Condition/avn", site="hip", laterality="left"),
    )
    assert pain_sites(f) == [
        Site("knee", "right", "Condition/a"),
        Site(None, "unknown", "Condition/b"),
    ]
    [avn] = f.of("osteonecrosis")
    assert (joints_of(f, avn), side_of(f, avn)) == ({"hip"}, "left")
