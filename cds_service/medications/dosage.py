"""One FHIR Dosage read: administrations per day (Timing) and the route texts.

The dose of one administration is read in :mod:`~cds_service.medications.dose`.

The exposure policies that use them are documented in :mod:`cds_service.exposure`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cds_service.fhir.views import (
    CodeableConcept,
    Dosage,
    MedicationAdministrationDosage,
    Timing,
    TimingRepeat,
)
from cds_service.medications.concepts import texts_of
from cds_service.medications.units import (
    EPS,
    UNIT_DAYS,
)

# HL7 v3 GTSAbbreviation timing codes (Timing.code) and frequent EHR spellings:
# administrations per day, averaged for sparser schedules.
TIMING_CODE_PER_DAY: Mapping[str, float] = {
    "QD": 1.0,
    "DAILY": 1.0,
    "AM": 1.0,
    "PM": 1.0,
    "QAM": 1.0,
    "QPM": 1.0,
    "BED": 1.0,
    "QHS": 1.0,
    "Q24H": 1.0,
    "BID": 2.0,
    "Q12H": 2.0,
    "TID": 3.0,
    "Q8H": 3.0,
    "QID": 4.0,
    "Q6H": 4.0,
    "Q4H": 6.0,
    "Q3H": 8.0,
    "Q2H": 12.0,
    "Q1H": 24.0,
    "QOD": 0.5,
    "Q48H": 0.5,
    "WK": 1 / 7,
    "QWK": 1 / 7,
    "MO": 1 / 30,
}
WEEKDAYS: Mapping[str, int] = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


@dataclass(frozen=True)
class Schedule:
    per_day: float  # administrations per dosing day (weekdays) or average per day
    weekdays: frozenset[int] | None
    alternate: bool
    count: float | None  # repeat.count (max with countMax)


ONCE_DAILY = Schedule(1.0, None, False, None)  # no timing with a dose: once daily


def schedule(timing: Timing | None) -> Schedule:
    """Administrations per day from Timing (module docstring of :mod:`cds_service.exposure`,
    "Frequency"): repeat frequency/period, else when/timeOfDay, else the timing code, else 1."""
    if timing is None:
        return ONCE_DAILY
    repeat = timing.repeat
    rate, period_days = _repeat_rate(repeat) if repeat is not None else (None, 1.0)
    if rate is None:
        rate = TIMING_CODE_PER_DAY.get(_timing_code(timing.code))
        if rate is not None:
            period_days = max(1.0, 1 / rate) if rate < 1 else 1.0
    if rate is None:
        rate = 1.0
    count = _repeat_count(repeat) if repeat is not None else None
    weekdays = _weekdays(repeat) if repeat is not None else None
    if weekdays is not None and period_days > 1:
        rate = rate * 7 / len(weekdays)  # doses per week spread over the listed days
    alternate = weekdays is None and abs(rate - 0.5) < EPS
    return Schedule(rate, weekdays, alternate, count)


def _repeat_rate(repeat: TimingRepeat) -> tuple[float | None, float]:
    """Administrations per day from frequency/period (else when/timeOfDay counts, else None),
    and the period in days."""
    if repeat.frequency is not None or repeat.period is not None:
        # frequencyMax when given; periodMax is ignored: the shorter interval is the higher dose.
        freq = float(max(repeat.frequency or 1, repeat.frequencyMax or 0))
        unit = str(repeat.periodUnit or "d")
        period_days = float(repeat.period or 1) * UNIT_DAYS.get(unit, 1.0)
        return (freq / period_days if period_days > 0 else freq), period_days
    if repeat.when or repeat.timeOfDay:
        return float(len(repeat.when or []) + len(repeat.timeOfDay or [])), 1.0
    return None, 1.0


def _timing_code(code: CodeableConcept | None) -> str:
    """The first coded Timing.code, else its text, upper-cased ("" without one)."""
    if code is None:
        return ""
    for coding in code.coding or []:
        if coding.code:
            return str(coding.code).upper()
    return str(code.text).strip().upper() if code.text else ""


def _repeat_count(repeat: TimingRepeat) -> float | None:
    if repeat.count is None:
        return None
    return float(max(repeat.count, repeat.countMax or 0))


def _weekdays(repeat: TimingRepeat) -> frozenset[int] | None:
    if not repeat.dayOfWeek:
        return None
    days = (WEEKDAYS[d] for d in repeat.dayOfWeek if d is not None and d in WEEKDAYS)
    return frozenset(days) or None


def dosage_route_texts(items: Iterable[Dosage | MedicationAdministrationDosage]) -> list[str]:
    """Route, site and method texts of dosages: checked against the exclusion lists.

    Never the instruction text (``text``, ``patientInstruction``, ``additionalInstruction``):
    "avoid contact with the eyes" or "use your nasal spray first" in an oral prednisone SIG
    says nothing about the route of the glucocorticoid.
    """
    out: list[str] = []
    for d in items:
        for concept in (d.route, d.site, d.method):
            if concept is not None:  # most dosages have no site or method
                out.extend(texts_of(concept))
    return out
