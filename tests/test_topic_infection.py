"""infection-prevention and live-vaccine safety as pure functions of facts and thresholds."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from cds_service.facts import ClinicalFacts, Hit
from cds_service.topics.infection import INFECTION, ORDER_INFECTION
from cds_service.topics.live_vaccine import LIVE_VACCINE
from tests.topic_support import Planned, Taken, facts, hit, run

HIGH_NOW = [Taken(ago=40, days=41, mg=40)]  # 40 mg/day for 41 days, today included
ALL_DONE: tuple[Hit, ...] = (
    hit("pjp_drugs", "MedicationRequest/tmp"),
    hit("tb_tests", "Observation/igra"),
    hit("hbv_tests", "Observation/hbsag", marker="hbsag"),
    hit("hbv_tests", "Observation/antihbc", marker="anti-hbc"),
    hit("hbv_tests", "Observation/antihbs", marker="anti-hbs"),
    hit("vaccines", "Immunization/rzv", ago=120, group="zoster-recombinant"),
    hit("vaccines", "Immunization/rzv2", ago=60, group="zoster-recombinant"),
    hit("vaccines", "Immunization/pcv", group="pneumococcal", product="pcv20"),
    hit("vaccines", "Immunization/flu", ago=100, group="influenza"),
)


def without(*refs: str) -> tuple[Hit, ...]:
    return tuple(h for h in ALL_DONE if h.ref not in refs)


@pytest.mark.parametrize(
    ("case", "f", "summary", "suggestions"),
    [
        ("5-day burst: silent", facts(taken=[Taken(4, 5, 60)]), None, None),
        ("everything on file: silent", facts(*ALL_DONE, taken=HIGH_NOW), None, None),
        (
            "no prophylaxis at 40 mg for 41 days",
            facts(*without("MedicationRequest/tmp"), taken=HIGH_NOW),
            "pjp",
            ("tmp-smx",),  # alternatives named in the detail, not buttons
        ),
        (
            "sulfa allergy: no TMP-SMX",
            facts(
                *without("MedicationRequest/tmp"),
                hit("sulfa_allergy", "AllergyIntolerance/sulfa"),
                taken=HIGH_NOW,
            ),
            "pjp",
            ("atovaquone",),
        ),
        (
            "sulfasalazine allergy: a sulfonylarylamine, no TMP-SMX",
            facts(
                *without("MedicationRequest/tmp"),
                hit("sulfa_allergy", "AllergyIntolerance/ssz"),
                taken=HIGH_NOW,
            ),
            "pjp",
            ("atovaquone",),
        ),
        ("no IGRA", facts(*without("Observation/igra"), taken=HIGH_NOW), "screening", ("igra",)),
        (
            "latent TB known: no IGRA asked",
            facts(*without("Observation/igra"), hit("latent_tb", "Condition/ltbi"), taken=HIGH_NOW),
            None,
            None,
        ),
        (
            "two of three HBV markers",
            facts(*without("Observation/antihbs"), taken=HIGH_NOW),
            "screening",
            ("hbv-panel",),
        ),
        (
            "influenza over a year ago",
            facts(
                *without("Immunization/flu"),
                hit("vaccines", "Immunization/old", ago=400, group="influenza"),
                taken=HIGH_NOW,
            ),
            "vaccines",
            ("influenza",),
        ),
        (
            "long-term 5 mg: vaccines, no PJP",
            facts(*without("Immunization/rzv", "Immunization/rzv2"), taken=[Taken(200, 201, 5)]),
            "vaccines",
            ("zoster",),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_patient_view(
    case: str, f: ClinicalFacts, summary: str | None, suggestions: tuple[str, ...] | None
) -> None:
    finding = run(INFECTION, f)
    assert (finding.summary if finding else None) == summary, case
    if finding is not None:
        assert finding.suggestions == suggestions, case
        assert finding.indicator == ("warning" if summary == "pjp" else "info")
        if summary == "pjp" and "tmp-smx" not in finding.suggestions:
            assert finding.recommended == ("atovaquone",)  # sulfonamide allergy: atovaquone


def test_second_immunosuppressant_strengthens_pjp_and_asks_for_vigilance() -> None:
    f = facts(
        *without("MedicationRequest/tmp"),
        hit("immunosuppressant_drugs", "MedicationRequest/mtx"),
        taken=HIGH_NOW,
    )
    finding = run(INFECTION, f)
    assert finding is not None
    assert {"pjp-stronger", "lung-vigilance"} <= set(finding.details)
    assert "MedicationRequest/mtx" in finding.evidence


def test_hydroxychloroquine_is_not_a_second_immunosuppressant() -> None:
    f = facts(
        *without("MedicationRequest/tmp"),
        hit("immunosuppressant_drugs", "MedicationRequest/hcq", immunosuppressive=False),
        taken=HIGH_NOW,
    )
    finding = run(INFECTION, f)
    assert finding is not None
    assert "pjp-stronger" not in finding.details


@pytest.mark.parametrize(
    ("case", "f", "summary"),
    [
        ("nothing ordered: silent", facts(taken=HIGH_NOW), None),
        ("40 mg for 27 days ordered: silent", facts(planned=[Planned(27, 40)]), None),
        ("40 mg for 28 days ordered", facts(planned=[Planned(28, 40)]), "pjp"),
        ("prophylaxis drafted alongside", facts(*ALL_DONE, planned=[Planned(28, 40)]), None),
        (
            "continuing a current course",
            facts(
                *without("Observation/igra"), taken=[Taken(20, 21, 40)], planned=[Planned(10, 40)]
            ),
            "screening",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_order_hooks(case: str, f: ClinicalFacts, summary: str | None) -> None:
    finding = run(ORDER_INFECTION, f)
    assert (finding.summary if finding else None) == summary, case


MMR = hit("vaccines", "Immunization/mmr", ago=0, live=True, group="mmr")
ZOSTER_LIVE = hit("vaccines", "Immunization/zvl", ago=0, live=True, group="zoster-live")


@pytest.mark.parametrize(
    ("case", "f", "removes"),
    [
        (
            "live vaccine drafted on 40 mg for 41 days",
            facts(MMR, taken=HIGH_NOW, focus=["Immunization/mmr"]),
            ("Immunization/mmr",),
        ),
        ("live vaccine not in focus: silent", facts(MMR, taken=HIGH_NOW), None),
        (
            "non-live vaccine: silent",
            facts(
                hit("vaccines", "Immunization/rzv", ago=0, group="zoster-recombinant"),
                taken=HIGH_NOW,
                focus=["Immunization/rzv"],
            ),
            None,
        ),
        (
            "13 days at 20 mg: silent",
            facts(MMR, taken=[Taken(12, 13, 20)], focus=["Immunization/mmr"]),
            None,
        ),
        (
            "stopped 20 days ago after 30 days at 40 mg",
            facts(MMR, taken=[Taken(50, 30, 40)], focus=["Immunization/mmr"]),
            ("Immunization/mmr",),
        ),
        (
            "stopped 40 days ago: silent",
            facts(MMR, taken=[Taken(70, 30, 40)], focus=["Immunization/mmr"]),
            None,
        ),
        (
            "drafted with a 14-day 20 mg order",
            facts(MMR, planned=[Planned(14, 20)], focus=["Immunization/mmr"]),
            ("Immunization/mmr",),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_live_vaccine(case: str, f: ClinicalFacts, removes: tuple[str, ...] | None) -> None:
    finding = run(LIVE_VACCINE, f)
    if removes is None:
        assert finding is None, case
        return
    assert finding is not None, case
    assert finding.indicator == "critical"
    assert finding.delete_targets == {"remove": removes}


def test_live_zoster_offers_the_recombinant_vaccine() -> None:
    f = facts(
        ZOSTER_LIVE,
        taken=HIGH_NOW,
        focus=["Immunization/zvl"],
        draft_names={"Immunization/zvl": "Zostavax"},
    )
    finding = run(LIVE_VACCINE, f)
    assert finding is not None
    assert finding.suggestions == ("remove", "zoster-recombinant")
    assert finding.facts["vaccines"] == "Zostavax"


def test_jynneos_is_not_a_live_vaccine_contraindication() -> None:
    """CVX 206 is replication-deficient (MMWR 2022;71:734): the value set marks it not live."""
    jynneos = hit("vaccines", "Immunization/mpox", ago=0, live=False, group="smallpox-mpox")
    f = facts(jynneos, taken=[Taken(40, 41, 30)], focus=["Immunization/mpox"])
    assert run(LIVE_VACCINE, f) is None


def test_pregnancy_offers_no_zoster_vaccine_instead_of_the_live_one() -> None:
    f = facts(
        ZOSTER_LIVE,
        hit("pregnancy", "Condition/preg", ago=60),
        taken=HIGH_NOW,
        focus=["Immunization/zvl"],
    )
    finding = run(LIVE_VACCINE, f)
    assert finding is not None
    assert finding.suggestions == ("remove",)
    assert "pregnancy" in finding.details
    assert "zoster-alternative" not in finding.details
    assert "Condition/preg" in finding.evidence


@pytest.mark.parametrize(
    ("mg", "detail"),
    [(30, "remove-defer"), (20, "remove-defer")],
)
def test_live_vaccine_card_defers_non_live_vaccines_at_20_mg(mg: float, detail: str) -> None:
    """ACR 2022 (clinical-knowledge-2.md 6.4): at 20 mg/day or more only influenza of the
    non-live vaccines is given now; the order card says what the infection card says."""
    f = facts(MMR, taken=[Taken(40, 41, mg)], focus=["Immunization/mmr"])
    finding = run(LIVE_VACCINE, f)
    assert finding is not None
    assert detail in finding.details
    assert {"remove", "remove-defer"} - {detail} & set(finding.details) == set()
    assert finding.facts["defer_mg"] == "20"


def unconfirmed(f: ClinicalFacts) -> ClinicalFacts:
    """The same record with its current course resting on an old order (nothing since)."""
    f.exposure = replace(
        f.exposure,
        courses=tuple(
            replace(c, unconfirmed_current=True, last_evidence_on=date(2024, 11, 20))
            for c in f.exposure.courses
        ),
    )
    return f


@pytest.mark.parametrize(
    ("case", "stale", "first"),
    [
        ("dispensed or recent: no question", False, None),
        ("old order only: confirm", True, "unconfirmed"),
    ],
)
def test_unconfirmed_course_asks_to_confirm_it_is_taken(
    case: str, stale: bool, first: str | None
) -> None:
    f = facts(age=75, taken=[Taken(ago=400, days=401, mg=7.5)])
    finding = run(INFECTION, unconfirmed(f) if stale else f)
    assert finding is not None, case
    assert (finding.details[0] == "unconfirmed") is stale, case
    if stale:
        assert finding.facts["unconfirmed_since"] == "2024-11-20"
        assert finding.facts["unconfirmed_mg"] == "7.5"
        assert finding.facts["unconfirmed_drug"] == "prednisone"
