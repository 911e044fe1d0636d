"""Content checks: the real hooks/valuesets/ and hooks/thresholds.toml load and say what we mean."""

from __future__ import annotations

import json
import re
import tomllib
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from cds_service.thresholds import parse_thresholds
from cds_service.valuesets import Coding, ValueSetLibrary, load_valuesets

HOOKS = Path(__file__).resolve().parent.parent / "hooks"
VALUESETS = HOOKS / "valuesets"
BASE_URL = "https://glucocorticoid-cds.example.org/fhir/ValueSet/"

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
CVX = "http://hl7.org/fhir/sid/cvx"
LOINC = "http://loinc.org"
ATC = "http://www.whocc.no/atc"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

KNOWN_SYSTEMS = {
    RXNORM,
    ICD10CM,
    SNOMED,
    CVX,
    LOINC,
    ATC,
    V3_INTERPRETATION,
    "http://www.ama-assn.org/go/cpt",
}

REQUIRED_IDS = [
    "glucocorticoid-ingredients",
    "glucocorticoid-products",
    "glucocorticoid-excluded",
    "nonsystemic-routes",
    "intravenous-routes",
    "inflammatory-myopathies",
    "long-term-systemic-steroid-use",
    "immunosuppressant-drugs",
    "immunosuppression-conditions",
    "osteoporosis",
    "osteopenia",
    "fragility-fracture",
    "osteonecrosis",
    "hip-prosthesis",
    "knee-prosthesis",
    "shoulder-prosthesis",
    "ankle-prosthesis",
    "elbow-prosthesis",
    "laterality-left",
    "laterality-right",
    "laterality-bilateral",
    "joint-site-hip",
    "joint-site-knee",
    "joint-site-shoulder",
    "joint-site-ankle",
    "joint-site-elbow",
    "zoledronic-acid",
    "denosumab",
    "anabolic-bone-agents",
    "oral-bisphosphonates",
    "bone-density",
    "osteoporosis-drugs",
    "bisphosphonate-use",
    "pjp-prophylaxis-drugs",
    "pjp-history",
    "interstitial-lung-disease",
    "tb-screening-tests",
    "latent-tb",
    "hbv-screening-tests",
    "hepatitis-b",
    "vaccines",
    "muscle-enzymes",
    "pulmonary-function",
    "calcinosis",
    "joint-pain",
    "sulfonamide-allergy",
    "result-positive",
    "result-negative",
    "result-indeterminate",
    "kidney-function",
    "pregnancy",
    "pregnancy-status",
    "b-cell-depleting-drugs",
    "cyclophosphamide",
    "methotrexate",
    "ltbi-treatment-drugs",
    "hbv-antivirals",
]


@pytest.fixture(scope="module")
def lib() -> ValueSetLibrary:
    return load_valuesets(VALUESETS)


def _raw(vs_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VALUESETS / f"{vs_id}.json").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("vs_id", REQUIRED_IDS)
def test_required_value_set_present(lib: ValueSetLibrary, vs_id: str) -> None:
    assert vs_id in lib


@pytest.mark.parametrize("path", sorted(VALUESETS.glob("*.json")), ids=lambda p: p.stem)
def test_file_metadata(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["id"] == path.stem
    assert data["url"] == BASE_URL + path.stem
    assert data["status"] == "active"
    assert data["date"] == data["expansion"]["timestamp"][:10]  # written when expanded
    assert date.fromisoformat(data["date"]) >= date(2026, 11, 24)
    assert data["name"]
    assert data["title"]
    assert "Expanded" in data["description"]
    for entry in data["expansion"]["contains"]:
        assert entry["system"] in KNOWN_SYSTEMS
        assert entry["display"]
        if entry["system"] == ICD10CM and len(entry["code"]) > 3:
            assert "." in entry["code"], "ICD-10-CM codes are written with the dot"


@pytest.mark.parametrize(
    ("vs_id", "system", "code", "expected"),
    [
        ("glucocorticoid-ingredients", RXNORM, "8640", True),
        ("glucocorticoid-ingredients", ATC, "H02AB07", True),
        ("glucocorticoid-ingredients", RXNORM, "19831", False),  # budesonide
        ("glucocorticoid-ingredients", RXNORM, "4452", False),  # fludrocortisone
        ("glucocorticoid-products", RXNORM, "312617", True),
        ("glucocorticoid-products", RXNORM, "762675", True),  # Medrol dose pack
        ("glucocorticoid-products", RXNORM, "313979", False),  # fludrocortisone
        ("glucocorticoid-products", RXNORM, "1085728", False),  # triamcinolone dental paste
        ("glucocorticoid-excluded", RXNORM, "313979", True),
        ("glucocorticoid-excluded", RXNORM, "1085728", True),
        ("glucocorticoid-excluded", RXNORM, "19831", True),
        ("glucocorticoid-excluded", RXNORM, "8640", False),
        ("inflammatory-myopathies", ICD10CM, "M33.11", True),
        ("inflammatory-myopathies", ICD10CM, "M3311", True),
        ("inflammatory-myopathies", ICD10CM, "m33.1", True),  # retired header, any case
        ("inflammatory-myopathies", ICD10CM, "G72.49", True),
        ("inflammatory-myopathies", ICD10CM, "G72.41", False),
        ("inflammatory-myopathies", SNOMED, "396230008", True),
        ("inflammatory-myopathies", SNOMED, "72315009", False),
        ("inflammatory-myopathies", SNOMED, "1144926009", False),
        ("long-term-systemic-steroid-use", ICD10CM, "Z79.52", True),
        ("long-term-systemic-steroid-use", ICD10CM, "Z79.51", False),
        ("osteonecrosis", ICD10CM, "M87.051", True),
        ("osteonecrosis", ICD10CM, "M87.152", True),
        ("osteonecrosis", ICD10CM, "M87.180", False),
        ("osteonecrosis", ICD10CM, "M87.251", False),
        ("osteonecrosis", ICD10CM, "M87.252", False),
        ("osteonecrosis", ICD10CM, "M87.256", False),
        ("osteonecrosis", SNOMED, "397758007", True),
        ("hip-prosthesis", ICD10CM, "Z96.643", True),
        ("hip-prosthesis", SNOMED, "62402000", True),  # revision keeps a prosthesis
        ("hip-prosthesis", SNOMED, "7989006", False),  # removal
        ("knee-prosthesis", ICD10CM, "Z96.653", True),
        ("knee-prosthesis", ICD10CM, "Z96.659", True),
        ("shoulder-prosthesis", ICD10CM, "Z96.611", True),
        ("shoulder-prosthesis", ICD10CM, "Z96.619", True),
        ("shoulder-prosthesis", ICD10CM, "Z96.613", False),  # does not exist
        ("ankle-prosthesis", ICD10CM, "Z96.661", True),
        ("ankle-prosthesis", ICD10CM, "Z96.669", True),
        ("ankle-prosthesis", ICD10CM, "Z96.663", False),  # does not exist
        ("elbow-prosthesis", ICD10CM, "Z96.622", True),
        ("elbow-prosthesis", ICD10CM, "Z96.623", False),  # does not exist
        ("laterality-right", SNOMED, "24028007", True),
        ("laterality-left", SNOMED, "7771000", True),
        ("laterality-bilateral", SNOMED, "51440002", True),
        ("laterality-bilateral", SNOMED, "51440001", False),  # wrong code seen in a public IG
        ("oral-bisphosphonates", ATC, "M05BA04", True),
        ("osteoporosis", ICD10CM, "M81.8", True),
        ("osteoporosis", SNOMED, "390833005", True),
        ("osteopenia", ICD10CM, "M85.851", True),
        ("osteopenia", SNOMED, "40308000", True),
        ("fragility-fracture", ICD10CM, "M80.08XA", True),
        ("fragility-fracture", ICD10CM, "Z87.310", True),
        ("fragility-fracture", ICD10CM, "M48.50XA", False),  # only a possible fracture
        ("fragility-fracture-possible", ICD10CM, "M48.50XA", True),
        ("immunosuppression-conditions", ICD10CM, "Z79.631", True),
        ("immunosuppression-conditions", ICD10CM, "D84.821", True),
        ("osteoporosis-drugs", ATC, "M05BA04", True),
        ("osteoporosis-drugs", ATC, "M05BX04", True),
        ("bisphosphonate-use", ICD10CM, "Z79.83", True),
        ("pjp-prophylaxis-drugs", RXNORM, "198335", True),
        ("pjp-prophylaxis-drugs", ATC, "D10AX05", False),  # topical dapsone
        ("interstitial-lung-disease", ICD10CM, "J84.112", True),
        ("interstitial-lung-disease", ICD10CM, "M33.11", True),
        ("tb-screening-tests", LOINC, "71773-6", True),
        ("tb-screening-tests", LOINC, "45323-3", False),  # mitogen control
        ("calcinosis", ICD10CM, "M61.49", True),
        ("tb-screening-tests", LOINC, "1648-5", True),  # TST (clinical-knowledge-2.md 2.1)
        ("tb-screening-tests", LOINC, "96754-7", True),
        ("tb-screening-tests", LOINC, "74277-5", False),  # spot count: needs the nil well
        ("hbv-screening-tests", LOINC, "42595-9", True),
        ("hbv-screening-tests", LOINC, "45161-7", False),  # display unverified
        ("latent-tb", SNOMED, "737222005", True),
        ("hepatitis-b", SNOMED, "165806002", True),
        ("hepatitis-b", SNOMED, "313234004", False),  # which antibody is not said
        ("result-positive", LOINC, "LA6576-8", True),
        ("result-positive", V3_INTERPRETATION, "POS", True),
        ("result-positive", V3_INTERPRETATION, "A", False),  # abnormal alone is not positive
        ("result-negative", V3_INTERPRETATION, "ND", True),
        ("result-negative", LOINC, "LA11883-8", False),  # UNVERIFIED answer code
        ("result-indeterminate", LOINC, "LA11884-6", True),
        ("kidney-function", LOINC, "98979-8", True),
        ("kidney-function", LOINC, "2164-2", True),
        ("kidney-function", LOINC, "2160-0", False),  # serum creatinine: not a clearance
        ("pregnancy", ICD10CM, "Z34.02", True),
        ("pregnancy", ICD10CM, "O09.521", True),
        ("pregnancy", ICD10CM, "O80", False),  # delivery is not a current pregnancy
        ("pregnancy", SNOMED, "77386006", True),
        ("pregnancy-status", LOINC, "82810-3", True),
        ("b-cell-depleting-drugs", RXNORM, "121191", True),
        ("cyclophosphamide", RXNORM, "3002", True),
        ("methotrexate", RXNORM, "6851", True),
        ("ltbi-treatment-drugs", RXNORM, "6038", True),
        ("sulfonamide-allergy", RXNORM, "10831", True),
        ("vaccines", CVX, "206", True),
    ],
)
def test_code_membership(
    lib: ValueSetLibrary, vs_id: str, system: str, code: str, expected: bool
) -> None:
    assert (lib[vs_id].match_code(system, code) is not None) is expected


@pytest.mark.parametrize(
    ("vs_id", "text", "expected"),
    [
        ("glucocorticoid-ingredients", "Methylprednisolone 4 mg tablet", True),
        ("glucocorticoid-ingredients", "fludrocortisone 0.1 mg", False),
        ("glucocorticoid-ingredients", "Triamcinolone 0.1% cream", False),
        ("glucocorticoid-ingredients", "budesonide inhaler", False),
        ("glucocorticoid-excluded", "Hydrocortisone rectal foam", True),
        ("glucocorticoid-excluded", "prednisone 5 mg oral tablet", False),
        ("nonsystemic-routes", "Ophthalmic", True),
        ("nonsystemic-routes", "Subcutaneous", False),
        ("nonsystemic-routes", "Oral", False),
        ("intravenous-routes", "Intravenous", True),
        ("intravenous-routes", "IV push", True),
        ("intravenous-routes", "Oral", False),
        ("inflammatory-myopathies", "Dermatomyositis", True),
        ("inflammatory-myopathies", "Anti-synthetase syndrome", True),
        ("inflammatory-myopathies", "Inclusion body myositis", False),
        ("osteonecrosis", "Avascular necrosis of femoral head", True),
        ("osteonecrosis", "Osteonecrosis of the jaw", False),
        ("immunosuppressant-drugs", "IVIG 2 g/kg", True),
        ("immunosuppressant-drugs", "tacrolimus 0.1% ointment", False),
        ("pjp-prophylaxis-drugs", "pentamidine inhaled", True),
        ("pjp-prophylaxis-drugs", "trimethoprim 100 mg", False),
        ("tb-screening-tests", "QuantiFERON-TB Gold Plus", True),
        ("joint-pain", "Right knee pain", True),
        ("joint-pain", "Joint pain Left knee", True),  # code text + bodySite text
        ("joint-pain", "Pain in left elbow", True),
        ("joint-pain", "Painful right knee prosthesis", True),
        ("joint-pain", "Low back pain", False),
        ("knee-prosthesis", "Total replacement of right knee joint", True),
        ("knee-prosthesis", "Right TKA", True),
        ("knee-prosthesis", "Removal of knee prosthesis", False),
        ("hip-prosthesis", "Replacement of left hip", True),
        ("ankle-prosthesis", "Left ankle arthroplasty", True),
        ("elbow-prosthesis", "Total elbow replacement", True),
        ("laterality-right", "Right knee", True),
        ("laterality-right", "Bright red", False),
        ("laterality-bilateral", "both knees", True),
        ("joint-site-shoulder", "avascular necrosis of humeral head", True),
        ("joint-site-knee", "Kneeling pain", False),
        ("zoledronic-acid", "Zoledronic acid 5 mg/100 mL (Reclast)", True),
        ("zoledronic-acid", "Zoledronic acid 4 mg (Zometa)", False),  # oncology regimen
        ("osteoporosis-drugs", "Zometa 4 mg", False),
        ("osteoporosis-drugs", "Prolia 60 mg", True),
        ("denosumab", "Prolia 60 mg/mL", True),
        ("anabolic-bone-agents", "Evenity 105 mg", True),
        ("anabolic-bone-agents", "Teriparatide 20 mcg", True),
        ("oral-bisphosphonates", "Risedronate 35 mg weekly", True),
        ("oral-bisphosphonates", "Zoledronic acid 5 mg", False),
        ("sulfonamide-allergy", "Sulfa drugs", True),
        ("sulfonamide-allergy", "Morphine sulfate", False),
        ("sulfonamide-allergy", "Sulfasalazine", True),  # a sulfonylarylamine (5.3)
        ("sulfonamide-allergy", "Sulphasalazine (Salazopyrin)", True),
        ("sulfonamide-allergy", "Furosemide", False),  # not an arylamine: no cross-reaction
        ("sulfonamide-allergy", "Sulfites", False),
        ("b-cell-depleting-drugs", "Ocrelizumab 600 mg IV", True),
        ("hbv-antivirals", "Entecavir 0.5 mg", True),
        ("result-negative", "Not detected", True),
        ("result-positive", "Not detected", True),  # why negatives are tried first
        ("result-negative", "Non-reactive", True),
        ("result-indeterminate", "Indeterminate (low mitogen)", True),
        ("pregnancy", "Pregnancy, 12 weeks", True),
        ("pregnancy", "Not pregnant", False),
        ("hip-prosthesis", "Removal of hip prosthesis", False),
    ],
)
def test_text_fallback(lib: ValueSetLibrary, vs_id: str, text: str, expected: bool) -> None:
    assert lib[vs_id].match_text(text) is expected


def test_ingredient_pattern_names_methylprednisolone_not_prednisolone(lib: ValueSetLibrary) -> None:
    pattern = lib["glucocorticoid-ingredients"].text_pattern
    assert pattern is not None
    assert [m.group(0).lower() for m in pattern.finditer("methylprednisolone 500 mg IV")] == [
        "methylprednisolone"
    ]
    assert [m.group(0).lower() for m in pattern.finditer("hydrocortisone 10 mg")] == [
        "hydrocortisone"
    ]
    # A prednisolone-only pattern built the same way does not fire inside methylprednisolone.
    assert re.search(r"\bprednisolone\b", "methylprednisolone", re.IGNORECASE) is None


def test_prednisone_ingredient_and_product(lib: ValueSetLibrary) -> None:
    ingredient = lib["glucocorticoid-ingredients"].match_code(RXNORM, "8640")
    assert ingredient is not None
    assert ingredient.properties["ingredient"] == "8640"
    assert ingredient.properties["ingredient-name"] == "prednisone"
    product = lib["glucocorticoid-products"].match_code(RXNORM, "312617")
    assert product is not None
    assert product.properties["ingredient"] == "8640"
    assert product.properties["dose-form"] == "tablet"
    strength = product.properties["strength"]
    assert strength["numerator"]["value"] == 5
    assert strength["numerator"]["code"] == "mg"
    assert strength["denominator"] == {
        "value": 1,
        "unit": "{tbl}",
        "system": "http://unitsofmeasure.org",
        "code": "{tbl}",
    }


def test_products_map_to_known_ingredients(lib: ValueSetLibrary) -> None:
    ingredients = lib["glucocorticoid-ingredients"]
    for concept in lib["glucocorticoid-products"].concepts.values():
        props = concept.properties
        assert ingredients.match_code(RXNORM, props["ingredient"]) is not None
        assert props["dose-form"] in {"tablet", "solution", "pack"}
        assert ("pack-units" in props) is (props["dose-form"] == "pack")
        assert props["strength"]["numerator"]["unit"] == "mg"


def test_atc_entries_map_to_rxnorm_ingredient(lib: ValueSetLibrary) -> None:
    vs = lib["glucocorticoid-ingredients"]
    for concept in vs.concepts.values():
        assert vs.match_code(RXNORM, concept.properties["ingredient"]) is not None
    atc = vs.match_code(ATC, "h02ab04")
    assert atc is not None
    assert atc.properties["ingredient"] == "6902"


def test_myositis_ild_and_ibm_veto(lib: ValueSetLibrary) -> None:
    vs = lib["inflammatory-myopathies"]
    for code in ("M33.11", "M3311"):
        concept = vs.match_code(ICD10CM, code)
        assert concept is not None
        assert concept.properties["ild"] is True
    plain = vs.match_code(ICD10CM, "M33.10")
    assert plain is not None
    assert "ild" not in plain.properties
    # A coded IBM diagnosis is vetoed even though its display says "myositis".
    ibm = [Coding(ICD10CM, "G72.41", "Inclusion body myositis")]
    assert vs.match(ibm, "Inclusion body myositis") is None
    assert vs.match([Coding(SNOMED, "72315009", "Inclusion body myositis")]) is None


def test_osteonecrosis_sites(lib: ValueSetLibrary) -> None:
    vs = lib["osteonecrosis"]
    expected = {"M87.051": "hip", "M87.161": "knee", "M87.111": "shoulder", "M87.171": "ankle"}
    for code, site in expected.items():
        concept = vs.match_code(ICD10CM, code)
        assert concept is not None
        assert concept.properties["site"] == site


def test_hip_prosthesis_laterality(lib: ValueSetLibrary) -> None:
    vs = lib["hip-prosthesis"]
    bilateral = vs.match_code(ICD10CM, "Z96.643")
    assert bilateral is not None
    assert bilateral.properties["laterality"] == "bilateral"
    allowed = {"right", "left", "bilateral", "unknown"}
    for name in (
        "hip-prosthesis",
        "knee-prosthesis",
        "shoulder-prosthesis",
        "ankle-prosthesis",
        "elbow-prosthesis",
    ):
        for concept in lib[name].concepts.values():
            assert concept.properties["laterality"] in allowed
            assert concept.properties["kind"] in ("status", "replacement", "revision", "conversion")
    assert vs.match([Coding(SNOMED, "7989006", "Removal of prosthesis of joint of hip")]) is None


def test_vaccines_have_group_and_live(lib: ValueSetLibrary) -> None:
    groups = {
        "zoster-recombinant",
        "zoster-live",
        "zoster-unspecified",
        "pneumococcal",
        "influenza",
        "influenza-high-dose",
        "influenza-adjuvanted",
        "influenza-live",
        "hepatitis-b",
        "mmr",
        "varicella",
        "rotavirus",
        "polio-oral",
        "smallpox-mpox-nonreplicating",
        "other-live",
    }
    for concept in lib["vaccines"].concepts.values():
        assert concept.properties["group"] in groups
        if concept.code == "188":
            assert "live" not in concept.properties
        else:
            assert isinstance(concept.properties["live"], bool)
    shingrix = lib["vaccines"].match_code(CVX, "187")
    zostavax = lib["vaccines"].match_code(CVX, "121")
    assert shingrix is not None
    assert zostavax is not None
    assert shingrix.properties["live"] is False
    assert zostavax.properties["live"] is True
    # JYNNEOS is replication-deficient (MMWR 2022;71:734), although its CDC name says "live";
    # ACAM2000 replicates.
    jynneos = lib["vaccines"].match_code(CVX, "206")
    acam2000 = lib["vaccines"].match_code(CVX, "75")
    assert jynneos is not None
    assert acam2000 is not None
    assert jynneos.properties["live"] is False
    assert acam2000.properties["live"] is True
    products = {
        c.code: c.properties.get("product")
        for c in lib["vaccines"].concepts.values()
        if c.properties["group"] == "pneumococcal"
    }
    assert products == {
        "33": "ppsv23",
        "133": "pcv13",
        "215": "pcv15",
        "216": "pcv20",
        "327": "pcv21",
        "109": "unspecified",
        "152": "unspecified",
    }


@pytest.mark.parametrize(
    ("vs_id", "prop", "allowed"),
    [
        (
            "bone-density",
            "site",
            {"hip", "femur", "spine", "forearm", "calcaneus", "whole-body", "other"},
        ),
        ("bone-density", "score", {"t", "z", "bmd", "other", "procedure"}),
        ("hbv-screening-tests", "marker", {"hbsag", "anti-hbc", "anti-hbs", "hbv-dna"}),
        ("hbv-screening-tests", "label", {"HBsAg", "anti-HBc", "anti-HBs", "HBV DNA"}),
        ("kidney-function", "measure", {"egfr", "crcl"}),
        ("kidney-function", "unit", {"mL/min/{1.73_m2}", "mL/min"}),
        ("kidney-function", "label", None),
        ("sulfonamide-allergy", "class", {"sulfonylarylamine", "trimethoprim"}),
        ("muscle-enzymes", "analyte", {"ck", "ldh", "aldolase"}),
        ("pjp-prophylaxis-drugs", "agent", {"tmp-smx", "dapsone", "atovaquone", "pentamidine"}),
        ("immunosuppressant-drugs", "ingredient-name", None),
        ("pulmonary-function", "analyte", None),
    ],
)
def test_property_on_every_entry(
    lib: ValueSetLibrary, vs_id: str, prop: str, allowed: set[str] | None
) -> None:
    for concept in lib[vs_id].concepts.values():
        value = concept.properties[prop]
        assert allowed is None or value in allowed, (vs_id, concept.code, value)


def test_unverified_codes_stay_out(lib: ValueSetLibrary) -> None:
    absent = [
        ("osteoporosis-drugs", RXNORM, "46041"),  # alendronate RxCUI: UNVERIFIED
        ("pjp-prophylaxis-drugs", RXNORM, "7994"),  # pentamidine: UNVERIFIED
        ("glucocorticoid-ingredients", ATC, "H02AB01"),  # betamethasone ATC: UNVERIFIED
        ("glucocorticoid-ingredients", ATC, "H02AB10"),  # cortisone ATC: UNVERIFIED
        ("inflammatory-myopathies", SNOMED, "410795001"),  # JIA, not JDM
        ("bone-density", "http://www.ama-assn.org/go/cpt", "77086"),
    ]
    for vs_id, system, code in absent:
        assert lib[vs_id].match_code(system, code) is None, (vs_id, code)


def test_text_only_sets_have_no_codes() -> None:
    text_only = [
        "nonsystemic-routes",
        "intravenous-routes",
        "joint-pain",
        "hbv-antivirals",
        *(f"joint-site-{joint}" for joint in ("hip", "knee", "shoulder", "ankle", "elbow")),
        "zoledronic-acid",
        "denosumab",
        "anabolic-bone-agents",
    ]
    for vs_id in text_only:
        data = _raw(vs_id)
        assert data["expansion"]["contains"] == []
        assert "unverified" in data["description"].lower() or "UNVERIFIED" in data["description"]


def _leaves(table: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for key, value in table.items():
        here = f"{path}.{key}" if path else key
        if isinstance(value, dict) and "value" in value:
            out.append((here, value))
        elif isinstance(value, dict):
            out.extend(_leaves(value, here))
        else:
            pytest.fail(f"{here}: every threshold must be a table with value, unit and source")
    return out


def test_thresholds_parse_and_cite() -> None:
    data = tomllib.loads((HOOKS / "thresholds.toml").read_text(encoding="utf-8"))
    leaves = _leaves(data)
    assert leaves
    units = {
        "mg",
        "mg/d",
        "d",
        "a",
        "%",
        "1",
        "[iU]/d",
        "mL/min",
        "mm",
        "[IU]/mL",
        "mg/kg/d",
        "kg",
        "mo",
        "U/L",
    }
    for path, leaf in leaves:
        assert {"value", "unit", "source"} <= leaf.keys(), path
        value = leaf["value"]
        assert isinstance(value, int | float) or re.fullmatch(r"[\d.]+/[\d.]+", value), path
        assert leaf["unit"] in units, path
        assert leaf["source"].strip(), path
    keys = {path for path, _ in leaves}
    for required in (
        "exposure.lookback_days",
        "exposure.long_term_min_daily_mg",
        "exposure.iv_pulse_min_daily_peq_mg",
        "exposure.very_high_cumulative_mg",
        "bone.t_score_very_high",
        "bone.z_score_moderate",
        "osteonecrosis.cumulative_mg",
        "drug_effect.zoledronate_days",
        "drug_effect.denosumab_days",
        "drug_effect.supply_grace_days",
        "infection.pjp_min_daily_mg",
        "infection.live_vaccine_wait_days",
        "prednisone_equivalents.8640",
        "prednisone_equivalents.22396",
    ):
        assert required in keys, required


def test_every_peq_factor_is_a_glucocorticoid_ingredient(lib: ValueSetLibrary) -> None:
    data = tomllib.loads((HOOKS / "thresholds.toml").read_text(encoding="utf-8"))
    factors = data["prednisone_equivalents"]
    exact = parse_thresholds(data).section("prednisone_equivalents")
    assert {code: t.exact for code, t in exact.items()} == {
        "8640": 1,
        "8638": 1,
        "6902": Fraction(5, 4),
        "10759": Fraction(5, 4),
        "5492": Fraction(1, 4),
        "2878": Fraction(1, 5),
        "3264": Fraction(20, 3),
        "1514": Fraction(25, 3),
        "22396": Fraction(5, 6),
    }
    vs = lib["glucocorticoid-ingredients"]
    for code, row in factors.items():
        concept = vs.match_code(RXNORM, code)
        assert concept is not None, code
        assert concept.properties["ingredient-name"] == row["name"]


def test_every_cutoff_names_a_threshold(lib: ValueSetLibrary) -> None:
    """A test's `cutoff` property is the name of a [result_cutoffs] line (lab_results.py)."""
    data = tomllib.loads((HOOKS / "thresholds.toml").read_text(encoding="utf-8"))
    named = {
        str(c.properties["cutoff"])
        for vs_id in lib
        for c in lib[vs_id].concepts.values()
        if "cutoff" in c.properties
    }
    assert named == set(data["result_cutoffs"])


def test_every_current_use_window_is_a_role_of_each_service() -> None:
    """[current_use] is keyed by value-set role (facts.py reads it so): no orphan keys."""
    data = tomllib.loads((HOOKS / "thresholds.toml").read_text(encoding="utf-8"))
    for path in sorted(HOOKS.glob("*/service.toml")):
        roles = tomllib.loads(path.read_text(encoding="utf-8"))["valuesets"]
        assert set(data["current_use"]) <= set(roles), path.parent.name


def test_answer_sets_do_not_overlap(lib: ValueSetLibrary) -> None:
    """A coded answer means one thing: positive, negative or indeterminate."""
    sets = [set(lib[f"result-{c}"].concepts) for c in ("positive", "negative", "indeterminate")]
    assert not sets[0] & sets[1]
    assert not sets[0] & sets[2]
    assert not sets[1] & sets[2]
