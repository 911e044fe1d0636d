"""The exposure engine's speed-ups change nothing: memoised and interval-based results equal a
straightforward computation (hypothesis-generated records)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service import medications as meds
from cds_service.fhir.models import Medication
from tests.test_exposure_support import ATC, KNOWLEDGE, RXNORM, medication

SETTINGS = settings(max_examples=150, deadline=None)

CODES = st.sampled_from(
    [
        (RXNORM, "8640"),
        (RXNORM, "312615"),
        (RXNORM, "762675"),
        (RXNORM, "205301"),
        (RXNORM, "19831"),
        (RXNORM, "9990001"),
        (ATC, "H02AB07"),
        ("urn:local", "L-77"),
        (RXNORM, "6851"),
    ]
)
TEXTS = st.sampled_from(
    [
        "prednisone 20 MG Oral Tablet",
        "prednisone 5 MG Oral Tablet",
        "methylprednisolone 4 mg tabs",
        "{21 (methylprednisolone 4 MG Oral Tablet) } Pack",
        "1 ML methylprednisolone acetate 40 MG/ML Injectable Suspension",
        "hydrocortisone cream",
        "budesonide inhaler",
        "fludrocortisone",
        "dexamethasone 4 MG Oral Tablet",
        "Oral Tablet",
        "methotrexate",
        "eye drops",
    ]
)


@st.composite
def concepts(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.integers(0, 5)) == 0:
        return None
    concept: dict[str, Any] = {}
    codings = []
    for system, code in draw(st.lists(CODES, max_size=2)):
        coding = {"system": system, "code": code}
        if draw(st.booleans()):
            coding["display"] = draw(TEXTS)
        codings.append(coding)
    if codings:
        concept["coding"] = codings
    if draw(st.booleans()) or not codings:
        concept["text"] = draw(TEXTS)
    return concept


@st.composite
def medications_(draw: st.DrawFn) -> list[Medication]:
    """A Medication and a variant with other strengths (same codes, texts and form)."""
    data: dict[str, Any] = {}
    code = draw(concepts())
    if code is not None:
        data["code"] = code
    form = draw(concepts())
    if form is not None:
        data["form"] = form
    items = []
    for _ in range(draw(st.integers(0, 2))):
        item: dict[str, Any] = {"itemCodeableConcept": draw(concepts()) or {"text": "x"}}
        if draw(st.booleans()):
            num = {"value": draw(st.sampled_from([1, 4, 5, 20, 40])), "code": "mg"}
            den = {"value": draw(st.sampled_from([1, 2])), "code": draw(st.sampled_from(["{tbl}", "mL", "1"]))}  # fmt: skip
            item["strength"] = {"numerator": num, "denominator": den}
        items.append(item)
    if items:
        data["ingredient"] = items
    variants = [data]
    for part in ("numerator", "denominator"):
        other = {"value": 2, "code": "mL"} if part == "denominator" else {"value": 8, "unit": "mg"}
        changed = [
            {**i, "strength": {**i["strength"], part: other}} if "strength" in i else i
            for i in items
        ]
        variants.append({**data, "ingredient": changed} if items else data)
    return [medication("m1", **v) for v in variants]


class _Ref:
    def __init__(self, reference: str | None, display: str | None) -> None:
        self.reference, self.display = reference, display


@SETTINGS
@given(
    concept=concepts(),
    med=medications_(),
    display=st.none() | TEXTS,
    extra=st.lists(TEXTS, max_size=2),
)
def test_memoised_identification_equals_a_fresh_one(
    concept: dict[str, Any] | None, med: list[Medication], display: str | None, extra: list[str]
) -> None:
    cc = medication("c", code=concept).code if concept is not None else None
    # Variants that differ in one field each: a key missing that field returns a stale answer
    # (the memo is also shared by every example).
    for shown in (display, None, "prednisone 20 MG Oral Tablet"):
        for texts in (extra, []):
            for used in (*med, None):
                ref = _Ref("Medication/m1", shown) if used is not None or shown else None
                bundle = {"Medication/m1": used} if used is not None else {}
                fresh = meds._identify(cc, ref, used, KNOWLEDGE, texts)
                for _ in range(2):
                    assert meds.identify_drug(cc, ref, [], bundle, KNOWLEDGE, texts) == fresh
