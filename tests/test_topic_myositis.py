"""myositis as pure functions of facts and thresholds (no FHIR, no HTTP)."""

from __future__ import annotations

import pytest

from cds_service.facts import ClinicalFacts, Hit
from cds_service.lab_results import Result
from cds_service.topics.myositis import MYOSITIS
from cds_service.valuesets import Coding, load_valuesets
from tests.topic_support import REPO, Taken, facts, hit, run

VALUESETS = load_valuesets(REPO / "hooks" / "valuesets")
DM_OLD = hit("myositis", "Condition/dm", ago=2000, subtype="dm")  # onset 5.5 years ago
DM_NEW = hit("myositis", "Condition/dm", ago=200, subtype="dm")
PM_NEW = hit("myositis", "Condition/pm", ago=200, subtype="pm")
JDM = hit("myositis", "Condition/jdm", ago=1500, subtype="jdm")
ASYS = hit("myositis", "Condition/asys", ago=2000, subtype="antisynthetase")
ILD_OLD = hit("ild", "Condition/ild", ago=1500)
ILD_NEW = hit("ild", "Condition/ild", ago=100)
CK_RECENT = hit("muscle_enzymes", "Observation/ck", ago=30, value=150, analyte="ck")
PFT_RECENT = hit("pulmonary_function", "Observation/fvc", ago=60, value=2.9, analyte="fvc")
HRCT = hit("chest_ct", "Procedure/hrct", ago=700, hrct=True)
SCREENED = hit("cancer_screening", "Procedure/ct-cap", ago=150)


def pft(ago: int) -> Hit:
    return hit("pulmonary_function", f"Observation/fvc-{ago}", ago=ago, value=3.0, analyte="fvc")


@pytest.mark.parametrize(
    ("case", "f", "summary", "suggestions"),
    [
        ("no myositis: silent", facts(CK_RECENT, PFT_RECENT), None, ()),
        (
            "inactive myositis entry alone: silent",
            facts(hit("myositis", "Condition/dm", ago=2000, active=False, subtype="dm")),
            None,
            (),
        ),
        (
            "long-standing DM, everything done: silent",
            facts(DM_OLD, PFT_RECENT, HRCT, CK_RECENT, age=50),
            None,
            (),
        ),
        (
            "long-standing DM, nothing done: lung screen and enzymes, no cancer screening",
            facts(DM_OLD, age=50),
            "lung-screen",
            ("pft", "hrct", "muscle-enzymes"),
        ),
        (
            "DM with ILD for 4 years, PFT 300 days ago: within the stable 12 months",
            facts(DM_OLD, ILD_OLD, pft(300), CK_RECENT, age=50),
            None,
            (),
        ),
        (
            "DM with ILD for 4 years, PFT 400 days ago: overdue",
            facts(DM_OLD, ILD_OLD, pft(400), CK_RECENT, age=50),
            "pft-due",
            ("pft",),
        ),
        (
            "ILD in its first year, PFT 200 days ago: overdue at 6 months",
            facts(DM_OLD, ILD_NEW, pft(200), CK_RECENT, age=50),
            "pft-due",
            ("pft",),
        ),
        (
            "ILD in its first year, PFT 170 days ago: up to date",
            facts(DM_OLD, ILD_NEW, pft(170), CK_RECENT, age=50),
            None,
            (),
        ),
        (
            "ILD from the myositis code's ild property, no PFT ever",
            facts(
                hit("myositis", "Condition/dm-ild", ago=2000, subtype="dm", ild=True),
                CK_RECENT,
                age=50,
            ),
            "pft-none",
            ("pft",),
        ),
        (
            "ILD known: no HRCT suggestion (clinically indicated only)",
            facts(DM_OLD, ILD_OLD, CK_RECENT, age=50),
            "pft-none",
            ("pft",),
        ),
        (
            "antisynthetase without ILD code: PFTs on the ILD schedule and a baseline HRCT",
            facts(ASYS, pft(400), CK_RECENT, age=50),
            "pft-due",
            ("pft", "hrct"),
        ),
        (
            "new-onset DM at 55 without screening: enhanced panel leads",
            facts(DM_NEW, PFT_RECENT, HRCT, CK_RECENT, age=55),
            "cancer-enhanced",
            ("cancer-screening-enhanced",),
        ),
        (
            "new-onset PM at 30, no risk feature: basic panel",
            facts(PM_NEW, PFT_RECENT, HRCT, CK_RECENT, age=30),
            "cancer-basic",
            ("cancer-screening-basic",),
        ),
        (
            "new-onset PM at 30 with dysphagia: enhanced panel",
            facts(PM_NEW, hit("dysphagia", "Condition/dys"), PFT_RECENT, HRCT, CK_RECENT, age=30),
            "cancer-enhanced",
            ("cancer-screening-enhanced",),
        ),
        (
            "new-onset DM, screened since onset: silent",
            facts(DM_NEW, SCREENED, PFT_RECENT, HRCT, CK_RECENT, age=55),
            None,
            (),
        ),
        (
            "new-onset PM at 16 (juvenile onset): no cancer screening",
            facts(PM_NEW, PFT_RECENT, HRCT, CK_RECENT, age=16),
            None,
            (),
        ),
        (
            "JDM at 14: enzymes only (no adult ILD screening, never cancer screening)",
            facts(JDM, age=14),
            "enzymes",
            ("muscle-enzymes",),
        ),
        (
            "JDM at 17: the ILD screening guideline applies",
            facts(JDM, age=17),
            "lung-screen",
            ("pft", "hrct", "muscle-enzymes"),
        ),
        (
            "CK 100 days ago: enzymes due",
            facts(
                DM_OLD,
                PFT_RECENT,
                HRCT,
                hit("muscle_enzymes", "Observation/ck", ago=100, value=150, analyte="ck"),
                age=50,
            ),
            "enzymes",
            ("muscle-enzymes",),
        ),
        (
            "aldolase 30 days ago counts as enzymes done",
            facts(
                DM_OLD,
                PFT_RECENT,
                HRCT,
                hit("muscle_enzymes", "Observation/ald", ago=30, value=5, analyte="aldolase"),
                age=50,
            ),
            None,
            (),
        ),
        (
            "a CK matched by text only (no analyte) counts as done",
            facts(DM_OLD, PFT_RECENT, HRCT, hit("muscle_enzymes", "Observation/ck-local"), age=50),
            None,
            (),
        ),
        (
            "an anti-Jo-1 result without a positive reading does not make ILD",
            facts(
                DM_OLD,
                hit("ild_antibodies", "Observation/jo1", antibody="jo-1"),
                pft(400),
                HRCT,
                CK_RECENT,
                age=50,
            ),
            None,
            (),
        ),
        (
            "a drafted PFT order counts as done",
            facts(
                DM_OLD,
                ILD_OLD,
                hit("pulmonary_function", "ServiceRequest/pft", ago=0),
                CK_RECENT,
                age=50,
            ),
            None,
            (),
        ),
    ],
)
def test_myositis_card(
    case: str, f: ClinicalFacts, summary: str | None, suggestions: tuple[str, ...]
) -> None:
    finding = run(MYOSITIS, f)
    if summary is None:
        assert finding is None, case
        return
    assert finding is not None, case
    assert finding.summary == summary, case
    assert finding.suggestions == suggestions, case


def test_no_glucocorticoid_needed_and_warning_on_lung_or_cancer() -> None:
    finding = run(MYOSITIS, facts(DM_NEW, age=55))
    assert finding is not None
    assert finding.indicator == "warning"
    assert finding.summary == "cancer-enhanced"
    assert finding.suggestions[0] == "pft"
    assert "Condition/dm" in finding.evidence
    enzymes_only = run(MYOSITIS, facts(DM_OLD, PFT_RECENT, HRCT, age=50))
    assert enzymes_only is not None
    assert enzymes_only.indicator == "info"


def test_risk_features_listed_and_cited() -> None:
    ulcer = hit("cutaneous_ulceration", "Condition/ulcer")
    finding = run(MYOSITIS, facts(DM_NEW, ulcer, PFT_RECENT, HRCT, CK_RECENT, age=45))
    assert finding is not None
    assert finding.facts["risk_features"] == (
        "dermatomyositis, onset after age 40, cutaneous ulceration"
    )
    assert {"Condition/ulcer", "Condition/dm"} <= set(finding.evidence)


@pytest.mark.parametrize(
    ("detail", "f"),
    [
        ("cancer-past-window", facts(DM_OLD, age=50)),
        ("cancer-juvenile", facts(JDM, age=14)),
        ("lung-ild", facts(DM_OLD, ILD_OLD, age=50)),
        ("lung-ild-risk", facts(ASYS, age=50)),
        ("pft-values", facts(DM_OLD, ILD_OLD, pft(400), age=50)),
    ],
)
def test_details(detail: str, f: ClinicalFacts) -> None:
    finding = run(MYOSITIS, f)
    assert finding is not None
    assert detail in finding.details


def test_pft_values_and_ck_trend_shown() -> None:
    f = facts(
        DM_OLD,
        ILD_OLD,
        hit("pulmonary_function", "Observation/fvc", ago=400, value=2.85, analyte="fvc"),
        hit("pulmonary_function", "Observation/dlco", ago=400, value=14.2, analyte="dlco"),
        hit("muscle_enzymes", "Observation/ck1", ago=300, value=900, analyte="ck"),
        hit("muscle_enzymes", "Observation/ck2", ago=120, value=400, analyte="ck"),
        age=50,
    )
    finding = run(MYOSITIS, f)
    assert finding is not None
    assert finding.facts["last_fvc"] == "2.85 (2025-10-20)"
    assert finding.facts["last_dlco"] == "14.2 (2025-10-20)"
    assert finding.facts["ck_trend"] == "falling from 900 on 2026-01-28"
    assert finding.facts["pft_interval_months"] == "12"


@pytest.mark.parametrize(
    ("ck", "mg", "weak", "remark"),
    [
        (150, 40, True, True),
        (150, 10, True, False),  # not a high dose
        (900, 40, True, False),  # CK raised: active myositis, not steroid myopathy
        (150, 40, False, False),  # no weakness on record
    ],
)
def test_steroid_myopathy_remark(ck: float, mg: float, weak: bool, remark: bool) -> None:
    extra = [hit("muscle_weakness", "Condition/weak")] if weak else []
    f = facts(
        DM_OLD,
        hit("muscle_enzymes", "Observation/ck", ago=100, value=ck, analyte="ck"),
        *extra,
        age=50,
        taken=[Taken(ago=40, days=41, mg=mg)],
    )
    finding = run(MYOSITIS, f)
    assert finding is not None
    assert ("steroid-myopathy" in finding.details) is remark
    if remark:
        assert "Condition/weak" in finding.evidence
        assert "MedicationRequest/gc" in finding.evidence


@pytest.mark.parametrize(
    ("result", "state"),
    [("positive", "ild-risk"), ("negative", "none"), ("unclear", "none"), (None, "none")],
)
def test_only_a_positive_ild_antibody_counts(result: Result | None, state: str) -> None:
    jo1 = hit("ild_antibodies", "Observation/jo1", ago=200, result=result, antibody="jo-1")
    finding = run(MYOSITIS, facts(DM_OLD, jo1, pft(300), HRCT, CK_RECENT, age=50))
    if state == "none":
        assert finding is None  # a baseline PFT and HRCT are on file: screening done
        return
    assert finding is not None
    assert finding.summary == "pft-due"  # first year after the antibody: every 6 months
    assert "lung-ild-risk" in finding.details
    assert "Observation/jo1" in finding.evidence


def test_positive_tif1_gamma_is_a_risk_feature() -> None:
    tif1 = hit("tif1_gamma_antibody", "Observation/tif1", result="positive")
    finding = run(MYOSITIS, facts(PM_NEW, tif1, PFT_RECENT, HRCT, CK_RECENT, age=30))
    assert finding is not None
    assert finding.summary == "cancer-enhanced"
    assert finding.facts["risk_features"] == "anti-TIF1-gamma"
    negative = hit("tif1_gamma_antibody", "Observation/tif1", result="negative")
    basic = run(MYOSITIS, facts(PM_NEW, negative, PFT_RECENT, HRCT, CK_RECENT, age=30))
    assert basic is not None
    assert basic.summary == "cancer-basic"


def test_units_shown_and_a_ck_in_another_unit_is_not_called_normal() -> None:
    fvc = hit(
        "pulmonary_function", "Observation/fvc", ago=400, value=2.85, value_unit="L", analyte="fvc"
    )
    ck = hit(
        "muscle_enzymes", "Observation/ck", ago=100, value=2.5, value_unit="ukat/L", analyte="ck"
    )
    weak = hit("muscle_weakness", "Condition/weak")
    finding = run(
        MYOSITIS,
        facts(DM_OLD, ILD_OLD, fvc, ck, weak, age=50, taken=[Taken(ago=40, days=41, mg=40)]),
    )
    assert finding is not None
    assert finding.facts["last_fvc"] == "2.85 L (2025-10-20)"
    assert finding.facts["last_ck"] == "2.5 ukat/L (2026-08-16)"
    assert "steroid-myopathy" not in finding.details


@pytest.mark.parametrize(
    ("valueset", "text", "matches"),
    [
        ("myositis-ild-antibodies", "Anti-Jo-1 antibody", True),
        ("myositis-ild-antibodies", "PL-12 Ab (local)", True),
        ("myositis-ild-antibodies", "MDA5 (CADM-140) antibody, immunoprecipitation", True),
        ("myositis-ild-antibodies", "Mi-2 antibody", False),
        ("anti-tif1-gamma", "TIF1-gamma (p155/140) antibody", True),
        ("muscle-enzymes", "CPK total", True),
        ("muscle-enzymes", "CK-MB", False),
        ("pulmonary-function", "DLCO % predicted", True),
        ("chest-ct", "HRCT chest", True),
        ("chest-ct", "CT abdomen and pelvis", False),
        ("myositis-cancer-screening", "CT chest, abdomen and pelvis", True),
        ("myositis-cancer-screening", "Screening mammogram", False),
        ("cutaneous-ulceration", "Digital ulcers", True),
        ("cutaneous-ulceration", "Peptic ulcer disease", False),
        ("muscle-weakness", "Proximal muscle weakness", True),
    ],
)
def test_local_codes_are_matched_by_text(valueset: str, text: str, matches: bool) -> None:
    """Results and entries under local codes (myositis antibodies often are) match by text."""
    local = Coding(system="urn:example:local-lab", code="X1", display=None)
    assert (VALUESETS[valueset].match([local], text) is not None) is matches


PREGNANT = hit("pregnancy", "Condition/preg", ago=60)


@pytest.mark.parametrize(
    ("case", "f", "suggestions"),
    [
        (
            "recent DM, nothing done: PFT and enzymes kept, HRCT and enhanced CT panel held",
            facts(DM_NEW, PREGNANT, age=35),
            ("pft", "muscle-enzymes"),
        ),
        (
            "only the HRCT missing: the card still speaks, with no order",
            facts(DM_OLD, PFT_RECENT, CK_RECENT, PREGNANT, age=50),
            (),
        ),
    ],
)
def test_pregnancy_holds_ct_based_orders(
    case: str, f: ClinicalFacts, suggestions: tuple[str, ...]
) -> None:
    """Pregnancy changes the advice (clinical-knowledge-2.md 2.6): no HRCT or CT-based enhanced
    cancer screening button, and the card asks to agree imaging with obstetrics first."""
    finding = run(MYOSITIS, f)
    assert finding is not None, case
    assert finding.suggestions == suggestions, case
    assert finding.details[:2] == ("myositis", "pregnancy"), case
    assert "hrct-screen" not in finding.details, case
    assert "Condition/preg" in finding.evidence, case


def test_pregnancy_text_asks_for_no_ct() -> None:
    """The held HRCT and CT panel leave the text too (clinical review 2, finding 1): the lung
    screen asks for PFTs only, the cancer screen starts without CT."""
    finding = run(MYOSITIS, facts(DM_NEW, PREGNANT, age=35))
    assert finding is not None
    assert "lung-screen-pregnancy" in finding.details
    assert "cancer-pregnancy" in finding.details
    assert not {"lung-screen", "cancer-enhanced", "hrct-screen"} & set(finding.details)
    assert finding.summary == "cancer-pregnancy"


def test_not_pregnant_keeps_the_ct_orders_and_says_hrct_once() -> None:
    finding = run(MYOSITIS, facts(DM_NEW, age=35))
    assert finding is not None
    assert {"hrct", "cancer-screening-enhanced"} <= set(finding.suggestions)
    assert "pregnancy" not in finding.details
    # lung-screen already asks for the HRCT: no second paragraph (clinical review 2f)
    assert "lung-screen" in finding.details
    assert "hrct-screen" not in finding.details


def test_enzymes_never_measured_read_none_on_record() -> None:
    finding = run(MYOSITIS, facts(DM_OLD, PFT_RECENT, HRCT, age=50))
    assert finding is not None
    assert "enzymes-none" in finding.details
    assert "enzymes-due" not in finding.details
