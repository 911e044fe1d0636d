"""Free-text dosing instructions (SIG) read into daily doses, conservatively.

For records whose only dose is in ``Dosage.text`` or ``patientInstruction``
(clinical-knowledge.md D3; clinical-knowledge-2.md 1.3). Common English forms only:

* a dose: "60 mg", "2 tablets", "1.5 tabs", "3 tablets (60 mg)" (the parenthesis is the total of
  one administration; "(5 mg each)" is per tablet), "5 mL"; tablets and mL need the product
  strength;
* a frequency: daily, qd, bid, tid, qid, qam/qhs, every N hours, N times a day, every other day
  (qod), weekly; without one the structured timing's rate applies (once daily by default);
* divided doses in one day, summed: "10 mg in the morning, 5 mg at noon and 5 mg in the
  evening", "10 mg + 5 mg + 5 mg daily";
* steps: "x 7 days", "for 4 weeks", joined by "then" ("40 mg x 7 days then 30 mg x 7 days");
* a taper rule after a dose: "taper by 5 mg weekly", "decrease by 2.5 mg every 2 weeks to
  5 mg" (steps down to the target, or to the last dose above zero);
* "then taper" (or "as directed") with no schedule: a last step whose dose is not stated.

Anything else (two doses that are not divided doses, mg/kg, words it does not know as a dose)
is unreadable: :func:`parse_sig` returns None rather than guess. Nothing clinical is written
here: this is English and arithmetic; what a dose means is the exposure engine's business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Taper steps generated from one rule at most (a 60 mg dose by 0.5 mg steps is 120).
MAX_TAPER_STEPS = 200
_NUM = r"(\d+(?:\.\d+)?)"
_NUMBER_WORDS = {
    "one and a half": "1.5",
    "one-half": "0.5",
    "one half": "0.5",
    "half a": "0.5",
    "half": "0.5",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "twelve": "12",
}
_WORDS = re.compile(r"\b(" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")\b")
_MASS_MG = {"mg": 1.0, "milligram": 1.0, "milligrams": 1.0, "mcg": 0.001, "g": 1000.0}
_MASS = re.compile(_NUM + r"\s*(mg|milligrams?|mcg|g)\b(?!\s*/)")
_PER_BODY = re.compile(r"\d\s*(?:mg|mcg|g)\s*/\s*(?:kg|m2|m²|lb)")
_COUNT = re.compile(_NUM + r"\s*(?:tablets?|tabs?|pills?|capsules?|caps?)\b")
_COUNT_TOTAL = re.compile(
    _NUM + r"\s*(?:tablets?|tabs?|pills?|capsules?|caps?)\s*\(\s*" + _NUM
    + r"\s*(mg|mcg|g)(\s+total|\s+each)?\s*\)"
)  # fmt: skip
# "one 10 mg tablet": a count of tablets of a stated strength; "prednisone 10 mg tablet:"
# beside another amount is the product's name, not a dose.
_COUNT_OF_STRENGTH = re.compile(
    _NUM + r"\s+" + _NUM + r"\s*(mg|mcg|g)\s+(?:oral\s+)?(?:tablets?|tabs?|capsules?|caps?)\b"
)
_STRENGTH_NAME = re.compile(
    _NUM + r"\s*(?:mg|mcg|g)\s+(?:oral\s+)?(?:tablets?|tabs?|capsules?|caps?)\b"
)
_VOLUME = re.compile(_NUM + r"\s*(?:ml|milliliters?|millilitres?)\b")
_TIME_OF_DAY = r"(?:in the |at |every |each )?(?:morning|am|noon|midday|lunch|afternoon|evening|pm|night|bedtime|hs)\b"
_DIVIDED = re.compile(_NUM + r"\s*(mg|mcg|g)\b\s*" + _TIME_OF_DAY)
# "10 mg + 5 mg + 5 mg" or "10 + 5 + 5 mg": amounts taken the same day, summed.
_PLUS_CHAIN = re.compile(
    r"(?:\d+(?:\.\d+)?\s*(?:mg|mcg|g)?\s*\+\s*)+\d+(?:\.\d+)?\s*(?:mg|mcg|g)\b"
)
_PLUS_TERM = re.compile(_NUM + r"\s*(mg|mcg|g)?")
# (pattern, administrations per day, alternate-day): first match wins, longest forms first.
_FREQUENCIES: tuple[tuple[re.Pattern[str], float, bool], ...] = tuple(
    (re.compile(p), n, alt)
    for p, n, alt in (
        (r"every other day|on alternate days|alternate days|alternating days|\bqod\b|\bq48h\b|every 48 hours", 0.5, True),
        (r"\bonce (?:a |per )?week\b|\bweekly\b|every week\b|\bqwk\b", 1 / 7, False),
        (r"four times (?:a |per |each )?day|four times daily|\bqid\b|\bq6h\b|every 6 hours", 4.0, False),
        (r"three times (?:a |per |each )?day|three times daily|\btid\b|\bq8h\b|every 8 hours", 3.0, False),
        (r"twice (?:a |per |each )?day|twice daily|two times (?:a |per |each )?day|\bbid\b|\bq12h\b|every 12 hours", 2.0, False),
        (r"once (?:a |per |each )?day|once daily|\bdaily\b|every day|each day|per day|a day\b|/ ?day\b"
         r"|\bqd\b|\bq24h\b|\bqam\b|\bqpm\b|\bqhs\b|\bnightly\b|at bedtime|every (?:morning|evening|night)"
         r"|each (?:morning|evening)|in the (?:morning|evening)", 1.0, False),
    )
)  # fmt: skip
_EVERY_HOURS = re.compile(r"(?:every\s*" + _NUM + r"\s*(?:hours?|hrs?|h)\b|\bq" + _NUM + r"h\b)")
_TIMES_A_DAY = re.compile(_NUM + r"\s*(?:times|x)\s*(?:a |per |each |/ ?)?(?:day|daily)\b")
_DURATION = re.compile(
    r"(?:\bx|\bfor|\btimes)\s*" + _NUM + r"\s*(days?|d|weeks?|wks?|w|months?|mos?)\b"
)
_UNIT_DAYS = {"d": 1, "w": 7, "wk": 7, "m": 30, "mo": 30}
_TAPER_BY = re.compile(
    r"(?:taper|decrease|reduce|wean|lower|drop)\w*\s+(?:the dose\s+|dose\s+)?(?:by\s+)?"
    + _NUM + r"\s*(mg|mcg|g)\s*"
    + r"(?:(?:every|each|per|a|q)\s*" + _NUM + r"?\s*(days?|d|weeks?|wks?|w)\b|(weekly|daily))"
)  # fmt: skip
_TAPER_TO = re.compile(r"\bto\s+" + _NUM + r"\s*(mg|mcg|g)\b")
_OPEN_TAIL = re.compile(
    r"^(?:and\s+)?(?:taper(?:\s+off)?|wean(?:\s+off)?|as directed|taper as directed)\b"
)
_SPLIT = re.compile(
    r"\bthen\b|\bfollowed by\b|;|,\s*(?=(?:and\s+)?(?:taper|decrease|reduce|wean|lower)\b)"
)


@dataclass(frozen=True)
class SigStep:
    """One step: mg per dosing day (averaged for sparser schedules), for ``days`` days
    (None: the text gives no length). ``mg_per_day`` None: the text leaves the dose open."""

    mg_per_day: float | None
    days: int | None
    alternate: bool = False


@dataclass(frozen=True)
class Sig:
    """The steps of an instruction, in order. ``reason`` says why a step has no dose:
    "taper-unstated" (taper with no schedule) or "strength-missing" (tablets or mL without a
    known product strength)."""

    steps: tuple[SigStep, ...]
    reason: str | None = None


def parse_sig(
    text: str,
    *,
    mg_per_unit: float | None = None,
    mg_per_ml: float | None = None,
    per_day: float = 1.0,
) -> Sig | None:
    """Read ``text`` into steps (module docstring); None when it is not understood.

    ``mg_per_unit``/``mg_per_ml``: the product strength, for doses in tablets or mL.
    ``per_day``: administrations per day from the structured timing, used when the text
    states no frequency.
    """
    clean = _normalize(text)
    if not clean or _PER_BODY.search(clean):
        return None
    steps: list[SigStep] = []
    reason: str | None = None
    for clause in (c.strip(" ,.") for c in _SPLIT.split(clean)):
        if not clause:
            continue
        taper = _TAPER_BY.search(clause)
        if taper is not None:
            previous = steps[-1] if steps else None
            if previous is None or previous.mg_per_day is None:
                return None
            interval, down = _taper_steps(previous.mg_per_day, taper, clause)
            if previous.days is None:  # "60 mg daily, taper by 5 mg weekly": 60 mg for a week
                steps[-1] = SigStep(previous.mg_per_day, interval, previous.alternate)
            steps.extend(down)
        elif _OPEN_TAIL.match(clause):
            if not steps:  # "as directed" alone says nothing
                return None
            steps.append(SigStep(None, None))
            reason = reason or "taper-unstated"
        else:
            step, missing = _dose_step(clause, mg_per_unit, mg_per_ml, per_day)
            if step is None:
                return None
            steps.append(step)
            reason = reason or missing
    return Sig(tuple(steps), reason) if steps else None


_DOTTED = re.compile(
    r"\b(q\.?d|b\.?i\.?d|t\.?i\.?d|q\.?i\.?d|q\.?o\.?d|q\.?h\.?s|q\.?a\.?m|q\.?p\.?m|p\.?o)\.?(?![a-z])"
)


def _normalize(text: str) -> str:
    out = text.lower().replace("\u00d7", " x ")  # multiplication sign
    out = re.sub(r"(\d)\s*½", r"\1.5", out).replace("½", "0.5")
    out = re.sub(r"(\d)\s*-\s*(?=days?\b|weeks?\b)", r"\1 ", out)  # "7-day" -> "7 day"
    out = _DOTTED.sub(lambda m: m.group(1).replace(".", ""), out)  # "b.i.d." -> "bid"
    out = _WORDS.sub(lambda m: _NUMBER_WORDS[m.group(1)], out)
    return re.sub(r"\s+", " ", out).strip()


def _mass(value: str, unit: str) -> float:
    return float(value) * _MASS_MG[unit]


def _frequency(clause: str, default: float) -> tuple[float, bool]:
    """Administrations per day and the alternate-day flag ("3 times a day" before "a day")."""
    for pattern, per_day, alternate in _FREQUENCIES[:2]:
        if pattern.search(clause):
            return per_day, alternate
    times = _TIMES_A_DAY.search(clause)
    if times is not None:
        return float(times.group(1)), False
    hours = _EVERY_HOURS.search(clause)
    if hours is not None:
        every = float(hours.group(1) or hours.group(2))
        return (24 / every, abs(every - 48) < 1e-9) if every > 0 else (default, False)
    for pattern, per_day, alternate in _FREQUENCIES[2:]:
        if pattern.search(clause):
            return per_day, alternate
    return default, False


def _duration(clause: str) -> int | None:
    found = _DURATION.search(clause)
    if found is None:
        return None
    unit = found.group(2).rstrip("s")
    days = float(found.group(1)) * _UNIT_DAYS.get(unit if unit in _UNIT_DAYS else unit[:1], 1)
    return max(1, round(days))


def _dose_step(
    clause: str, mg_per_unit: float | None, mg_per_ml: float | None, default_per_day: float
) -> tuple[SigStep | None, str | None]:
    """One dose clause as a step, and "strength-missing" when its amount needs a strength."""
    days = _duration(clause)
    divided = _DIVIDED.findall(clause)
    if len(divided) >= 2:
        if len(divided) != len(_MASS.findall(clause)):
            return None, None
        return SigStep(sum(_mass(v, u) for v, u in divided), days), None
    chain = _PLUS_CHAIN.search(clause)
    if chain is not None:
        terms = _PLUS_TERM.findall(chain.group(0))
        unit = terms[-1][1]
        if _MASS.search(clause[: chain.start()] + clause[chain.end() :]):
            return None, None
        total = sum(_mass(v, u or unit) for v, u in terms)
        per_day, alternate = _frequency(clause, default_per_day)
        return SigStep(total * per_day, days, alternate), None
    mg, missing = _amount(clause, mg_per_unit, mg_per_ml)
    if mg is None and missing is None:
        return None, None
    per_day, alternate = _frequency(clause, default_per_day)
    return SigStep(mg * per_day if mg is not None else None, days, alternate), missing


def _amount(
    clause: str, mg_per_unit: float | None, mg_per_ml: float | None
) -> tuple[float | None, str | None]:
    """mg per administration; (None, "strength-missing") for units without a strength,
    (None, None) when the clause names no single amount."""
    of_strength = _COUNT_OF_STRENGTH.search(clause)
    if of_strength is not None:
        count, strength = float(of_strength.group(1)), _mass(*of_strength.group(2, 3))
        rest = _COUNT_OF_STRENGTH.sub(" ", clause)
        if _MASS.search(rest) or _COUNT.search(rest):
            return None, None
        return count * strength, None
    name = _STRENGTH_NAME.search(clause)
    if name is not None:
        rest = clause[: name.start()] + " " + clause[name.end() :]
        if _MASS.search(rest) or _COUNT.search(rest) or _VOLUME.search(rest):
            clause = rest  # the product's name; its strength fills in a missing one
            if mg_per_unit is None:
                mg_per_unit = _mass(*_MASS.findall(name.group(0))[0])
    counted = _COUNT_TOTAL.search(clause)
    if counted is not None:
        count, stated = float(counted.group(1)), _mass(counted.group(2), counted.group(3))
        total = count * stated if (counted.group(4) or "").strip() == "each" else stated
        # A stated total that disagrees with count x strength: the higher (conservative).
        by_strength = count * mg_per_unit if mg_per_unit is not None else total
        rest = _COUNT_TOTAL.sub(" ", clause)
        return (max(total, by_strength), None) if not _MASS.search(rest) else (None, None)
    masses = _MASS.findall(clause)
    if len(masses) == 1:
        return _mass(*masses[0]), None
    if masses:
        return None, None
    tablets = _COUNT.search(clause)
    if tablets is not None:
        if mg_per_unit is None:
            return None, "strength-missing"
        return float(tablets.group(1)) * mg_per_unit, None
    volume = _VOLUME.search(clause)
    if volume is not None:
        if mg_per_ml is None:
            return None, "strength-missing"
        return float(volume.group(1)) * mg_per_ml, None
    return None, None


def _taper_steps(previous: float, rule: re.Match[str], clause: str) -> tuple[int, list[SigStep]]:
    """The rule's interval in days, and the steps down from ``previous`` mg/day by its amount
    every interval, to the target ("to 5 mg": held there, open) or the last dose above zero."""
    step = _mass(rule.group(1), rule.group(2))
    if rule.group(5):
        interval = 7 if rule.group(5) == "weekly" else 1
    else:
        unit = rule.group(4).rstrip("s")
        interval = max(1, round(float(rule.group(3) or 1) * (7 if unit.startswith("w") else 1)))
    target_match = _TAPER_TO.search(clause[rule.end() :]) or _TAPER_TO.search(clause)
    target = _mass(*target_match.groups()) if target_match else 0.0
    out: list[SigStep] = []
    dose = previous - step
    while dose > target + 1e-9 and len(out) < MAX_TAPER_STEPS and step > 0:
        out.append(SigStep(dose, interval))
        dose -= step
    if target > 0:
        out.append(SigStep(target, None))
    return interval, out
