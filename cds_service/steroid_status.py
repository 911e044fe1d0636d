"""Glucocorticoid status judged against the thresholds, shared by every topic.

Computed once per hook call (decide.py) from the facts and handed to each rule kind: long-term
use (ACR 2022), current and maximum dose, cumulative dose, the courses behind the numbers, and,
at the order hooks, the glucocorticoid being ordered. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from cds_service.card_text import fmt_date, fmt_months, fmt_number
from cds_service.drafts import reference_key
from cds_service.errors import ContentError
from cds_service.exposure import Course, ExposureSummary
from cds_service.facts import ClinicalFacts
from cds_service.thresholds import Thresholds
from cds_service.valuesets import ValueSet

EPS = 1e-9
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
REPLACEMENT_THRESHOLDS = (
    "replacement.hydrocortisone_max_daily_peq_mg",
    "replacement.cortisone_max_daily_peq_mg",
    "replacement.prednisone_max_daily_peq_mg",
    "replacement.cah_max_daily_peq_mg",
)
MAX_COURSES_LISTED = 6

COMMON_THRESHOLDS = (
    "exposure.long_term_min_daily_mg",
    "exposure.long_term_min_days",
    "exposure.lookback_days",
)
COMMON_SAMPLE = {
    "current_mg": "1250",
    "days_long_term_dose": "365",
    "cumulative_g": "12.5",
    "max_mg": "1250",
    "lookback_months": "12",
    "long_term_min_daily_mg": "2.5",
    "courses": "- prednisone: 40 mg/day prednisone-equivalent, 2026-01-01 to 2026-02-01 [MedicationRequest/x]",
    "unconfirmed_drug": "methylprednisolone",
    "unconfirmed_mg": "1250",
    "unconfirmed_since": "unknown date",
}
# The order kinds' shared placeholders, at their longest.
ORDER_SAMPLE = {
    "drug": "methylprednisolone + dexamethasone",
    "planned_mg": "1250",
}


@dataclass(frozen=True)
class OrderedSteroid:
    """The systemic glucocorticoid among the draft orders the hook advises on."""

    courses: tuple[Course, ...]
    planned_mg: float  # highest planned PEQ mg/day of the focus drafts (0 when unknown)
    refs: tuple[str, ...]
    drug: str

    @staticmethod
    def of(facts: ClinicalFacts) -> OrderedSteroid | None:
        courses = focus_courses(facts.exposure, facts.focus)
        if not courses:
            return None
        names = sorted({c.ingredient_name for c in courses if c.ingredient_name})
        return OrderedSteroid(
            tuple(courses),
            max((c.daily_peq_mg or 0.0 for c in courses), default=0.0),
            tuple(sorted({c.source for c in courses})),
            " + ".join(names) or "glucocorticoid",
        )

    @property
    def key(self) -> str | None:
        """Key of what is being ordered: drug, daily dose and dates of each glucocorticoid
        draft course. The same at order-select and at the order-sign of the same order,
        whatever else is drafted with it; a changed order (another dose or duration) is a new
        key, so it is judged again even when the client reuses draft ids (the CDS Hooks
        Sandbox names every draft request-123)."""
        return reference_key(
            f"{c.ingredient}|{c.daily_peq_mg}|{c.start.isoformat()}|{c.end.isoformat()}"
            for c in self.courses
        )

    def facts(self) -> dict[str, str]:
        return {"drug": self.drug, "planned_mg": fmt_number(self.planned_mg)}


def focus_courses(exposure: ExposureSummary, focus: frozenset[str]) -> list[Course]:
    """Planned systemic glucocorticoid courses of the draft orders in focus."""
    if not focus:
        return []
    return [c for c in exposure.courses if c.planned and c.source in focus]


@dataclass(frozen=True)
class SteroidStatus:
    """Glucocorticoid exposure judged against the thresholds (ACR 2022 long-term definition)."""

    long_term: bool
    current_mg: float
    days_long_term_dose: int
    planned_long_term_days: int
    cumulative_mg: float
    max_mg: float
    coded_long_term: tuple[str, ...]
    any_systemic: bool
    evidence: tuple[str, ...]
    ordered: OrderedSteroid | None  # order hooks: the glucocorticoid being ordered
    # Every course in the lookback is physiological replacement (adrenal insufficiency), not
    # immunosuppression: see replacement_only().
    replacement: bool
    # A current course that rests on an old active order or statement with no dispense,
    # administration or newer record of use (Course.unconfirmed_current): confirm it is taken.
    unconfirmed: Course | None
    _facts: ClinicalFacts = field(repr=False, compare=False)
    _lookback_days: int = field(repr=False, compare=False)
    _thresholds: Thresholds = field(repr=False, compare=False)

    @staticmethod
    def of(
        facts: ClinicalFacts, t: Thresholds, replacement_drugs: ValueSet | None = None
    ) -> SteroidStatus:
        """``replacement_drugs``: the service's replacement-glucocorticoids value set (None:
        no course is judged replacement)."""
        exp = facts.exposure
        low = t.value("exposure.long_term_min_daily_mg")
        min_days = t.value("exposure.long_term_min_days")
        lookback = int(t.value("exposure.lookback_days"))
        days = exp.days_at_or_above(low)
        planned = exp.planned_days_at_or_above(low)
        past_run = exp.current_run_at_or_above(low, include_planned=False)
        coded = facts.refs("long_term_steroid", active_only=True)
        unknown_days, unknown_sources = _unknown_dose_days(facts, low, lookback)
        # ACR 2022: ">3 months at >=2.5 mg/day", summed so intermittent courses count, or an
        # order planned for that long at initiation, or an explicit long-term-use code (Z79.52).
        # Days of a systemic course whose dose cannot be computed (free-text SIG, mg/kg) count
        # too: the duration is known and the knowledge base says they still fire this rule.
        long_term = days + unknown_days >= min_days or past_run + planned >= min_days or bool(coded)
        evidence = (*exp.sources_for_days_at_or_above(low), *unknown_sources)
        return SteroidStatus(
            long_term=long_term,
            current_mg=exp.current_daily_peq_mg(),
            days_long_term_dose=days,
            planned_long_term_days=planned,
            cumulative_mg=exp.cumulative_peq_mg(),
            max_mg=exp.max_daily_peq_mg(),
            coded_long_term=coded,
            any_systemic=bool(exp.courses),
            evidence=tuple(sorted(set(evidence) | set(coded))),
            ordered=OrderedSteroid.of(facts),
            replacement=replacement_only(facts, t, replacement_drugs, lookback),
            unconfirmed=next(
                (c for c in exp.courses if c.unconfirmed_current and not c.planned), None
            ),
            _facts=facts,
            _lookback_days=lookback,
            _thresholds=t,
        )

    @cached_property
    def courses(self) -> str:
        """Markdown list of the courses behind the numbers (drug, dose, dates, source)."""
        return courses_markdown(self._facts, self._lookback_days)

    def unconfirmed_details(self) -> list[str]:
        """The card paragraph asking to confirm an unconfirmed current course, if any."""
        return ["unconfirmed"] if self.unconfirmed is not None else []

    def facts(self) -> dict[str, str]:
        """The status as card text values, a fresh dict for each caller (several rules read
        them in one hook call; they are worked out once per status, so once per call)."""
        return dict(self._text)

    @cached_property
    def _text(self) -> dict[str, str]:
        t = self._thresholds
        stale = self.unconfirmed
        mg = stale.daily_peq_mg if stale is not None else None
        return {
            "unconfirmed_drug": stale.ingredient_name if stale is not None else "none",
            "unconfirmed_mg": fmt_number(mg) if mg is not None else "unknown",
            "unconfirmed_since": fmt_date(
                stale.last_evidence_on or stale.ordered_on or stale.start if stale else None
            ),
            "current_mg": fmt_number(self.current_mg),
            "days_long_term_dose": str(self.days_long_term_dose),
            "cumulative_g": fmt_number(round(self.cumulative_mg / 1000, 1)),
            "max_mg": fmt_number(self.max_mg),
            "lookback_months": fmt_months(t.value("exposure.lookback_days")),
            "long_term_min_daily_mg": fmt_number(t.value("exposure.long_term_min_daily_mg")),
            "courses": self.courses,
        }


def replacement_only(
    facts: ClinicalFacts, t: Thresholds, drugs: ValueSet | None, lookback_days: int
) -> bool:
    """Whether every glucocorticoid course in the lookback (planned ones included) is
    physiological replacement (clinical-knowledge-2.md 1.4, design rule): hydrocortisone or
    cortisone at replacement doses, or prednisone/prednisolone at replacement doses with
    adrenal insufficiency on record (not drug-induced), and no day above the limit."""
    since = facts.today - timedelta(days=lookback_days)
    courses = [c for c in facts.exposure.courses if c.end >= since]
    if drugs is None or not courses or any(c.daily_peq_mg is None for c in courses):
        return False
    kinds: set[str] = set()
    for course in courses:
        concept = drugs.match_code(RXNORM, course.ingredient)
        kind = concept.properties.get("replacement") if concept is not None else None
        if kind is None:
            return False
        kinds.add(str(kind))
    insufficiency = facts.of("adrenal_insufficiency", active_only=True)
    if kinds - {"hydrocortisone", "cortisone"} and not insufficiency:
        return False
    limits = {
        "hydrocortisone": t.value("replacement.hydrocortisone_max_daily_peq_mg"),
        "cortisone": t.value("replacement.cortisone_max_daily_peq_mg"),
        "with-adrenal-insufficiency": t.value("replacement.prednisone_max_daily_peq_mg"),
    }
    limit = max(limits.get(kind, 0.0) for kind in kinds)
    if any(h.properties.get("cah") is True for h in insufficiency):
        limit = max(limit, t.value("replacement.cah_max_daily_peq_mg"))
    exp = facts.exposure
    peak = max(exp.max_daily_peq_mg(), max(exp.planned_daily.values(), default=0.0))
    return peak <= limit + EPS


def _dose_text(doses: list[str]) -> str:
    if doses == ["unknown"]:
        return "dose not computable from the record"
    return f"{' → '.join(doses)} mg/day prednisone-equivalent"


# How a course's dose was derived (Course.dose_source), as a course line says it; "structured"
# (a dose in mg on the record) needs no note.
DOSE_SOURCE_NOTES = {
    "product-strength": "dose from units x product strength",
    "weight-based": "dose per body weight or surface area",
    "instruction-text": "dose read from the instruction text",
    "dispensed-supply": "dose from the amount dispensed over the days supplied",
}
# Why a dose could not be derived (Course.dose_unknown_reason).
DOSE_UNKNOWN_NOTES = {
    "no-dose": "no dose on the record",
    "unit-unknown": "dose unit not understood",
    "strength-missing": "product strength unknown",
    "weight-missing": "dose per kg without a recent body weight",
    "height-missing": "dose per m2 without a recent height",
    "unreadable-instruction": "instruction text not understood",
    "taper-unstated": "taper without stated doses",
    "no-peq-factor": "no prednisone-equivalence factor for this drug",
    "supply-unknown": "dispensed without instructions or days supplied",
    "not-positive": "a dose of zero or less on the record",
}


def dose_unknown_note(course: Course) -> str:
    reason = course.dose_unknown_reason
    return DOSE_UNKNOWN_NOTES.get(reason or "", "dose not computable from the record")


def _date_notes(segments: list[Course]) -> list[str]:
    """How sure the course's dates are: none on the record (an active order counted on today
    only, so how long it has been taken is unknown), or inferred from weaker dates."""
    if any(c.start_unknown for c in segments):
        return ["no date on the record: start unknown, ask how long it has been taken"]
    return ["dates inferred"] if any(c.undated for c in segments) else []


def _course_notes(segments: list[Course], today: date) -> list[str]:
    first = segments[0]
    notes = [c.route for c in segments[:1] if c.route not in ("oral", "unknown-systemic")]
    sources = {c.dose_source for c in segments if c.daily_peq_mg is not None}
    notes += [DOSE_SOURCE_NOTES[s] for s in sorted(sources) if s in DOSE_SOURCE_NOTES]
    notes += sorted({dose_unknown_note(c) for c in segments if c.daily_peq_mg is None})
    if any(c.planned for c in segments):
        notes.append("includes planned days")
    if any(c.dose_range for c in segments):
        notes.append("high end of a dose range")
    notes += _date_notes(segments)
    stale = next((c for c in segments if c.unconfirmed_current), None)
    if stale is not None:
        since = stale.last_evidence_on or stale.ordered_on or first.start
        months = fmt_months((today - since).days)
        notes.append(
            f"last evidence of use {since.isoformat()} ({months} months ago): confirm it is taken"
        )
    return notes


def _course_line(source: str, segments: list[Course], today: date) -> str:
    segments.sort(key=lambda c: c.start)
    doses: list[str] = []
    for c in segments:
        text = fmt_number(c.daily_peq_mg) if c.daily_peq_mg is not None else "unknown"
        if not doses or doses[-1] != text:
            doses.append(text)
    first, last = segments[0], segments[-1]
    notes = _course_notes(segments, today)
    suffix = f" ({', '.join(notes)})" if notes else ""
    return (
        f"- {first.ingredient_name}: {_dose_text(doses)}, "
        f"{first.start.isoformat()} to {last.end.isoformat()}{suffix} [{source}]"
    )


def courses_markdown(facts: ClinicalFacts, lookback_days: int) -> str:
    """One line per source record, newest first: drug, route, doses (PEQ), dates, reference."""
    since = facts.today - timedelta(days=lookback_days)
    by_source: dict[str, list[Course]] = {}
    for course in facts.exposure.courses:
        if course.end >= since:
            by_source.setdefault(course.source, []).append(course)
    newest_first = sorted(
        by_source.items(), key=lambda item: max(c.start for c in item[1]), reverse=True
    )
    lines = [_course_line(source, segments, facts.today) for source, segments in newest_first]
    if not lines:
        return "- no dated systemic course in the lookback (long-term use is coded on the record)"
    hidden = len(lines) - MAX_COURSES_LISTED
    shown = lines[:MAX_COURSES_LISTED]
    if hidden > 0:
        shown.append(f"- and {hidden} earlier course(s)")
    return "\n".join(shown)


def _unknown_dose_days(
    facts: ClinicalFacts, known_mg: float, lookback_days: int
) -> tuple[int, tuple[str, ...]]:
    """Days in the lookback covered only by systemic courses of unknown dose, and their sources."""
    if not any(c.daily_peq_mg is None and not c.planned for c in facts.exposure.courses):
        return 0, ()
    since = facts.today - timedelta(days=lookback_days - 1)
    known = {day for day, mg in facts.exposure.daily.items() if mg >= known_mg}
    days: set[date] = set()
    sources: set[str] = set()
    for course in facts.exposure.courses:
        if course.daily_peq_mg is not None or course.planned:
            continue
        start, end = max(course.start, since), min(course.end, facts.today)
        covered = {start + timedelta(days=i) for i in range((end - start).days + 1)} - known
        if covered:
            days |= covered
            sources.add(course.source)
    return len(days), tuple(sorted(sources))


# ---------------------------------------------------------------------------------------------
# Exposure projected over planned days (order hooks)


def run_with_plan(exposure: ExposureSummary, mg: float) -> int:
    """Days at or above ``mg``: the run ending today continued by planned days, or (a draft
    starting later) the planned days alone, whichever is longer."""
    return max(
        exposure.current_run_at_or_above(mg, include_planned=True),
        exposure.planned_days_at_or_above(mg),
    )


def projected_cumulative_mg(exposure: ExposureSummary) -> float:
    """Cumulative PEQ mg of the lookback window plus the planned days (today counted once)."""
    today = exposure.today
    future = [v for d, v in exposure.planned_daily.items() if d > today]
    extra_today = max(exposure.planned_daily.get(today, 0.0) - exposure.daily.get(today, 0.0), 0.0)
    return exposure.cumulative_peq_mg() + math.fsum(future) + extra_today


def recent_run(exposure: ExposureSummary, mg: float, since: date) -> int:
    """Longest run of days at or above ``mg`` (actual exposure) that ended on or after ``since``."""
    days = sorted(d for d, v in exposure.daily.items() if v >= mg - EPS)
    best = run = 0
    previous: date | None = None
    for day in days:
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        if day >= since:
            best = max(best, run)
        previous = day
    return best


# ---------------------------------------------------------------------------------------------
# The dose lines of the service, as card text says them (cards that cannot or need not apply
# them yet: an unknown dose, a current course with nothing due)

DOSE_LINE_THRESHOLDS = (
    "exposure.long_term_min_days",
    "infection.pjp_min_daily_mg",
    "infection.pjp_min_days",
    "infection.tb_min_daily_mg",
    "infection.tb_min_days",
    "osteonecrosis.daily_mg",
    "osteonecrosis.high_dose_min_days",
    "osteonecrosis.cumulative_mg",
)
DOSE_LINE_SAMPLE = {
    "long_term_months": "3",
    "pjp_min_mg": "20",
    "pjp_min_weeks": "4",
    "tb_min_mg": "15",
    "tb_min_weeks": "4",
    "osteonecrosis_mg": "20",
    "osteonecrosis_weeks": "4",
    "osteonecrosis_g": "2",
}


def dose_line_facts(t: Thresholds) -> dict[str, str]:
    def weeks(days: float) -> str:
        return fmt_number(round(days / 7))

    return {
        "long_term_months": fmt_months(t.value("exposure.long_term_min_days")),
        "pjp_min_mg": fmt_number(t.value("infection.pjp_min_daily_mg")),
        "pjp_min_weeks": weeks(t.value("infection.pjp_min_days")),
        "tb_min_mg": fmt_number(t.value("infection.tb_min_daily_mg")),
        "tb_min_weeks": weeks(t.value("infection.tb_min_days")),
        "osteonecrosis_mg": fmt_number(t.value("osteonecrosis.daily_mg")),
        "osteonecrosis_weeks": weeks(t.value("osteonecrosis.high_dose_min_days")),
        "osteonecrosis_g": fmt_number(t.value("osteonecrosis.cumulative_mg") / 1000),
    }


# The daily-dose lines the rules compare against (the explanation counts days at or above each;
# the preview draws them across its chart): threshold paths (their values and units come
# from hooks/thresholds.toml) with what each decides. Paths of equal value share one line.
DOSE_LINES: tuple[tuple[str, str], ...] = (
    ("exposure.long_term_min_daily_mg", "long-term use"),
    ("bone.under40_moderate_daily_mg", "fracture risk under 40"),
    ("bone.frax_gc_adjust_above_mg", "FRAX adjustment"),
    ("exposure.high_dose_min_daily_mg", "high dose"),
    ("infection.pjp_min_daily_mg", "PJP prophylaxis"),
    ("infection.live_vaccine_min_daily_mg", "live vaccines"),
    ("exposure.very_high_daily_mg", "very high fracture risk"),
)
DAILY_UNIT = "mg/d"


def dose_lines(thresholds: Thresholds) -> list[dict[str, Any]]:
    """One line per distinct value, lowest first: ``mg``, ``label`` (the uses joined) and the
    threshold ``paths``. Raises ContentError for a missing path or a unit other than mg/d."""
    by_value: dict[float, dict[str, Any]] = {}
    for path, use in DOSE_LINES:
        threshold = thresholds[path]
        if threshold.unit != DAILY_UNIT:
            raise ContentError(f"dose line {path}: unit must be {DAILY_UNIT}")
        line = by_value.setdefault(
            threshold.value, {"mg": threshold.value, "uses": [], "paths": []}
        )
        line["uses"].append(use)
        line["paths"].append(path)
    return [
        {"mg": line["mg"], "label": ", ".join(line["uses"]), "paths": line["paths"]}
        for _, line in sorted(by_value.items())
    ]
