"""The dose ladder applied to one Dosage: the daily amount of each step and how it was derived.

In order: the structured dose (a mass unit; units times the product strength; per kg or m²
scaled with the patient's measurements), then the instruction text (``Dosage.text``, then
``patientInstruction``), else unknown with a reason. See :mod:`cds_service.medications.dose`
and :mod:`cds_service.medications.sig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from cds_service.exposure.context import Context
from cds_service.exposure.measurements import scale_dose
from cds_service.fhir.views import Dosage
from cds_service.medications import (
    DoseReason,
    DoseSource,
    DrugInfo,
    Schedule,
    SigStep,
    dose_per_administration,
    parse_sig,
)


@dataclass(frozen=True)
class DosePart:
    """One step of a Dosage: ingredient mg per dosing day (None: unknown, with ``reason``) and,
    for a step read from the instruction text, its length when the text states one."""

    mg_per_day: float | None
    days: int | None
    dose_range: bool
    source: DoseSource
    reason: DoseReason | None
    alternate: bool


def dosage_parts(
    dosage: Dosage | None, sched: Schedule, drug: DrugInfo, ctx: Context, on: date
) -> list[DosePart]:
    """The steps of one Dosage (several only when its text describes a taper). ``on`` is the
    day the course starts: the body measurements for a weight-based dose are read around it."""
    if dosage is None:
        return [DosePart(None, None, False, "unknown", "no-dose", sched.alternate)]
    dose = scale_dose(dose_per_administration(dosage, drug), ctx.body, ctx.windows, on, ctx.today)
    if dose.mg is not None:
        return [
            DosePart(
                dose.mg * sched.per_day, None, dose.dose_range, dose.source, None, sched.alternate
            )
        ]
    texts = [str(t) for t in (dosage.text, dosage.patientInstruction) if t]
    for text in texts:
        parts = _text_parts(text, sched, drug)
        if parts is not None:
            return parts
    reason = dose.reason
    if texts and reason in (None, "no-dose"):
        reason = "unreadable-instruction"
    return [DosePart(None, None, dose.dose_range, "unknown", reason, sched.alternate)]


def _text_parts(text: str, sched: Schedule, drug: DrugInfo) -> list[DosePart] | None:
    """The instruction text as steps; None when it is not understood.

    A step with no length followed only by steps of unstated dose ("60 mg daily, then taper"
    with nothing saying for how long) is one open step at its dose, marked as the high end
    (``dose_range``): the unstated taper can only be lower. A step with no length followed by
    another known dose is not understood (when would it change?).
    """
    strength = drug.strength
    sig = parse_sig(
        text,
        mg_per_unit=strength.mg_per_unit if strength else None,
        mg_per_ml=strength.mg_per_ml if strength else None,
        per_day=sched.per_day,
    )
    if sig is None:
        return None
    steps: list[SigStep] = list(sig.steps)
    for index, step in enumerate(steps[:-1]):
        if step.days is None:
            if any(s.mg_per_day is not None for s in steps[index + 1 :]):
                return None
            return [_part(step, sig.reason, dose_range=True)]
    return [_part(step, sig.reason) for step in steps]


def _part(step: SigStep, reason: str | None, *, dose_range: bool = False) -> DosePart:
    if step.mg_per_day is None:
        why: DoseReason = "strength-missing" if reason == "strength-missing" else "taper-unstated"
        return DosePart(None, step.days, False, "unknown", why, step.alternate)
    return DosePart(
        step.mg_per_day, step.days, dose_range, "instruction-text", None, step.alternate
    )
