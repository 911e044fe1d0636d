"""Systemic glucocorticoid exposure: a per-day prednisone-equivalent (PEQ) timeline.

Pure and I/O-free: ``summarize_exposure(resources, medications, knowledge, params, now)``
turns MedicationRequest / MedicationStatement / MedicationAdministration / MedicationDispense
records (clinical-knowledge.md D1-D7) into :class:`Course` segments and day maps. Codes,
PEQ factors and thresholds come in through :class:`GlucocorticoidKnowledge` and
:class:`ExposureParams`; nothing clinical is written here.

Documented policies (design choices, not guideline statements):

* **Days and time zone.** ``today`` is ``now.date()`` in ``now``'s offset; datetimes with an
  offset are converted to that offset before taking the date. Partial dates ("2024-03") start
  on the first and end on the last day of the period and mark the course ``undated``.
* **Dose.** A ladder, recorded per course (``Course.dose_source``): ``doseQuantity`` in a mass
  unit; count/volume/pack units times the product strength; mg/kg with the latest body weight
  and mg/m² with the Mosteller body surface area (weight and height from the record's
  Observations, no older than the windows of ``ExposureParams``); then the instruction text
  (``Dosage.text``, then ``patientInstruction``, read by :mod:`cds_service.medications.sig`:
  a taper in the text becomes steps, "then taper" an unknown last step). ``doseRange`` uses the
  high value (``dose_range=True``). ``ordered`` beats ``calculated``. Without a dose (or a PEQ
  factor) ``daily_peq_mg`` is None with ``Course.dose_unknown_reason`` (GC present, dose
  unknown): listed by ``unknown_dose_sources()``, never counted as 0 mg silently in rules
  that ask for it. Dosages of one step on the same days (divided doses) are one course, summed.
* **Frequency.** ``repeat.frequency``/``period`` (frequencyMax when given; ``periodMax`` is
  ignored because the shorter interval is the higher exposure), ``when``/``timeOfDay`` counts,
  else the HL7 GTSAbbreviation ``timing.code``, else **once daily** (a dose with no timing).
  ``dayOfWeek`` puts the dose only on the listed weekdays. Schedules sparser than daily
  (every other day, weekly, monthly) are **averaged per day** over the schedule: 40 mg every
  other day = 20 mg/day on every day (``Course.alternate_day`` flags the every-other-day case,
  which ACIP treats differently for live vaccines).
* **Duration.** Per dosage: ``boundsPeriod`` (own dates), ``boundsDuration``/``boundsRange``
  (high), ``repeat.count``. Per record: ``dispenseRequest.expectedSupplyDuration`` or
  ``quantity`` / daily amount, each times ``numberOfRepeatsAllowed + 1``; MedicationStatement
  ``effective[x]``; MedicationDispense ``daysSupply``; MedicationAdministration ``effective[x]``
  (the whole dose on the start day unless the period is longer than a day, then spread evenly).
  A ``boundsPeriod`` with only a start gives the start, not the length: the record's supply
  still ends it (a draft starting today with 30 days' supply is planned for 30 days).
  Dispenses of one product for one prescription (or with none on the record) are one supply
  line, laid end to end: a refill picked up early starts when the last one runs out.
  Dosages with the same ``sequence`` are concurrent (summed); different sequences are laid end
  to end from the record's start (tapers). Dosages with no ``sequence`` are consecutive when
  every one has its own duration (a taper without sequence numbers) unless each names other
  times of day (divided doses), else concurrent. A step
  with no duration in the middle of a taper lasts one day (known gap).
* **Status.** Ignored: entered-in-error, cancelled, not-taken, not-done, declined, draft
  (outside ``draft_orders``), ``intent`` proposal/option, ``doNotPerform``. *active*: current
  use follows the record (clinical-knowledge-2.md 1.1-1.2). The record's own end counts:
  ``boundsPeriod.end``, ``boundsDuration``/``count``, the supply (``expectedSupplyDuration``
  or ``quantity`` times ``1 + numberOfRepeatsAllowed``), else ``dispenseRequest.validityPeriod
  .end``; without any of these the course runs through today, however old the order (the
  future part of a planned end is planned exposure). Dispenses, administrations and statements
  are evidence of use: a course reaching today whose latest evidence for that ingredient is
  older than ``unconfirmed_after_days`` is ``unconfirmed_current`` (``Course.ordered_on``,
  ``Course.last_evidence_on`` say how old). *completed/stopped/unknown*: R4 has no
  ``statusChanged``, so the course ends at its planned end (start + duration), or without one
  at the record's last dated evidence, and never after today. *on-hold*: days before today
  only, ending on ``meta.lastUpdated`` (the hold was the likely update) when that falls inside
  the course. MedicationStatement *intended* and ``draft_orders``: planned only (today onward);
  a draft with no start starts today, a draft or intended record with no duration counts for
  its first day only (an active record starting in the future too). MedicationDispense:
  handed-over supply; its future days are planned exposure.
* **Missing dates.** Start = the dosage's own ``boundsPeriod.start``, else ``authoredOn``,
  else ``dispenseRequest.validityPeriod.start``, else ``effective[x]``/``whenHandedOver``, else
  ``dateAsserted`` or ``meta.lastUpdated`` (these two set ``undated=True``). With no date at
  all an active/current record counts for today only (``undated=True``, and
  ``Course.start_unknown``: how long it has been taken is unknown); an ended, paused or
  administered record with no date cannot be placed in time, is left out of the timeline and
  reported by ``unknown_dose_sources()``.
* **Dedup (D1, D5).** Records linked by reference form a *cluster*: MedicationStatement
  ``basedOn``/``derivedFrom``/``partOf``, MedicationAdministration ``request``/``partOf``,
  MedicationDispense ``authorizingPrescription``, MedicationRequest ``basedOn`` and
  ``priorPrescription``; so do exact duplicates, two orders (or two statements) with the same
  status and the same segments (ingredient, daily dose, dates, route, schedule): one entry made
  twice, counted once. A renewal (``priorPrescription``) also ends the replaced order the day
  before the new one starts (a draft renewal replaces it from tomorrow). Unlinked orders (and
  statements) of the same product (ingredient, strength, pack) that start on different days
  overlay each other: on the days a later one covers, the earlier one does not count (it
  resumes after a short burst), so re-prescriptions left active never stack up. Per ingredient and
  day: within a cluster, administrations add up and the other records are duplicates (max of
  each kind, then max over kinds); clusters that contain a MedicationRequest add up (5 mg + 1 mg
  concurrent orders are summed); clusters without one add up within their kind, and the
  per-kind totals are combined by max with the order total (an unlinked statement, dispense or
  administration is assumed to document the same exposure as the orders). Ingredients add up.
* **Route.** Oral, IV, IM, SC and unknown systemic count; non-systemic routes and excluded
  products go to ``excluded_sources``. An IV day at or above ``iv_pulse_min_daily_peq_mg`` is a
  pulse; pulses count in full toward the cumulative dose (``cumulative == sum(daily)``).
* **Windows.** ``daily``: ``[today - lookback_days + 1, today]``. ``planned_daily``: today up to
  ``today + lookback_days`` from current records and draft orders. Day values are rounded to
  1e-6 mg so sums do not depend on record order.

Modules, in the order the data flows: ``records`` (one record per resource: status policy,
drug, dates through ``dates``), ``segments`` (a record's Dosage entries laid out in time),
``overlaps`` (renewals, re-prescriptions of the same product, supply lines), ``timeline``
(clusters, open ends and the sweep into day maps), ``daymap`` (per-day
totals as runs) and ``summary`` (what the engine returns and the queries rules ask);
``context`` holds what every parser reads besides the record.
"""

from cds_service.exposure.summary import Course, ExposureParams, ExposureSummary
from cds_service.exposure.timeline import summarize_exposure
from cds_service.medications import GlucocorticoidKnowledge

__all__ = [
    "Course",
    "ExposureParams",
    "ExposureSummary",
    "GlucocorticoidKnowledge",
    "summarize_exposure",
]
