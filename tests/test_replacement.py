"""Physiological replacement (adrenal insufficiency) is not immunosuppression: no infection or
live-vaccine card on it alone; the bone card stays, informational, with a replacement note."""

from __future__ import annotations

import pytest

from cds_service.facts import ClinicalFacts
from cds_service.steroid_status import SteroidStatus
from cds_service.topics.bone_health import BONE_HEALTH
from cds_service.topics.infection import INFECTION
from tests.topic_support import REPLACEMENT_DRUGS, THRESHOLDS, Taken, facts, hit, run

HYDROCORTISONE, PREDNISONE, DEXAMETHASONE = "5492", "8640", "3264"
ADDISON = hit("adrenal_insufficiency", "Condition/e271")
CAH = hit("adrenal_insufficiency", "Condition/e250", cah=True)
MTX = hit("immunosuppressant_drugs", "MedicationRequest/mtx")


def status(f: ClinicalFacts) -> SteroidStatus:
    return SteroidStatus.of(f, THRESHOLDS, REPLACEMENT_DRUGS)


@pytest.mark.parametrize(
    ("case", "f", "replacement"),
    [
        # hydrocortisone 20 mg/day = 5 mg PEQ (x 1/4); the limit is 25 mg = 6.25 mg PEQ
        (
            "hydrocortisone 20 mg/day alone",
            facts(taken=[Taken(300, 301, 5, ingredient=HYDROCORTISONE)]),
            True,
        ),
        (
            "hydrocortisone 30 mg/day (7.5 PEQ)",
            facts(taken=[Taken(300, 301, 7.5, ingredient=HYDROCORTISONE)]),
            False,
        ),
        (
            "prednisone 5 mg/day without adrenal insufficiency",
            facts(taken=[Taken(300, 301, 5)]),
            False,
        ),
        ("prednisone 5 mg/day with Addison's", facts(ADDISON, taken=[Taken(300, 301, 5)]), True),
        (
            "prednisone 7.5 mg/day with Addison's",
            facts(ADDISON, taken=[Taken(300, 301, 7.5)]),
            False,
        ),
        ("prednisone 7.5 mg/day with CAH", facts(CAH, taken=[Taken(300, 301, 7.5)]), True),
        (
            "dexamethasone with Addison's: not a replacement drug here",
            facts(ADDISON, taken=[Taken(300, 301, 3, ingredient=DEXAMETHASONE)]),
            False,
        ),
        (
            "a supraphysiological course earlier in the year",
            facts(ADDISON, taken=[Taken(300, 30, 40), Taken(200, 201, 5)]),
            False,
        ),
        ("unknown dose", facts(ADDISON, taken=[Taken(300, 301, None)]), False),
        ("no glucocorticoid", facts(ADDISON), False),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_replacement_pattern(case: str, f: ClinicalFacts, replacement: bool) -> None:
    assert status(f).replacement is replacement, case


def test_replacement_gets_no_infection_card_but_an_informational_bone_card() -> None:
    f = facts(ADDISON, taken=[Taken(300, 301, 5, ingredient=HYDROCORTISONE)])
    assert run(INFECTION, f) is None
    bone = run(BONE_HEALTH, f)
    assert bone is not None
    assert bone.indicator == "info"
    assert "replacement" in bone.details


def test_replacement_with_a_second_immunosuppressant_still_gets_the_infection_card() -> None:
    f = facts(ADDISON, MTX, taken=[Taken(300, 301, 5, ingredient=HYDROCORTISONE)])
    assert run(INFECTION, f) is not None


def test_the_same_dose_without_replacement_keeps_its_cards() -> None:
    f = facts(taken=[Taken(300, 301, 5)])
    assert run(INFECTION, f) is not None
    bone = run(BONE_HEALTH, f)
    assert bone is not None
    assert "replacement" not in bone.details
