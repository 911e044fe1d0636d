"""Builders shared by the exposure tests: small synthetic value sets and FHIR resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

from cds_service.exposure import (
    ExposureParams,
    ExposureSummary,
    GlucocorticoidKnowledge,
    summarize_exposure,
)
from cds_service.fhir.views import (
    Medication,
    MedicationAdministration,
    MedicationDispense,
    MedicationRequest,
    MedicationStatement,
    Observation,
    Resource,
)
from cds_service.valuesets import parse_valueset

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
LOINC = "http://loinc.org"
EXT = "http://example.org/fhir/StructureDefinition/"
# +04:00 so that local date != UTC date around midnight.
NOW = datetime(2024, 6, 30, 10, 0, tzinfo=timezone(timedelta(hours=4)))
TODAY = NOW.date()
PARAMS = ExposureParams(
    lookback_days=365,
    iv_pulse_min_daily_peq_mg=250,
    unconfirmed_after_days=180,
    body_weight_max_age_days=180,
    body_height_max_age_days=730,
    bsa_divisor=3600,
)
# Exact ratios, as hooks/thresholds.toml writes them: 5 mg prednisone / the equivalent dose.
PEQ: dict[str, Fraction] = {
    "8640": Fraction(1),
    "8638": Fraction(1),
    "6902": Fraction(5, 4),
    "10759": Fraction(5, 4),
    "5492": Fraction(1, 4),
    "2878": Fraction(1, 5),
    "3264": Fraction(20, 3),
    "1514": Fraction(25, 3),
    "22396": Fraction(5, 6),
}
NAMES = {
    "8640": "prednisone",
    "8638": "prednisolone",
    "6902": "methylprednisolone",
    "10759": "triamcinolone",
    "5492": "hydrocortisone",
    "2878": "cortisone",
    "3264": "dexamethasone",
    "1514": "betamethasone",
    "22396": "deflazacort",
}


def _ext(name: str, key: str, value: Any) -> dict[str, Any]:
    return {"url": EXT + name, key: value}


def _vs(vs_id: str, contains: list[dict[str, Any]], pattern: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "resourceType": "ValueSet",
        "id": vs_id,
        "description": "test value set",
        "date": "2024-01-01",
        "expansion": {"contains": contains},
    }
    if pattern is not None:
        data["extension"] = [{"url": EXT + "text-pattern", "valueString": pattern}]
    return data


def _ingredient(system: str, code: str, ingredient: str) -> dict[str, Any]:
    return {
        "system": system,
        "code": code,
        "display": NAMES[ingredient],
        "extension": [
            _ext("ingredient", "valueString", ingredient),
            _ext("ingredient-name", "valueString", NAMES[ingredient]),
        ],
    }


def _product(
    code: str, ingredient: str, mg: float, per: str, form: str, pack: int | None = None
) -> dict[str, Any]:
    exts = [
        _ext("ingredient", "valueString", ingredient),
        _ext(
            "strength",
            "valueRatio",
            {
                "numerator": {"value": mg, "code": "mg"},
                "denominator": {"value": 1, "code": per},
            },
        ),
        _ext("dose-form", "valueCode", form),
    ]
    if pack is not None:
        exts.append(_ext("pack-units", "valueInteger", pack))
    return {"system": RXNORM, "code": code, "extension": exts}


def knowledge(peq: Mapping[str, Fraction] = PEQ) -> GlucocorticoidKnowledge:
    names = "|".join(NAMES.values())
    ingredients = [_ingredient(RXNORM, code, code) for code in NAMES]
    ingredients += [
        _ingredient(ATC, "H02AB07", "8640"),
        _ingredient(RXNORM, "9990001", "6902"),  # synthetic PIN (a salt) -> IN
    ]
    products = [
        _product("312615", "8640", 20, "{tbl}", "tablet"),
        _product("312617", "8640", 5, "{tbl}", "tablet"),
        _product("198144", "8640", 1, "{tbl}", "tablet"),
        _product("205301", "8640", 5, "mL", "solution"),
        _product("762675", "6902", 4, "{tbl}", "pack", pack=21),
        _product("197582", "3264", 4, "{tbl}", "tablet"),
    ]
    excluded = [
        {"system": RXNORM, "code": "19831", "display": "budesonide"},
        {"system": RXNORM, "code": "4452", "display": "fludrocortisone"},
        {
            "system": RXNORM,
            "code": "313979",
            "display": "fludrocortisone acetate 0.1 MG Oral Tablet",
        },
        {
            "system": RXNORM,
            "code": "1085728",
            "display": "triamcinolone acetonide 0.001 MG/MG Oral Paste",
        },
    ]
    return GlucocorticoidKnowledge(
        ingredients=parse_valueset(
            _vs("glucocorticoid-ingredients", ingredients, rf"(?<![a-z])({names})(?![a-z])"),
            "test",
        ),
        products=parse_valueset(_vs("glucocorticoid-products", products), "test"),
        excluded=parse_valueset(
            _vs(
                "glucocorticoid-excluded",
                excluded,
                r"inhal|topical|cream|ointment|lotion|eye drop|ophthalmic|nasal|otic\b|dental"
                r"|paste|rectal|enema",
            ),
            "test",
        ),
        nonsystemic_routes=parse_valueset(
            _vs(
                "nonsystemic-routes",
                [],
                r"inhal|topical|(?<!sub)cutaneous|ophthalmic|nasal|otic\b|intra-?articular|intralesional"
                r"|dental|rectal|transdermal",
            ),
            "test",
        ),
        intravenous_routes=parse_valueset(
            _vs("intravenous-routes", [], r"intravenous|\bIV\b"), "test"
        ),
        peq_factor=peq,
        body_weight=parse_valueset(
            _vs(
                "body-weight",
                [{"system": LOINC, "code": "29463-7"}, {"system": LOINC, "code": "3141-9"}],
            ),
            "test",
        ),
        body_height=parse_valueset(
            _vs("body-height", [{"system": LOINC, "code": "8302-2"}]), "test"
        ),
    )


KNOWLEDGE = knowledge()


def code(c: str, system: str = RXNORM, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": c}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def text(t: str) -> dict[str, Any]:
    return {"text": t}


PRED = code("8640")


def dose(
    value: float = 20,
    unit: str = "mg",
    *,
    freq: float | None = None,
    period: float | None = None,
    period_unit: str = "d",
    timing_code: str | None = None,
    days: float | None = None,
    days_unit: str = "d",
    start: str | None = None,
    end: str | None = None,
    seq: int | None = None,
    route: str | None = None,
    no_timing: bool = False,
    **repeat: Any,
) -> dict[str, Any]:
    """A Dosage: value+unit per administration; once daily unless told otherwise."""
    rep: dict[str, Any] = dict(repeat)
    if freq is not None:
        rep["frequency"] = freq
    if period is not None:
        rep["period"], rep["periodUnit"] = period, period_unit
    if freq is None and period is None and timing_code is None and not repeat:
        rep["frequency"], rep["period"], rep["periodUnit"] = 1, 1, "d"
    if days is not None:
        rep["boundsDuration"] = {"value": days, "unit": days_unit, "code": days_unit}
    if start or end:
        rep["boundsPeriod"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    out: dict[str, Any] = {"doseAndRate": [{"doseQuantity": {"value": value, "unit": unit}}]}
    if unit.startswith("{") or unit in ("mg", "g", "ug", "mL", "1"):
        out["doseAndRate"][0]["doseQuantity"]["code"] = unit
    timing: dict[str, Any] = {}
    if rep:
        timing["repeat"] = rep
    if timing_code:
        timing["code"] = {"coding": [{"code": timing_code}]}
    if timing and not no_timing:
        out["timing"] = timing
    if seq is not None:
        out["sequence"] = seq
    if route:
        out["route"] = {"text": route}
    return out


def req(
    rid: str | None = "o1",
    *,
    med: dict[str, Any] | None = None,
    dosages: Sequence[dict[str, Any]] | None = None,
    status: str = "completed",
    authored: str | None = "2024-06-01",
    **extra: Any,
) -> MedicationRequest:
    data: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "subject": {"reference": "Patient/pt-test"},
        "medicationCodeableConcept": PRED if med is None else med,
        "dosageInstruction": list(dosages) if dosages is not None else [dose(days=10)],
    }
    if rid:
        data["id"] = rid
    if authored:
        data["authoredOn"] = authored
    if "medicationReference" in extra:
        data.pop("medicationCodeableConcept")
    data.update(extra)
    return MedicationRequest.model_validate(data)


def stmt(rid: str = "s1", *, med: dict[str, Any] | None = None, status: str = "completed",
         dosages: Sequence[dict[str, Any]] | None = None, **extra: Any) -> MedicationStatement:  # fmt: skip
    data: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "id": rid,
        "status": status,
        "subject": {"reference": "Patient/pt-test"},
        "medicationCodeableConcept": PRED if med is None else med,
        "dosage": list(dosages) if dosages is not None else [dose()],
    }
    data.update(extra)
    return MedicationStatement.model_validate(data)


def admin(rid: str = "a1", *, med: dict[str, Any] | None = None, mg: float = 1000,
          when: str = "2024-06-10", route: str = "intravenous", status: str = "completed",
          unit: str = "mg", **extra: Any) -> MedicationAdministration:  # fmt: skip
    data: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": rid,
        "status": status,
        "subject": {"reference": "Patient/pt-test"},
        "medicationCodeableConcept": code("6902") if med is None else med,
        "dosage": {"dose": {"value": mg, "unit": unit, "code": unit}, "route": {"text": route}},
    }
    if when:
        data["effectiveDateTime"] = when
    data.update(extra)
    return MedicationAdministration.model_validate(data)


def dispense(rid: str = "d1", *, med: dict[str, Any] | None = None, handed: str = "2024-06-01",
             days: int | None = 30, qty: float | None = 30, qty_unit: str = "{tbl}",
             status: str = "completed", **extra: Any) -> MedicationDispense:  # fmt: skip
    data: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": rid,
        "status": status,
        "medicationCodeableConcept": code("312615") if med is None else med,
        "whenHandedOver": handed,
    }
    if days is not None:
        data["daysSupply"] = {"value": days, "unit": "d", "code": "d"}
    if qty is not None:
        data["quantity"] = {"value": qty, "unit": qty_unit, "code": qty_unit}
    data.update(extra)
    return MedicationDispense.model_validate(data)


def observation(
    oid: str, loinc: str, value: float, unit: str, when: str, *, status: str = "final"
) -> Observation:
    """A body measurement: ``value`` ``unit`` (UCUM code) measured on ``when``."""
    return Observation.model_validate(
        {
            "resourceType": "Observation",
            "id": oid,
            "status": status,
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "subject": {"reference": "Patient/pt-test"},
            "effectiveDateTime": when,
            "valueQuantity": {
                "value": value,
                "unit": unit,
                "system": "http://unitsofmeasure.org",
                "code": unit,
            },
        }
    )


def medication(mid: str, **data: Any) -> Medication:
    return Medication.model_validate({"resourceType": "Medication", "id": mid, **data})


def run(
    resources: Sequence[Resource],
    *,
    medications: Mapping[str, Medication] | None = None,
    drafts: Sequence[MedicationRequest] = (),
    params: ExposureParams = PARAMS,
    know: GlucocorticoidKnowledge = KNOWLEDGE,
    now: datetime = NOW,
    observations: Sequence[Resource] = (),
) -> ExposureSummary:
    return summarize_exposure(
        resources, medications or {}, know, params, now, drafts, observations=observations
    )


def day(offset: int) -> str:
    """ISO date ``offset`` days from TODAY (negative = past)."""
    return (TODAY + timedelta(days=offset)).isoformat()
