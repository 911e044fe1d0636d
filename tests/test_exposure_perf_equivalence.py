"""The exposure engine's speed-ups change nothing: memoised and interval-based results equal a
straightforward computation (hypothesis-generated records)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service import medications as meds
from cds_service.exposure import timeline
from cds_service.exposure.context import Context as ExposureContext
from cds_service.fhir.views import Medication, Reference
from cds_service.medications.identify import identify
from cds_service.medications.route import read_route
from tests.test_exposure_support import (
    ATC,
    KNOWLEDGE,
    NOW,
    PARAMS,
    RXNORM,
    admin,
    code,
    day,
    dispense,
    dose,
    medication,
    req,
    run,
    stmt,
)

INGREDIENTS = ["8640", "6902", "3264", "5492"]

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
    for system, value in draw(st.lists(CODES, max_size=2)):
        coding = {"system": system, "code": value}
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
    med_code = draw(concepts())
    if med_code is not None:
        data["code"] = med_code
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


def _ref(reference: str, display: str | None) -> Reference:
    return Reference.model_validate({"reference": reference, "display": display})


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
                ref = _ref("Medication/m1", shown) if used is not None or shown else None
                bundle = {"Medication/m1": used} if used is not None else {}
                fresh = identify(cc, ref, used, KNOWLEDGE, texts)
                for _ in range(2):
                    assert meds.identify_drug(cc, ref, [], bundle, KNOWLEDGE, texts) == fresh


# ------------------------------------------------------------------ interval timeline


def _reference_days(seg: Any, lo: date, hi: date) -> Iterator[date]:
    day, last = max(seg.start, lo), min(seg.end, hi)
    while day <= last:
        if seg.weekdays is None or day.weekday() in seg.weekdays:
            yield day
        day += timedelta(days=1)


def _reference_combine(
    per_record: Mapping[tuple[str, str, date], float], records: Mapping[str, Any],
    anchors: Mapping[int, str],
) -> dict[date, float]:  # fmt: skip
    """The per-day dedup of the first version of the engine, kept as the reference."""
    by_kind: dict[tuple[str, date, int, str], float] = {}
    for (src, ing, day_), value in per_record.items():
        rec = records[src]
        key = (ing, day_, rec.cluster, rec.kind)
        if rec.kind == "administration":
            by_kind[key] = by_kind.get(key, 0.0) + value
        else:
            by_kind[key] = max(by_kind.get(key, 0.0), value)
    by_cluster: dict[tuple[str, date, int], float] = {}
    for (ing, day_, cluster, _kind), value in by_kind.items():
        by_cluster[(ing, day_, cluster)] = max(by_cluster.get((ing, day_, cluster), 0.0), value)
    by_anchor: dict[tuple[str, date, str], float] = {}
    for (ing, day_, cluster), value in by_cluster.items():
        key_a = (ing, day_, anchors[cluster])
        by_anchor[key_a] = by_anchor.get(key_a, 0.0) + value
    by_ingredient: dict[tuple[str, date], float] = {}
    for (ing, day_, _anchor), value in by_anchor.items():
        by_ingredient[(ing, day_)] = max(by_ingredient.get((ing, day_), 0.0), value)
    totals: dict[date, float] = {}
    for (_ing, day_), value in by_ingredient.items():
        totals[day_] = totals.get(day_, 0.0) + value
    return {d: round(v, 6) for d, v in sorted(totals.items()) if v > 0}


def reference_maps(
    resources: Sequence[Any], drafts: Sequence[Any], know: Any = KNOWLEDGE
) -> tuple[dict[date, float], dict[date, float], dict[date, frozenset[str]]]:
    """daily, planned_daily and day_sources by the straightforward per-day loops."""
    ctx = ExposureContext(know, PARAMS, {}, NOW.tzinfo, NOW.date())
    prepared = timeline._prepare(resources, drafts, ctx)
    records, today = prepared.records, ctx.today
    window_start = today - timedelta(days=PARAMS.lookback_days - 1)
    horizon = today + timedelta(days=PARAMS.lookback_days)
    actual: dict[tuple[str, str, date], float] = {}
    planned: dict[tuple[str, str, date], float] = {}
    day_sources: dict[date, set[str]] = {}
    for src in sorted(records):
        rec = records[src]
        for seg in rec.segments:
            if seg.peq is None or seg.peq <= 0:
                continue
            if rec.policy != "planned":
                for d in _reference_days(seg, window_start, today):
                    key = (src, seg.ingredient, d)
                    actual[key] = actual.get(key, 0.0) + seg.peq
                    day_sources.setdefault(d, set()).add(src)
            if rec.policy in ("current", "planned", "supply"):
                for d in _reference_days(seg, today, horizon):
                    key = (src, seg.ingredient, d)
                    planned[key] = planned.get(key, 0.0) + seg.peq
    daily = _reference_combine(actual, records, prepared.anchors)
    planned_daily = _reference_combine(planned, records, prepared.anchors)
    sources = {d: frozenset(s) for d, s in day_sources.items() if d in daily}
    return daily, planned_daily, sources


@st.composite
def exposure_records(draw: st.DrawFn) -> tuple[list[Any], list[Any]]:
    """Orders (tapers, weekdays, renewals), statements, dispenses, IV administrations, drafts."""
    out: list[Any] = []
    drafts: list[Any] = []
    mgs = st.sampled_from([1, 2.5, 5, 7.5, 10, 12.5, 20, 40, 60, 500, 1000])
    for i in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(["request", "request", "taper", "statement", "admin", "dispense", "draft"]))  # fmt: skip
        ing = draw(st.sampled_from(INGREDIENTS))
        start = draw(st.integers(-420, 30))
        length = draw(st.integers(1, 120))
        mg = draw(mgs)
        link = i % 2 == 1
        if kind in ("request", "draft"):
            status = draw(st.sampled_from(["active", "completed", "stopped", "on-hold", "draft"]))
            extra: dict[str, Any] = {}
            if draw(st.booleans()):
                extra["dayOfWeek"] = draw(st.lists(st.sampled_from(["mon", "wed", "fri", "sun"]), min_size=1, unique=True))  # fmt: skip
            bounded = draw(st.booleans())
            dosage = dose(mg, days=length if bounded else None, seq=1, route=draw(st.sampled_from([None, "oral", "intravenous"])), **extra)  # fmt: skip
            more: dict[str, Any] = {}
            if link:
                more["priorPrescription"] = {"reference": "MedicationRequest/o0"}
            r = req(f"o{i}", med=code(ing), status=status, authored=day(start), dosages=[dosage], **more)  # fmt: skip
            (drafts if kind == "draft" else out).append(r)
        elif kind == "taper":
            steps = [dose(m, days=draw(st.integers(1, 20)), seq=n + 1) for n, m in enumerate(draw(st.lists(mgs, min_size=2, max_size=4)))]  # fmt: skip
            status = draw(st.sampled_from(["active", "completed"]))
            out.append(req(f"o{i}", med=code(ing), status=status, authored=day(start), dosages=steps))  # fmt: skip
        elif kind == "statement":
            more = {"derivedFrom": [{"reference": "MedicationRequest/o0"}]} if link else {}
            period = {"start": day(start), "end": day(start + length)}
            status = draw(st.sampled_from(["active", "completed", "intended"]))
            out.append(stmt(f"s{i}", med=code(ing), status=status, dosages=[dose(mg)], effectivePeriod=period, **more))  # fmt: skip
        elif kind == "dispense":
            more = (
                {"authorizingPrescription": [{"reference": "MedicationRequest/o0"}]} if link else {}
            )
            out.append(dispense(f"d{i}", handed=day(start), days=length, qty=length, **more))
        else:
            more = {"request": {"reference": "MedicationRequest/o0"}} if link else {}
            route = draw(st.sampled_from(["intravenous", "oral"]))
            when = day(draw(st.integers(-2, 0) | st.integers(-420, 0)))
            ing = ing if draw(st.booleans()) else "6902"  # same-day doses of one cluster add up
            out.append(admin(f"a{i}", med=code(ing), mg=mg, when=when, route=route, **more))
            if draw(st.booleans()):  # a second dose that day: administrations add up
                out.append(admin(f"a{i}b", med=code(ing), mg=mg, when=when, route=route, **more))
    return out, drafts


THRESHOLDS = [0.5, 1, 2.5, 5, 7.5, 10, 12.5, 20, 30, 40, 60, 250, 1000]


@settings(max_examples=300, deadline=None)
@given(data=exposure_records())
def test_interval_timeline_equals_the_per_day_computation(
    data: tuple[list[Any], list[Any]],
) -> None:
    resources, drafts = data
    summary = run(resources, drafts=drafts)
    daily, planned_daily, sources = reference_maps(resources, drafts)
    assert list(summary.daily.items()) == list(daily.items())
    assert list(summary.planned_daily.items()) == list(planned_daily.items())
    assert dict(summary.day_sources) == sources
    assert summary.daily == daily
    assert summary.planned_daily == planned_daily
    assert len(summary.daily) == len(daily)
    assert len(summary.day_sources) == len(sources)
    # The summary over plain dicts answers with the original per-day methods.
    plain = replace(summary, daily=daily, planned_daily=planned_daily, day_sources=sources)
    for probe in (summary.today, summary.today - timedelta(days=1), summary.window_start, date(2000, 1, 1), *list(daily)[:3]):  # fmt: skip
        assert summary.daily.get(probe) == daily.get(probe)
        assert (probe in summary.daily) == (probe in daily)
        assert summary.planned_daily.get(probe, 0.0) == planned_daily.get(probe, 0.0)
        assert summary.day_sources.get(probe) == sources.get(probe)
    assert summary.cumulative_peq_mg() == plain.cumulative_peq_mg()
    assert summary.max_daily_peq_mg() == plain.max_daily_peq_mg()
    assert summary.current_daily_peq_mg() == plain.current_daily_peq_mg()
    values = sorted({*daily.values(), *planned_daily.values()})
    for mg in [*THRESHOLDS, *values, *(v + 1e-6 for v in values)]:
        for _ in range(2):  # the second answer comes from the per-threshold memo
            assert summary.days_at_or_above(mg) == plain.days_at_or_above(mg)
            assert summary.longest_run_at_or_above(mg) == plain.longest_run_at_or_above(mg)
            assert summary.planned_days_at_or_above(mg) == plain.planned_days_at_or_above(mg)
            assert summary.sources_for_days_at_or_above(mg) == plain.sources_for_days_at_or_above(mg)  # fmt: skip
            for planned in (False, True):
                assert summary.current_run_at_or_above(
                    mg, include_planned=planned
                ) == plain.current_run_at_or_above(mg, include_planned=planned)


ROUTES = st.sampled_from(["intravenous", "IV", "oral", "by mouth", "IM", "subcutaneous", "inhaled", "x"])  # fmt: skip


@SETTINGS
@given(
    route_text=st.none() | ROUTES,
    display=st.none() | ROUTES,
    route_code=st.none() | st.sampled_from(["47625008", "26643006", "78421000"]),
)
def test_memoised_route_equals_a_fresh_one(
    route_text: str | None, display: str | None, route_code: str | None
) -> None:
    concept: dict[str, Any] = {}
    if route_text:
        concept["text"] = route_text
    if route_code or display:
        concept["coding"] = [{"system": "http://snomed.info/sct", "code": route_code or "1", "display": display}]  # fmt: skip
    route = medication("r", code=concept).code if concept else None
    for oral in (False, True):
        drug = meds.DrugInfo("8640", "prednisone", None, None, excluded=False, oral_form=oral)
        fresh = read_route(route, KNOWLEDGE, drug)
        for _ in range(2):
            assert meds.route_of(route, KNOWLEDGE, drug) == fresh
