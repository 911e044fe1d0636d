"""bone_assessment: one DXA paragraph (site, vertebral fracture assessment, last scan and
interval, then how to read it) or, with a DXA within the interval, the risk assessment from the
scan on record (clinical review 2a); known bone disease only when nothing asks for treatment."""

from __future__ import annotations

import pytest

from cds_service.facts import ClinicalFacts
from cds_service.steroid_status import SteroidStatus
from cds_service.topics.bone_assessment import READING, BoneWork, assessment
from cds_service.topics.bone_health import BONE_HEALTH, ORDER_BONE_HEALTH
from tests.topic_support import REPLACEMENT_DRUGS, THRESHOLDS, Planned, Taken, facts, hit, run

LONG_TERM = [Taken(ago=200, days=201, mg=10)]  # current, 10 mg/day
HIGH_DOSE = [Taken(ago=200, days=201, mg=40)]
LOW_DOSE = [Taken(ago=200, days=201, mg=5)]
BOTH_HIPS = hit("hip_prosthesis", "Procedure/thr", laterality="bilateral")
OLD_DXA = hit("bone_density", "Observation/old", ago=800, value=-1.6, score="z")
RECENT_DXA = hit("bone_density", "Observation/new", ago=100, value=-1.0, score="t")
OSTEOPENIA = hit("osteopenia", "Condition/osteopenia")


@pytest.mark.parametrize(
    ("case", "f", "dxa", "reading"),
    [
        ("no DXA, 37", facts(age=37, taken=LONG_TERM), "dxa-none", "read-under-40"),
        ("no DXA, 62", facts(age=62, taken=LONG_TERM), "dxa-none", "read-frax"),
        ("no DXA, 62, 40 mg", facts(age=62, taken=HIGH_DOSE), "dxa-none", "read-frax-high-dose"),
        # no FRAX multiplier below 7.5 mg/day (clinical review 2, finding 4; Kanis 2011)
        ("no DXA, 62, 5 mg", facts(age=62, taken=LOW_DOSE), "dxa-none", "read-frax-low-dose"),
        ("DXA current, 5 mg", facts(RECENT_DXA, age=62, taken=LOW_DOSE), None, "frax-low-dose"),
        ("old DXA", facts(OLD_DXA, age=37, taken=LONG_TERM), "dxa-due", "read-under-40"),
        ("hips, none", facts(BOTH_HIPS, age=55, taken=LONG_TERM), "dxa-none-hips", "read-frax"),
        (
            "hips, old DXA",
            facts(OLD_DXA, BOTH_HIPS, age=37, taken=LONG_TERM),
            "dxa-due-hips",
            "read-under-40",
        ),
        ("DXA current, 62", facts(RECENT_DXA, age=62, taken=LONG_TERM), None, "frax"),
        ("DXA current, 37", facts(RECENT_DXA, age=37, taken=LONG_TERM), None, "under-40"),
        ("DXA current, 40 mg", facts(RECENT_DXA, age=62, taken=HIGH_DOSE), None, "frax-high-dose"),
        ("age unknown", facts(age=None, taken=LONG_TERM), "dxa-none", "age-unknown"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_one_dxa_paragraph_then_how_to_read_it(
    case: str, f: ClinicalFacts, dxa: str | None, reading: str
) -> None:
    finding = run(BONE_HEALTH, f)
    assert finding is not None, case
    dxa_ids = {"dxa-none", "dxa-due", "dxa-none-hips", "dxa-due-hips"}
    assert [d for d in finding.details if d in dxa_ids] == ([dxa] if dxa else []), case
    assert reading in finding.details, case
    if reading in READING.values():  # the reading is a sentence right after the DXA order
        assert finding.details.index(reading) == finding.details.index(str(dxa)) + 1, case
        assert reading in BONE_HEALTH.sentences
    else:
        assert reading not in BONE_HEALTH.sentences
    assert "hips-replaced" not in BONE_HEALTH.details


def test_assessment_reads_the_scan_on_record_when_current() -> None:
    f = facts(RECENT_DXA, age=62, taken=LONG_TERM)
    status = SteroidStatus.of(f, THRESHOLDS, REPLACEMENT_DRUGS)
    work = BoneWork.of(f, THRESHOLDS)
    assert work.dxa_current
    assert assessment(f, status, THRESHOLDS, work) == "frax"
    assert work.dxa_advice("dxa-none") == ([], [])


@pytest.mark.parametrize(
    ("case", "f", "shown"),
    [
        (
            "treatment prompt says it: not repeated",
            facts(OSTEOPENIA, age=45, taken=LONG_TERM),
            False,
        ),
        (
            "under 40, osteopenia, low risk: decide on treatment",
            facts(OSTEOPENIA, age=30, taken=LONG_TERM),
            True,
        ),
        (
            "treated: nothing to decide",
            facts(
                OSTEOPENIA,
                hit("osteoporosis_drugs", "MedicationRequest/aln"),
                age=30,
                taken=LONG_TERM,
            ),
            False,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_known_bone_disease_only_when_nothing_asks_for_treatment(
    case: str, f: ClinicalFacts, shown: bool
) -> None:
    finding = run(BONE_HEALTH, f)
    assert finding is not None, case
    assert ("known-bone-disease" in finding.details) is shown, case


@pytest.mark.parametrize(
    ("case", "f", "detail", "summary"),
    [
        ("no DXA", facts(planned=[Planned(90, 10)]), "dxa-baseline", "dxa-baseline"),
        (
            "no DXA, hips",
            facts(BOTH_HIPS, planned=[Planned(90, 10)]),
            "dxa-baseline-hips",
            "dxa-baseline",
        ),
        (
            "old DXA, hips",
            facts(OLD_DXA, BOTH_HIPS, planned=[Planned(90, 10)], taken=LONG_TERM),
            "dxa-due-hips",
            "dxa-due",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_order_hooks_one_dxa_paragraph(
    case: str, f: ClinicalFacts, detail: str, summary: str
) -> None:
    finding = run(ORDER_BONE_HEALTH, f)
    assert finding is not None, case
    assert (finding.summary, detail in finding.details) == (summary, True), case
    dxa_ids = {"dxa-baseline", "dxa-due", "dxa-baseline-hips", "dxa-due-hips"}
    assert [d for d in finding.details if d in dxa_ids] == [detail], case


@pytest.mark.parametrize(
    ("case", "f", "prompt"),
    [
        (
            "moderate risk: oral bisphosphonate first line",
            facts(OSTEOPENIA, age=45, taken=LONG_TERM),
            "treatment",
        ),
        (
            "very high risk: anabolic preferred",
            facts(age=62, taken=HIGH_DOSE),
            "treatment-very-high",
        ),
        (
            "no birth date: decide once recorded",
            facts(age=None, taken=HIGH_DOSE),
            "treatment-age-unknown",
        ),
    ],
)
def test_the_treatment_prompt_fits_what_is_known(case: str, f: ClinicalFacts, prompt: str) -> None:
    """Clinical review 2, findings 6-7: at very high risk an anabolic agent is preferred (KB1
    A3); without a birth date no adult drug is started (a child needs a specialist, KB2 7.1)."""
    finding = run(BONE_HEALTH, f)
    assert finding is not None, case
    prompts = {"treatment", "treatment-very-high", "treatment-age-unknown"}
    assert [d for d in finding.details if d in prompts] == [prompt], case
