"""Builders for the topic unit tests: synthetic facts without FHIR, the bundled thresholds.

Each course is (days ago it started, days it lasted, PEQ mg/day); planned courses start today.
The exposure timeline is built from the courses as the exposure engine would: one day map of
actual use in the lookback, one of planned use from today on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from cds_service.exposure import Course, ExposureSummary
from cds_service.facts import ClinicalFacts, Hit
from cds_service.lab_results import Result
from cds_service.rule_kind import Finding, RuleKind
from cds_service.steroid_status import SteroidStatus
from cds_service.thresholds import Thresholds, load_thresholds
from cds_service.valuesets import load_valuesets

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS: Thresholds = load_thresholds(REPO / "hooks" / "thresholds.toml")
REPLACEMENT_DRUGS = load_valuesets(REPO / "hooks" / "valuesets")["replacement-glucocorticoids"]
TODAY = date(2026, 11, 24)


@dataclass(frozen=True)
class Taken:
    """A course taken: started ``ago`` days before today, for ``days`` days, at ``mg``/day."""

    ago: int
    days: int
    mg: float | None
    route: str = "oral"
    source: str = "MedicationRequest/gc"
    ingredient: str = "8640"  # RxNorm: prednisone; 5492 hydrocortisone


@dataclass(frozen=True)
class Planned:
    """A draft order from today: ``days`` days at ``mg``/day."""

    days: int
    mg: float
    source: str = "MedicationRequest/draft"


def exposure(
    taken: Sequence[Taken] = (), planned: Sequence[Planned] = (), pulses: Iterable[int] = ()
) -> ExposureSummary:
    courses: list[Course] = []
    daily: dict[date, float] = {}
    sources: dict[date, set[str]] = {}
    since = TODAY - timedelta(days=364)
    for t in taken:
        start = TODAY - timedelta(days=t.ago)
        end = min(start + timedelta(days=t.days - 1), TODAY)
        courses.append(
            Course(
                t.source, t.ingredient, "prednisone", start, end, t.mg, t.route, False, False, False
            )
        )
        day = max(start, since)
        while day <= end and t.mg is not None:
            daily[day] = daily.get(day, 0.0) + t.mg
            sources.setdefault(day, set()).add(t.source)
            day += timedelta(days=1)
    planned_daily: dict[date, float] = {}
    for p in planned:
        end = TODAY + timedelta(days=p.days - 1)
        courses.append(
            Course(p.source, "8640", "prednisone", TODAY, end, p.mg, "oral", True, False, False)
        )
        for i in range(p.days):
            day = TODAY + timedelta(days=i)
            planned_daily[day] = planned_daily.get(day, 0.0) + p.mg
    pulse_list = tuple(
        (TODAY - timedelta(days=ago), 1000.0, f"MedicationAdministration/p{ago}") for ago in pulses
    )
    return ExposureSummary(
        courses=tuple(courses),
        excluded_sources=(),
        daily=daily,
        planned_daily=planned_daily,
        today=TODAY,
        window_start=since,
        pulses=pulse_list,
        day_sources={d: frozenset(s) for d, s in sources.items()},
    )


def hit(
    role: str,
    ref: str,
    *,
    ago: int | None = 30,
    active: bool = True,
    value: float | None = None,
    given: bool = False,
    supply_days: float | None = None,
    value_unit: str | None = None,
    result: Result | None = None,
    **props: Any,
) -> Hit:
    """A value-set hit ``ago`` days old; ``given``/``supply_days``: a medication record that
    documents a dose given or handed over (and its days' supply); ``value_unit`` is the value's
    UCUM unit, ``result`` what a test result says (lab_results), ``props`` the value-set
    concept's properties."""
    day = TODAY - timedelta(days=ago) if ago is not None else None
    rtype = ref.split("/")[0]
    return Hit(ref, role, day, active, props, value, rtype, given, supply_days, value_unit, result)


def facts(
    *hits: Hit,
    age: int | None = 37,
    taken: Sequence[Taken] = (),
    planned: Sequence[Planned] = (),
    pulses: Iterable[int] = (),
    focus: Iterable[str] = (),
    draft_names: dict[str, str] | None = None,
    unreadable: dict[str, int] | None = None,
    unreadable_drafts: int = 0,
) -> ClinicalFacts:
    by_role: dict[str, list[Hit]] = {}
    for h in hits:
        by_role.setdefault(h.role, []).append(h)
    focus_set = frozenset(focus) | frozenset(p.source for p in planned)
    return ClinicalFacts(
        today=TODAY,
        age=age,
        exposure=exposure(taken, planned, pulses),
        hits=by_role,
        focus=focus_set,
        draft_names=draft_names or {},
        unreadable_steroid_entries=unreadable or {},
        unreadable_steroid_drafts=unreadable_drafts,
    )


def run(kind: RuleKind, f: ClinicalFacts) -> Finding | None:
    """The kind's finding, checked against what the kind declares (as the catalog would)."""
    finding = kind.evaluate(f, SteroidStatus.of(f, THRESHOLDS, REPLACEMENT_DRUGS), THRESHOLDS)
    if finding is not None:
        assert finding.summary in kind.summaries
        assert set(finding.details) <= set(kind.details)
        assert set(finding.suggestions) <= set(kind.suggestions)
        missing = {p for p in kind.sample_facts if p not in finding.facts}
        assert not missing, f"placeholders without a value: {missing}"
    return finding
