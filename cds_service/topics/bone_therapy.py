"""Osteoporosis therapy on record, with how long each drug counts as current therapy, and
denosumab's next dose: due soon, or overdue (its effect wears off and vertebral fractures
follow a lapse); the yearly zoledronic acid infusion once its year has passed with no other
therapy. Numbers: hooks/thresholds.toml [drug_effect]; sources: clinical-knowledge-2.md 4.

A record of a drug class (value-set roles below, read by drug name) counts as current therapy
while its order or statement is active, or from the day it documents a dose given or handed
over (``Hit.given``): zoledronic acid for zoledronate_days after an infusion, denosumab for
denosumab_days after an injection, anabolic agents and oral bisphosphonates for the days'
supply of a dispense plus supply_grace_days (without a supply: anabolic_dose_days plus the
grace, resp. exposure.recent_use_days). Other osteoporosis drugs (raloxifene, a record coded
only by an ATC class) keep the generic reading of the facts step (``Hit.active``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

from cds_service.card_text import fmt_date, fmt_months, fmt_number
from cds_service.facts import ClinicalFacts, Hit
from cds_service.thresholds import Thresholds

# Drug class role -> the threshold that says how long one dose counts.
DOSE_CLASSES: Mapping[str, str] = {
    "zoledronic_acid": "drug_effect.zoledronate_days",
    "denosumab": "drug_effect.denosumab_days",
}
SUPPLY_CLASSES = ("anabolic_bone_agents", "oral_bisphosphonates")
CLASS_ROLES = (*DOSE_CLASSES, *SUPPLY_CLASSES)
ROLES = ("osteoporosis_drugs", "bisphosphonate_use", *CLASS_ROLES)
THRESHOLDS = (
    "drug_effect.zoledronate_days",
    "drug_effect.denosumab_days",
    "drug_effect.denosumab_due_notice_days",
    "drug_effect.denosumab_overdue_watch_days",
    "drug_effect.zoledronate_overdue_watch_days",
    "drug_effect.supply_grace_days",
    "drug_effect.anabolic_dose_days",
    "exposure.recent_use_days",
)
ORDER_TYPES = ("MedicationRequest", "MedicationStatement")
# Card detail ids per drug class, and the placeholder with the class's last record date.
CLASS_DETAILS: Mapping[str, str] = {
    "zoledronic_acid": "therapy-zoledronate",
    "denosumab": "therapy-denosumab",
    "anabolic_bone_agents": "therapy-anabolic",
    "oral_bisphosphonates": "therapy-oral-bisphosphonate",
}
SAMPLE = {
    "zoledronate_last": "unknown date",
    "zoledronate_months": "24",
    "zoledronate_due": "unknown date",
    "denosumab_last": "unknown date",
    "denosumab_due": "unknown date",
    "denosumab_months": "12",
    "anabolic_last": "unknown date",
    "oral_bisphosphonate_last": "unknown date",
    "supply_grace_days": "90",
}
DenosumabState = Literal["due", "overdue"]


def counts_for_days(hit: Hit, role: str, t: Thresholds) -> float | None:
    """How many days after ``hit.day`` a dose record of class ``role`` counts as therapy;
    None when the record documents no dose given (an order, a stopped administration)."""
    if not hit.given:
        return None
    if role in DOSE_CLASSES:
        return t.value(DOSE_CLASSES[role])
    grace = t.value("drug_effect.supply_grace_days")
    if hit.supply_days is not None:
        return hit.supply_days + grace
    if role == "anabolic_bone_agents":
        return t.value("drug_effect.anabolic_dose_days") + grace
    return t.value("exposure.recent_use_days")


def is_current(hit: Hit, role: str, today: date, t: Thresholds) -> bool:
    """An active order or statement, or a dose within the class's duration (inclusive)."""
    if hit.active and hit.resource_type in ORDER_TYPES:
        return True
    days = counts_for_days(hit, role, t)
    return days is not None and hit.day is not None and 0 <= (today - hit.day).days <= days


@dataclass(frozen=True)
class Denosumab:
    """The last denosumab injection on record and what that means today."""

    last: date
    due: date
    state: DenosumabState


@dataclass(frozen=True)
class Zoledronate:
    """The last zoledronic acid infusion, when its year has passed: the next one is due."""

    last: date
    due: date


@dataclass(frozen=True)
class BoneTherapy:
    current: tuple[str, ...]  # references of the therapy that counts today
    last_by_class: Mapping[str, date] = field(default_factory=dict)  # current classes
    denosumab: Denosumab | None = None  # only when the next dose is due or overdue
    zoledronate: Zoledronate | None = None  # only when the yearly infusion is overdue

    @staticmethod
    def of(facts: ClinicalFacts, t: Thresholds) -> BoneTherapy:
        today = facts.today
        classified = {h.ref for role in CLASS_ROLES for h in facts.of(role)}
        current: set[str] = set()
        last_by_class: dict[str, date] = {}
        for role in CLASS_ROLES:
            for hit in facts.of(role):
                if not is_current(hit, role, today, t):
                    continue
                current.add(hit.ref)
                if hit.day is not None:
                    last_by_class[role] = max(hit.day, last_by_class.get(role, hit.day))
        generic = {
            h.ref
            for h in facts.of("osteoporosis_drugs", active_only=True)
            if h.ref not in classified
        }
        current |= generic | set(facts.refs("bisphosphonate_use", active_only=True))
        denosumab = _denosumab(facts, t, current)
        if denosumab is not None and denosumab.state == "overdue":
            # A standing order does not make a lapsed injection current.
            current -= {h.ref for h in facts.of("denosumab")}
            last_by_class.pop("denosumab", None)
        zoledronate = None if current else _zoledronate(facts, t)
        return BoneTherapy(tuple(sorted(current)), last_by_class, denosumab, zoledronate)

    def details(self) -> list[str]:
        """A detail per drug class counting today (denosumab's own when its dose is due)."""
        shown = [role for role in CLASS_ROLES if role in self.last_by_class]
        if self.denosumab is not None:
            shown = [role for role in shown if role != "denosumab"]
        return [CLASS_DETAILS[role] for role in shown]

    def facts(self, t: Thresholds) -> dict[str, str]:
        last = self.last_by_class
        dmab, zol = self.denosumab, self.zoledronate
        return {
            "zoledronate_last": fmt_date(zol.last if zol else last.get("zoledronic_acid")),
            "zoledronate_months": fmt_months(t.value("drug_effect.zoledronate_days")),
            "zoledronate_due": fmt_date(zol.due if zol else None),
            "denosumab_last": fmt_date(dmab.last if dmab else last.get("denosumab")),
            "denosumab_due": fmt_date(dmab.due if dmab else _due(last.get("denosumab"), t)),
            "denosumab_months": fmt_months(t.value("drug_effect.denosumab_days")),
            "anabolic_last": fmt_date(last.get("anabolic_bone_agents")),
            "oral_bisphosphonate_last": fmt_date(last.get("oral_bisphosphonates")),
            "supply_grace_days": fmt_number(t.value("drug_effect.supply_grace_days")),
        }


def _due(last: date | None, t: Thresholds) -> date | None:
    return last + timedelta(days=t.value("drug_effect.denosumab_days")) if last else None


def _zoledronate(facts: ClinicalFacts, t: Thresholds) -> Zoledronate | None:
    """The yearly infusion is overdue: the last one given is older than zoledronate_days, by
    at most zoledronate_overdue_watch_days past its due date (the caller checks that no other
    osteoporosis therapy counts today)."""
    days = [
        h.day
        for h in facts.of("zoledronic_acid")
        if h.given and h.day is not None and h.day <= facts.today
    ]
    if not days:
        return None
    last = max(days)
    due = last + timedelta(days=t.value("drug_effect.zoledronate_days"))
    late = (facts.today - due).days
    watched = 0 < late <= t.value("drug_effect.zoledronate_overdue_watch_days")
    return Zoledronate(last, due) if watched else None


def _denosumab(facts: ClinicalFacts, t: Thresholds, current: set[str]) -> Denosumab | None:
    """Due: from denosumab_due_notice_days before the due date to the due date, unless the next
    dose is already ordered. Overdue: up to denosumab_overdue_watch_days after it, unless
    another osteoporosis drug is recorded from the last injection on (a switch)."""
    hits = facts.of("denosumab")
    doses = [h.day for h in hits if h.given and h.day is not None and h.day <= facts.today]
    if not doses:
        return None
    last = max(doses)
    due = last + timedelta(days=t.value("drug_effect.denosumab_days"))
    days_to_due = (due - facts.today).days
    if days_to_due >= 0:
        notice = days_to_due <= t.value("drug_effect.denosumab_due_notice_days")
        return Denosumab(last, due, "due") if notice and not _next_ordered(hits, last) else None
    watched = -days_to_due <= t.value("drug_effect.denosumab_overdue_watch_days")
    switched = _switched(facts, current, {h.ref for h in hits}, last)
    return Denosumab(last, due, "overdue") if watched and not switched else None


def _next_ordered(hits: list[Hit], last: date) -> bool:
    """An active denosumab order written after the last injection: the next dose is planned."""
    return any(
        h.active and h.resource_type == "MedicationRequest" and h.day is not None and h.day > last
        for h in hits
    )


def _switched(facts: ClinicalFacts, current: set[str], denosumab: set[str], last: date) -> bool:
    """Another osteoporosis drug that counts today, recorded on or after the last injection."""
    return any(
        h.ref in current and h.ref not in denosumab and (h.day is None or h.day >= last)
        for role in ROLES
        for h in facts.of(role)
    )
