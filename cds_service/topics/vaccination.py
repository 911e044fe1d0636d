"""Vaccines due during glucocorticoid therapy: the recombinant zoster and pneumococcal series
(ACIP), this season's influenza, what waits for a lower dose, and what pregnancy rules out.

Read from the vaccines value set's ``group``, ``live`` and ``product`` properties. Only
completed Immunization records are doses; an open order or a draft (result "pending") is
ordered, so nothing is suggested again. ACR 2022: at 20 mg/day or more non-live vaccines other
than influenza wait until the dose is lower; they are named with when, not ordered now. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from cds_service.card_text import fmt_date, fmt_number
from cds_service.exposure import ExposureSummary
from cds_service.facts import ClinicalFacts, Hit
from cds_service.steroid_status import EPS
from cds_service.thresholds import Thresholds
from cds_service.topics.child import is_child

THRESHOLDS = (
    "infection.influenza_interval_days",
    "infection.nonlive_vaccine_defer_daily_mg",
    "vaccines.rzv_doses",
    "vaccines.rzv_min_interval_days",
    "vaccines.pcv15_ppsv23_min_interval_days",
)
DETAILS = (
    "vaccines",
    "vaccines-defer",
    "vaccines-defer-until",
    "zoster-dose-2",
    "zoster-dose-2-later",
    "pneumococcal-ppsv23",
    "pneumococcal-complete",
    "pneumococcal-verify",
    "vaccines-pregnancy",
    "vaccines-pregnancy-child",
    "vaccines-child",
    "pneumococcal-child",
    "vaccines-age-unknown",
)
SUGGESTIONS = (
    "zoster",
    "zoster-dose-2",
    "pneumococcal",
    "pneumococcal-ppsv23",
    "influenza",
    "influenza-child",
    "influenza-pregnancy",
)
SAMPLE = {
    "vaccines_due": "recombinant zoster dose 2, PPSV23 after PCV15, influenza",
    "vaccines_later": "recombinant zoster dose 2, PPSV23 after PCV15",
    "vaccines_later_rest": "PPSV23 after PCV15",
    "defer_mg": "20",
    "defer_until": "unknown date",
    "rzv_last": "unknown date",
}


@dataclass(frozen=True)
class Need:
    """One vaccine still due: its suggestion (None: check the record first), the words for
    the card, an extra detail fragment, and whether it waits for a dose below 20 mg/day."""

    suggestion: str | None
    label: str
    detail: str | None = None
    deferrable: bool = True

    @property
    def later_detail(self) -> str | None:
        """The detail when the vaccine waits for a lower dose: a dose 2 that waits has its own
        plan line (never a restart), so it leaves the "Plan ... once below" list."""
        return "zoster-dose-2-later" if self.detail == "zoster-dose-2" else None


@dataclass
class VaccinePlan:
    now: list[Need] = field(default_factory=list)
    later: list[Need] = field(default_factory=list)  # deferred until the dose is lower
    details: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)

    @property
    def suggestions(self) -> list[str]:
        return [n.suggestion for n in self.now if n.suggestion]

    @property
    def due(self) -> list[str]:
        return [n.label for n in self.now]


def _group(name: str) -> Callable[[Hit], bool]:
    return lambda h: str(h.properties.get("group", "")) == name


def _doses(facts: ClinicalFacts, wanted: Callable[[Hit], bool]) -> list[Hit]:
    """Completed immunizations (oldest first; undated last)."""
    hits = [
        h
        for h in facts.of("vaccines")
        if wanted(h) and h.resource_type == "Immunization" and h.result != "pending"
    ]
    return sorted(hits, key=lambda h: (h.day is None, h.day or date.min))


def _ordered(facts: ClinicalFacts, wanted: Callable[[Hit], bool]) -> bool:
    """An open order or a draft for the vaccine: it is on its way."""
    return any(
        wanted(h) and h.active and (h.result == "pending" or h.resource_type != "Immunization")
        for h in facts.of("vaccines")
    )


def zoster_need(facts: ClinicalFacts, t: Thresholds) -> tuple[Need | None, date | None]:
    """Recombinant zoster (MMWR 2022;71:80): 2 doses at least 4 weeks apart; one dose asks for
    dose 2 from 4 weeks after it (never a restart). Returns the need and the last dose day."""
    wanted = _group("zoster-recombinant")
    if _ordered(facts, wanted):
        return None, None
    gap = timedelta(days=t.value("vaccines.rzv_min_interval_days"))
    counted: list[date | None] = []
    for dose in _doses(facts, wanted):
        last = counted[-1] if counted else None
        if dose.day is None or last is None or dose.day >= last + gap:
            counted.append(dose.day)  # an undated dose is given the benefit of the doubt
    if len(counted) >= t.value("vaccines.rzv_doses"):
        return None, None
    if not counted:
        return Need("zoster", "recombinant zoster (2 doses)"), None
    last = counted[-1]
    if last is not None and facts.today < last + gap:
        return None, last  # dose 2 is not due yet
    return Need("zoster-dose-2", "recombinant zoster dose 2", "zoster-dose-2"), last


def pneumococcal_need(facts: ClinicalFacts, t: Thresholds) -> Need | None:
    """ACIP October 2024 (clinical-knowledge-2.md 6.3): complete with PCV20 or PCV21, or PCV15
    followed by PPSV23 (at least 8 weeks later when immunocompromised). PCV13 or PPSV23 alone
    is completed with PCV20 or PCV21; an unspecified product is checked first."""
    wanted = _group("pneumococcal")
    if _ordered(facts, wanted):
        return None
    doses = _doses(facts, wanted)
    products = {str(h.properties.get("product", "unspecified")) for h in doses}
    if products & {"pcv20", "pcv21"}:
        return None
    gap = timedelta(days=t.value("vaccines.pcv15_ppsv23_min_interval_days"))
    pcv15 = [h.day for h in doses if h.properties.get("product") == "pcv15"]
    if pcv15:
        first = min((d for d in pcv15 if d is not None), default=None)
        after = [
            h
            for h in doses
            if h.properties.get("product") == "ppsv23"
            and (first is None or h.day is None or h.day >= first + gap)
        ]
        if after:
            return None
        if first is not None and facts.today < first + gap:
            return None  # PPSV23 is not due yet
        return Need("pneumococcal-ppsv23", "PPSV23 after PCV15", "pneumococcal-ppsv23")
    if products & {"pcv13", "ppsv23"}:
        return Need("pneumococcal", "pneumococcal (PCV20 or PCV21)", "pneumococcal-complete")
    if doses:
        return Need(None, "pneumococcal (check the product on record)", "pneumococcal-verify")
    return Need("pneumococcal", "pneumococcal (PCV20 or PCV21)")


def influenza_need(facts: ClinicalFacts, t: Thresholds) -> Need | None:
    """This season's non-live influenza vaccine, given or ordered within the interval."""
    recent = [
        h
        for h in facts.within("vaccines", t.value("infection.influenza_interval_days"))
        if str(h.properties.get("group", "")).startswith("influenza")
        and h.properties.get("live") is not True
    ]
    return (
        None
        if recent
        else Need("influenza", "influenza (high-dose or adjuvanted)", deferrable=False)
    )


def defer_until(exposure: ExposureSummary, mg: float) -> date | None:
    """The first planned day (after today) whose dose is above zero and below ``mg``: when a
    taper on record or being ordered brings the dose under the line. None when unknown."""
    for day in sorted(d for d in exposure.planned_daily if d > exposure.today):
        if 0 < exposure.planned_daily[day] < mg - EPS:
            return day
    return None


def _for_age(
    facts: ClinicalFacts,
    young: bool,
    zoster: Need | None,
    pneumococcal: Need | None,
    influenza: Need | None,
) -> tuple[Need | None, Need | None, Need | None]:
    """Children follow the child and adolescent schedule: no recombinant zoster under 18, no
    adult pneumococcal product (named, not ordered), an influenza order without the adult
    products. An unknown age gets no adult product at all: no zoster or pneumococcal product,
    and the influenza order dosed for age (topics/child)."""
    if not young and facts.age is not None:
        return zoster, pneumococcal, influenza
    if pneumococcal is not None:
        label = "pneumococcal (child and adolescent schedule)" if young else "pneumococcal"
        pneumococcal = Need(None, label, "pneumococcal-child" if young else "vaccines-age-unknown")
    if influenza is not None:  # a child, or an unknown age: no adult high-dose product
        influenza = Need("influenza-child", "inactivated influenza", deferrable=False)
    return None, pneumococcal, influenza


def _sort_needs(plan: VaccinePlan, needs: tuple[Need | None, ...], *, defer: bool) -> None:
    """Each need now or later (a deferrable one waits above the line), with its detail."""
    for need in needs:
        if need is None:
            continue
        later = defer and need.deferrable
        (plan.later if later else plan.now).append(need)
        detail = (need.later_detail or need.detail) if later else need.detail
        plan.details += [detail] if detail else []


def plan_vaccines(
    facts: ClinicalFacts, t: Thresholds, *, dose_mg: float, pregnant: bool
) -> VaccinePlan:
    """What is due now, what waits for a dose below the deferral line (``dose_mg``: the daily
    dose now or being ordered), and the detail fragments that explain both."""
    plan = VaccinePlan()
    zoster, rzv_last = zoster_need(facts, t)
    young = is_child(facts, t)
    zoster, pneumococcal, influenza = _for_age(
        facts, young, zoster, pneumococcal_need(facts, t), influenza_need(facts, t)
    )
    if pregnant:
        zoster = None  # no recombinant zoster vaccine during pregnancy; live ones never
        # no recombinant zoster under 18 (or at an unknown age) even after delivery
        adult = not young and facts.age is not None
        plan.details.append("vaccines-pregnancy" if adult else "vaccines-pregnancy-child")
        if influenza is not None and influenza.suggestion == "influenza":
            # The high-dose or adjuvanted preference (ACR 2022) is for 65 and over and 18-64 on
            # immunosuppression; the knowledge base has nothing on pregnancy, so no preference.
            influenza = Need("influenza-pregnancy", "inactivated influenza", deferrable=False)
    line = t.value("infection.nonlive_vaccine_defer_daily_mg")
    defer = dose_mg >= line - EPS
    _sort_needs(plan, (zoster, pneumococcal, influenza), defer=defer)
    until = defer_until(facts.exposure, line) if plan.later else None
    if plan.now:
        plan.details.insert(0, "vaccines-child" if young else "vaccines")
    rest = [n.label for n in plan.later if n.later_detail is None]
    if rest:
        plan.details.append("vaccines-defer")
    if until is not None:
        plan.details.append("vaccines-defer-until")
    plan.values = {
        "vaccines_due": ", ".join(plan.due) or "none",
        "vaccines_later": ", ".join(n.label for n in plan.later) or "none",
        "vaccines_later_rest": ", ".join(rest) or "none",
        "defer_mg": fmt_number(line),
        "defer_until": fmt_date(until),
        "rzv_last": fmt_date(rzv_last),
        "age": str(facts.age) if facts.age is not None else "unknown",
    }
    return plan
