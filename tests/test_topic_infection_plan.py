"""infection-prevention, results and clinical context: what each TB and hepatitis B result calls
for, TMP-SMX fitted to kidney function, methotrexate and pregnancy, and rituximab as current
immunosuppression (topics/infection_plan.py through the patient-view and order kinds)."""

from __future__ import annotations

import pytest

from cds_service.facts import Hit
from cds_service.lab_results import Result
from cds_service.topics.infection import INFECTION, ORDER_INFECTION
from cds_service.topics.infection_plan import hbv_risk
from cds_service.topics.patient_context import lab_state
from tests.topic_support import THRESHOLDS, Planned, Taken, facts, hit, run

EGFR = "mL/min/{1.73_m2}"
AT_20 = [Taken(ago=60, days=61, mg=20)]  # 20 mg/day for 61 days, today included
AT_10 = [Taken(ago=200, days=201, mg=10)]
AT_40 = [Taken(ago=40, days=41, mg=40)]
NEGATIVE: Result = "negative"

# Everything done but the item under test: prophylaxis, negative TB and HBV results, vaccines.
DONE: dict[str, Hit] = {
    "pjp": hit("pjp_drugs", "MedicationRequest/atq", agent="atovaquone"),
    "tb": hit("tb_tests", "Observation/igra", result=NEGATIVE, test="igra"),
    "hbsag": hit("hbv_tests", "Observation/hbsag", result=NEGATIVE, marker="hbsag"),
    "anti-hbc": hit("hbv_tests", "Observation/antihbc", result=NEGATIVE, marker="anti-hbc"),
    "anti-hbs": hit("hbv_tests", "Observation/antihbs", result="positive", marker="anti-hbs"),
    "rzv1": hit("vaccines", "Immunization/rzv1", ago=200, group="zoster-recombinant"),
    "rzv2": hit("vaccines", "Immunization/rzv2", ago=140, group="zoster-recombinant"),
    "pcv": hit("vaccines", "Immunization/pcv", ago=200, group="pneumococcal", product="pcv20"),
    "flu": hit("vaccines", "Immunization/flu", ago=40, group="influenza"),
}


def done(*but: str) -> tuple[Hit, ...]:
    return tuple(h for key, h in DONE.items() if key not in but)


def kidney(value: float, *, ago: int = 10, unit: str = EGFR) -> Hit:
    return hit(
        "kidney_function",
        "Observation/egfr",
        ago=ago,
        value=value,
        value_unit=unit,
        measure="egfr",
        unit=EGFR,
        label="eGFR (CKD-EPI 2021)",
    )


def test_everything_done_is_silent() -> None:
    assert run(INFECTION, facts(*done(), taken=AT_20)) is None


# ---------------------------------------------------------------------------------------------
# Tuberculosis results


@pytest.mark.parametrize(
    ("case", "tb", "extra", "summary", "detail", "suggestions"),
    [
        ("positive IGRA, nothing on record", "positive", (), "tb-positive", "tb-positive", ("chest-xray",)),
        ("positive IGRA, latent TB coded", "positive", (hit("latent_tb", "Condition/ltbi", kind="ltbi"),), None, None, None),
        ("positive IGRA, isoniazid on record", "positive", (hit("ltbi_drugs", "MedicationRequest/inh", active=False),), None, None, None),
        ("indeterminate IGRA", "indeterminate", (), "results", "tb-indeterminate", ("igra-repeat",)),
        ("value without interpretation", "unclear", (), "results", "tb-unclear", ()),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_tb_result(
    case: str,
    tb: Result,
    extra: tuple[Hit, ...],
    summary: str | None,
    detail: str | None,
    suggestions: tuple[str, ...] | None,
) -> None:
    result = hit("tb_tests", "Observation/igra-new", ago=20, result=tb, test="igra")
    finding = run(INFECTION, facts(*done("tb"), result, *extra, taken=AT_20))
    if summary is None:
        assert finding is None, case
        return
    assert finding is not None, case
    assert finding.summary == summary
    assert detail in finding.details
    assert finding.suggestions == suggestions
    assert "igra" not in finding.suggestions  # a test on file is never ordered again
    assert "Observation/igra-new" in finding.evidence
    assert finding.indicator == ("warning" if tb == "positive" else "info")


def test_positive_tb_test_stays_positive_after_a_later_negative() -> None:
    f = facts(
        *done("tb"),
        hit("tb_tests", "Observation/igra-pos", ago=700, result="positive"),
        hit("tb_tests", "Observation/igra-neg", ago=20, result=NEGATIVE),
        taken=AT_20,
    )
    finding = run(INFECTION, f)
    assert finding is not None
    assert finding.summary == "tb-positive"
    assert finding.facts["tb_date"] == "2024-12-24"


def test_pending_tb_test_is_not_ordered_again() -> None:
    order = hit("tb_tests", "ServiceRequest/igra", ago=3, result="pending")
    assert run(INFECTION, facts(*done("tb"), order, taken=AT_20)) is None
    # Shown, with its date, when the card is due for something else.
    finding = run(INFECTION, facts(*done("tb", "flu"), order, taken=AT_20))
    assert finding is not None
    assert "tb-pending" in finding.details
    assert "igra" not in finding.suggestions


@pytest.mark.parametrize(
    ("ago", "state"),
    [(30, "negative"), (365, "negative"), (366, "old")],
)
def test_a_negative_test_is_done_for_a_year(ago: int, state: str) -> None:
    f = facts(hit("tb_tests", "Observation/igra", ago=ago, result=NEGATIVE))
    assert (
        lab_state(f, f.of("tb_tests"), THRESHOLDS.value("infection.tb_result_valid_days")).state
        == state
    )


def test_an_old_negative_asks_for_a_new_test() -> None:
    old = hit("tb_tests", "Observation/igra-old", ago=500, result=NEGATIVE)
    finding = run(INFECTION, facts(*done("tb"), old, taken=AT_20))
    assert finding is not None
    assert "tb-old" in finding.details
    assert finding.suggestions == ("igra",)


def test_same_day_interpretation_wins_over_an_unreadable_number() -> None:
    """A QuantiFERON panel: the interpretation is negative, the raw antigen value unreadable."""
    f = facts(
        hit("tb_tests", "Observation/qft", ago=5, result=NEGATIVE, test="igra"),
        hit("tb_tests", "Observation/qft-tb1", ago=5, result="unclear", test="igra-quantitative"),
    )
    assert lab_state(f, f.of("tb_tests"), 365).state == "negative"


# ---------------------------------------------------------------------------------------------
# Hepatitis B results (AGA 2015 risk classes)

RITUXIMAB = hit("b_cell_depletion", "MedicationAdministration/rtx", ago=120)
ANTI_HBC_POS = hit(
    "hbv_tests",
    "Observation/antihbc-pos",
    ago=20,
    result="positive",
    marker="anti-hbc",
    label="anti-HBc",
)


def test_anti_hbc_positive_with_rituximab_four_months_ago_is_high_risk() -> None:
    """The issue's case: rituximab 1 g x 2 four months ago, anti-HBc+, HBsAg-, 10 mg/day."""
    f = facts(*done("anti-hbc"), ANTI_HBC_POS, RITUXIMAB, taken=AT_10)
    finding = run(INFECTION, f)
    assert finding is not None
    assert finding.summary == "hbv"
    assert finding.indicator == "warning"
    assert {"hbv-positive", "hbv-risk-high", "hbv-b-cell", "hbv-dna"} <= set(finding.details)
    assert finding.suggestions == ("hbv-dna", "hbv-referral")
    assert {"Observation/antihbc-pos", "MedicationAdministration/rtx"} <= set(finding.evidence)
    assert finding.facts["hbv_positive"] == "anti-HBc"
    assert finding.facts["b_cell_months"] == "12"


@pytest.mark.parametrize(
    ("case", "hits", "taken", "tier"),
    [
        ("HBsAg+ at 20 mg for 61 days", (hit("hbv_tests", "Observation/s", result="positive", marker="hbsag"),), AT_20, "high"),
        ("HBsAg+ at 5 mg", (hit("hbv_tests", "Observation/s", result="positive", marker="hbsag"),), [Taken(200, 201, 5)], "moderate"),
        ("anti-HBc+ at 10 mg for 201 days", (ANTI_HBC_POS,), AT_10, "moderate"),
        ("anti-HBc+ at 5 mg", (ANTI_HBC_POS,), [Taken(200, 201, 5)], "low"),
        ("anti-HBc+ with rituximab", (ANTI_HBC_POS, RITUXIMAB), [Taken(200, 201, 5)], "high"),
        ("HBV DNA detectable", (ANTI_HBC_POS, hit("hbv_tests", "Observation/dna", result="positive", marker="hbv-dna")), AT_10, "dna-detected"),
        ("chronic hepatitis B coded", (hit("hepatitis_b", "Condition/hbv"),), [Taken(200, 201, 5)], "moderate"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_hbv_risk_class(case: str, hits: tuple[Hit, ...], taken: list[Taken], tier: str) -> None:
    f = facts(*done("hbsag", "anti-hbc"), *hits, taken=taken)
    finding = run(INFECTION, f)
    assert finding is not None, case
    assert finding.summary == "hbv"
    assert f"hbv-risk-{tier}" in finding.details
    assert finding.indicator == ("info" if tier == "low" else "warning")
    assert ("hbv-referral" in finding.suggestions) is (tier != "low")


def test_hbv_risk_is_a_pure_function_of_serology_dose_and_b_cells() -> None:
    f = facts(ANTI_HBC_POS, taken=AT_10)
    states = {m: lab_state(f, [], 365) for m in ("hbsag", "anti-hbc", "anti-hbs", "hbv-dna")}
    assert hbv_risk(f, THRESHOLDS, states, hbsag=False, b_cell=()) == "moderate"
    assert hbv_risk(f, THRESHOLDS, states, hbsag=True, b_cell=()) == "high"
    assert hbv_risk(f, THRESHOLDS, states, hbsag=False, b_cell=("X/1",)) == "high"


def test_hbv_antiviral_on_record_leaves_nothing_to_do() -> None:
    entecavir = hit("hbv_antivirals", "MedicationRequest/etv")
    assert run(INFECTION, facts(*done("anti-hbc"), ANTI_HBC_POS, entecavir, taken=AT_20)) is None


def test_known_hbv_dna_is_not_ordered_again() -> None:
    dna = hit("hbv_tests", "Observation/dna", ago=10, result=NEGATIVE, marker="hbv-dna")
    finding = run(INFECTION, facts(*done("anti-hbc"), ANTI_HBC_POS, dna, taken=AT_10))
    assert finding is not None
    assert "hbv-dna" not in finding.suggestions
    assert "hbv-referral" in finding.suggestions


def test_pending_hbv_panel_is_not_ordered_again() -> None:
    orders = (
        hit("hbv_tests", "ServiceRequest/hbsag", ago=2, result="pending", marker="hbsag"),
        hit("hbv_tests", "ServiceRequest/antihbc", ago=2, result="pending", marker="anti-hbc"),
        hit("hbv_tests", "ServiceRequest/antihbs", ago=2, result="pending", marker="anti-hbs"),
    )
    finding = run(
        INFECTION, facts(*done("hbsag", "anti-hbc", "anti-hbs", "flu"), *orders, taken=AT_20)
    )
    assert finding is not None
    assert "hbv-pending" in finding.details
    assert "hbv-panel" not in finding.suggestions
    assert finding.summary == "vaccines"


def test_indeterminate_hbv_marker_is_rechecked() -> None:
    ind = hit("hbv_tests", "Observation/c", ago=10, result="indeterminate", marker="anti-hbc")
    finding = run(INFECTION, facts(*done("anti-hbc"), ind, taken=AT_20))
    assert finding is not None
    assert finding.summary == "results"
    assert "hbv-recheck" in finding.details
    assert finding.suggestions == ("hbv-panel",)


# ---------------------------------------------------------------------------------------------
# PJP prophylaxis: kidney function, allergy, methotrexate, pregnancy; rituximab as a second agent


@pytest.mark.parametrize(
    ("case", "egfr", "detail", "suggestions", "recommended"),
    [
        ("eGFR 45: full dose", kidney(45), None, ("tmp-smx",), ("tmp-smx",)),
        ("eGFR 30: half dose (15-30 inclusive)", kidney(30), "pjp-renal-half", ("tmp-smx-renal",), ("tmp-smx-renal",)),
        ("eGFR 22: half dose", kidney(22), "pjp-renal-half", ("tmp-smx-renal",), ("tmp-smx-renal",)),
        ("eGFR 15: half dose", kidney(15), "pjp-renal-half", ("tmp-smx-renal",), ("tmp-smx-renal",)),
        ("eGFR 12: no TMP-SMX", kidney(12), "pjp-renal-avoid", ("atovaquone",), ("atovaquone",)),
        ("eGFR 22 but 400 days old", kidney(22, ago=400), None, ("tmp-smx",), ("tmp-smx",)),
        ("value in another unit", kidney(22, unit="mL/s"), None, ("tmp-smx",), ("tmp-smx",)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)  # fmt: skip
def test_tmp_smx_follows_kidney_function(
    case: str,
    egfr: Hit,
    detail: str | None,
    suggestions: tuple[str, ...],
    recommended: tuple[str, ...],
) -> None:
    finding = run(INFECTION, facts(*done("pjp"), egfr, taken=AT_40))
    assert finding is not None, case
    assert finding.summary == "pjp"
    assert finding.suggestions == suggestions
    assert finding.recommended == recommended
    if detail is None:
        assert not {"pjp-renal-half", "pjp-renal-avoid"} & set(finding.details)
    else:
        assert detail in finding.details
        assert finding.facts["kidney_value"] == fmt(egfr.value)
        assert "Observation/egfr" in finding.evidence


def fmt(value: float | None) -> str:
    return f"{value:g}"


def test_order_hook_fits_tmp_smx_to_kidney_function_too() -> None:
    finding = run(ORDER_INFECTION, facts(kidney(22), planned=[Planned(56, 40)]))
    assert finding is not None
    assert "tmp-smx-renal" in finding.suggestions
    assert "tmp-smx" not in finding.suggestions


def test_sulfonamide_allergy_wins_over_kidney_function() -> None:
    f = facts(*done("pjp"), kidney(22), hit("sulfa_allergy", "AllergyIntolerance/s"), taken=AT_40)
    finding = run(INFECTION, f)
    assert finding is not None
    assert "pjp-sulfa" in finding.details
    assert "pjp-renal-half" not in finding.details
    assert finding.recommended == ("atovaquone",)


def test_methotrexate_with_suggested_tmp_smx_warns_of_myelosuppression() -> None:
    mtx = hit("methotrexate", "MedicationRequest/mtx")
    finding = run(INFECTION, facts(*done("pjp"), mtx, taken=AT_40))
    assert finding is not None
    assert "pjp-mtx" in finding.details
    assert "MedicationRequest/mtx" in finding.evidence
    # No TMP-SMX suggested (allergy): no interaction to warn about.
    allergic = facts(*done("pjp"), mtx, hit("sulfa_allergy", "AllergyIntolerance/s"), taken=AT_40)
    finding = run(INFECTION, allergic)
    assert finding is not None
    assert "pjp-mtx" not in finding.details


def test_methotrexate_with_tmp_smx_taken_is_said_when_the_card_shows() -> None:
    tmp = hit("pjp_drugs", "MedicationRequest/tmp", agent="tmp-smx")
    mtx = hit("methotrexate", "MedicationRequest/mtx")
    finding = run(INFECTION, facts(*done("pjp", "flu"), tmp, mtx, taken=AT_40))
    assert finding is not None
    assert "pjp-mtx" in finding.details
    assert run(INFECTION, facts(*done("pjp"), tmp, mtx, taken=AT_40)) is None  # nothing else due


@pytest.mark.parametrize(
    ("case", "extra"),
    [
        ("normal kidney function", ()),
        ("eGFR 22: half dose", (kidney(22),)),
    ],
)
def test_pregnancy_holds_tmp_smx_for_obstetrics(case: str, extra: tuple[Hit, ...]) -> None:
    """TMP-SMX is contraindicated at term (clinical-knowledge-2.md 5.1) and the course may run
    past it: no ready-to-sign TMP-SMX, and the pregnancy paragraph leads the card."""
    kinds = ((INFECTION, AT_40), (ORDER_INFECTION, None))
    for kind, taken in kinds:
        preg = hit("pregnancy", "Condition/preg", ago=100)
        f = (
            facts(*done("pjp"), preg, *extra, taken=taken)
            if taken
            else facts(*done("pjp"), preg, *extra, planned=[Planned(60, 40)])
        )
        finding = run(kind, f)
        assert finding is not None, case
        assert finding.details[0] == "pjp-pregnancy", case
        assert "pjp-default" not in finding.details, case
        # one paragraph: no "Start PJP prophylaxis" after "agree first" (clinical review 2, 5)
        assert "pjp" not in finding.details, case
        assert not {"tmp-smx", "tmp-smx-renal"} & set(finding.suggestions), case
        assert not {"tmp-smx", "tmp-smx-renal"} & set(finding.recommended), case
        assert "Condition/preg" in finding.evidence, case


def test_not_pregnant_keeps_the_tmp_smx_button() -> None:
    finding = run(INFECTION, facts(*done("pjp"), taken=AT_40))
    assert finding is not None
    assert "tmp-smx" in finding.suggestions
    assert "pjp-pregnancy" not in finding.details


def test_hbv_dna_and_alt_come_before_the_risk_tier() -> None:
    """clinical-knowledge-2.md 3.2 workflow: HBV DNA and ALT, then the risk tier (review 1g)."""
    finding = run(INFECTION, facts(*done("pjp", "anti-hbc"), ANTI_HBC_POS, RITUXIMAB, taken=AT_40))
    assert finding is not None
    assert finding.details.index("hbv-dna") < finding.details.index("hbv-risk-high")
    assert "hbv-b-cell" in finding.details


def test_rituximab_months_ago_is_a_second_immunosuppressant() -> None:
    finding = run(INFECTION, facts(*done("pjp"), RITUXIMAB, taken=AT_40))
    assert finding is not None
    assert {"pjp-stronger", "lung-vigilance"} <= set(finding.details)
    assert "MedicationAdministration/rtx" in finding.evidence
