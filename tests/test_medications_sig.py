"""Free-text dosing instructions (SIG): table of what is read and what is refused."""

from __future__ import annotations

import pytest

from cds_service.medications.sig import MAX_TAPER_STEPS, Sig, SigStep, parse_sig

S = SigStep

READ = [
    # text, tablet strength (mg), steps (mg/day, days[, alternate])
    ("60 mg daily", None, [S(60, None)]),
    ("Prednisone 20mg PO QD x5d", None, [S(20, 5)]),
    ("take 2 tablets (10 mg) by mouth daily", 5, [S(10, None)]),
    ("take 2 tablets (10 mg) by mouth daily", None, [S(10, None)]),
    ("Take 2 tablets (10 mg total) by mouth daily.", 5, [S(10, None)]),
    ("take 2 tablets (5 mg each) daily", None, [S(10, None)]),
    ("stated total below count x strength: the higher", 20, None),  # see test below
    ("1.5 tabs qd", 5, [S(7.5, None)]),
    ("one and a half tablets q.d.", 5, [S(7.5, None)]),
    ("half a tablet daily", 5, [S(2.5, None)]),
    ("1½ tablets daily", 5, [S(7.5, None)]),
    ("take one 10 mg tablet daily", None, [S(10, None)]),
    ("prednisone 5 mg tablets - take 3 tablets daily", None, [S(15, None)]),
    ("prednisone 10 mg tablet: take 2 tablets (20 mg total) daily", None, [S(20, None)]),
    ("40 mg every other day", None, [S(20, None, True)]),
    ("40 mg QOD", None, [S(20, None, True)]),
    ("40 mg on alternate days", None, [S(20, None, True)]),
    ("10 mg twice daily", None, [S(20, None)]),
    ("10 mg b.i.d.", None, [S(20, None)]),
    ("10 mg every 12 hours", None, [S(20, None)]),
    ("5 mg three times a day", None, [S(15, None)]),
    ("5 mg tid", None, [S(15, None)]),
    ("5 mg q8h", None, [S(15, None)]),
    ("5 mg four times daily", None, [S(20, None)]),
    ("5 mg q6h", None, [S(20, None)]),
    ("5 mg 2 times a day", None, [S(10, None)]),
    ("4 mg every morning", None, [S(4, None)]),
    ("4 mg at bedtime", None, [S(4, None)]),
    ("70 mg once a week", None, [S(10, None)]),
    ("500 mcg daily", None, [S(0.5, None)]),
    ("1 g IV daily x 3 days", None, [S(1000, 3)]),
    ("0.75 mg", None, [S(0.75, None)]),  # no frequency: the structured rate (once daily)
    ("5 mL daily", None, [S(None, None)]),  # volume without a strength
    ("40 mg x 7 days then 30 mg x 7 days", None, [S(40, 7), S(30, 7)]),
    ("40 mg for 1 week, then 30 mg for 1 week, then 20 mg for 2 weeks", None, [S(40, 7), S(30, 7), S(20, 14)]),
    ("20 mg daily for 1 month", None, [S(20, 30)]),
    ("20 mg daily for a 7-day course", None, [S(20, None)]),
    ("60 mg daily, taper by 5 mg weekly", None, [S(60, 7)] + [S(mg, 7) for mg in range(55, 0, -5)]),
    ("60 mg daily for 2 weeks then taper by 10 mg every 3 days", None, [S(60, 14), S(50, 3), S(40, 3), S(30, 3), S(20, 3), S(10, 3)]),
    ("20 mg daily then decrease by 2.5 mg every 2 weeks to 5 mg", None, [S(20, 14), S(17.5, 14), S(15, 14), S(12.5, 14), S(10, 14), S(7.5, 14), S(5, None)]),
    ("3 tablets (60 mg) by mouth daily for 4 weeks then taper", 20, [S(60, 28), S(None, None)]),
    ("3 tablets (60 mg) by mouth daily for 4 weeks then taper", None, [S(60, 28), S(None, None)]),
    ("10 mg in the morning, 5 mg at noon and 5 mg in the evening", None, [S(20, None)]),
    ("hydrocortisone 10 mg am, 5 mg pm", None, [S(15, None)]),
    ("10 mg + 5 mg + 5 mg daily", None, [S(20, None)]),
    ("10 + 5 + 5 mg daily", None, [S(20, None)]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "strength", "steps"), [r for r in READ if r[2] is not None])
def test_read(text: str, strength: float | None, steps: list[SigStep]) -> None:
    sig = parse_sig(text, mg_per_unit=strength)
    assert sig is not None, text
    assert sig.steps == tuple(steps), text


def test_stated_total_below_count_times_strength_takes_the_higher() -> None:
    sig = parse_sig("take 2 tablets (10 mg) daily", mg_per_unit=20)
    assert sig == Sig((S(40, None),))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1.5 tabs qd", "strength-missing"),
        ("5 mL daily", "strength-missing"),
        ("3 tablets by mouth daily for 4 weeks then taper", "strength-missing"),
        ("60 mg daily x 2 weeks then taper", "taper-unstated"),
        ("60 mg daily x 2 weeks then as directed", "taper-unstated"),
        ("60 mg daily", None),
    ],
)
def test_reason_for_a_step_without_dose(text: str, reason: str | None) -> None:
    sig = parse_sig(text)
    assert sig is not None
    assert sig.reason == reason


def test_structured_rate_applies_when_the_text_has_none() -> None:
    assert parse_sig("10 mg", per_day=2) == Sig((S(20, None),))
    assert parse_sig("10 mg daily", per_day=2) == Sig((S(10, None),))


def test_volume_with_strength() -> None:
    assert parse_sig("5 mL daily", mg_per_ml=5) == Sig((S(25, None),))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "as directed",
        "use as directed",
        "Medrol dose pack as directed",
        "take with food",
        "1 mg/kg daily",
        "2 mg/kg/day divided twice daily",
        "60 mg/m2 daily",
        "10 mg or 20 mg daily",
        "taper by 5 mg weekly",
        "then taper",
    ],
)
def test_unreadable(text: str) -> None:
    assert parse_sig(text, mg_per_unit=5) is None


def test_taper_steps_are_bounded() -> None:
    sig = parse_sig("1000 mg daily, taper by 1 mg daily")
    assert sig is not None
    assert len(sig.steps) == 1 + MAX_TAPER_STEPS
