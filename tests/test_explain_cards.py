"""Short cards, full explanations (issue 18): a card keeps the action and the warnings within
the word budget and 5 buttons; what it leaves out (course lists, dose derivations, why each
rule fired, buttons beyond 5) is in its explanation, so nothing the rules found is lost."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from cds_service.card_text import SUGGESTIONS_MAX, detail_words, leads_with_action
from cds_service.cards import CardContext, render_card
from cds_service.catalog import Catalog, load_catalog
from cds_service.cdshooks import CDSRequest
from cds_service.decide import DecideOptions
from cds_service.engine import Engine, HookCall
from cds_service.explain import explain, render_json, render_text, why
from cds_service.gather import GatherOptions
from cds_service.rule_kind import Finding
from cds_service.topics import KINDS
from tests.content_support import edit, hooks_copy

__all__ = ["hooks_copy"]  # the fixture, imported for pytest

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]
CASES = sorted(p.parent for p in (REPO / "fixtures").glob("*/*/expected.json"))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(REPO / "hooks", KINDS)


def _call(case: Path, catalog: Catalog) -> HookCall:
    expected = json.loads((case / "expected.json").read_text())
    request = CDSRequest.model_validate(json.loads((case / "request.json").read_text()))
    service = catalog.find(case.parent.name)
    assert service is not None
    return HookCall.of(request, service, datetime.fromisoformat(expected["now"]))


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_what_the_card_leaves_out_is_in_its_explanation(case: Path, catalog: Catalog) -> None:
    call = _call(case, catalog)
    evaluation = await Engine(decide=DecideOptions(strict=True)).evaluate(call)
    story = render_text(await explain(call, GatherOptions(), DecideOptions(strict=True)))
    for rendered in evaluation.rendered:
        definition = rendered.rule.definition
        reasons = why(rendered.finding, definition)
        for paragraph in reasons:
            assert paragraph.splitlines()[0] in story, (case.name, paragraph[:60])
        # The course list with each dose's derivation: in the explanation, never on the card.
        courses = rendered.finding.facts.get("courses")
        if courses and any(
            "{courses}" in definition.explanations.get(d, "") for d in rendered.finding.details
        ):
            assert courses in "\n".join(reasons)
            assert courses not in rendered.card.get("detail", "")
        for d in rendered.finding.details:
            if not definition.details[d]:  # kept out of the card: its explanation says it
                assert (
                    definition.explanations[d].format_map(rendered.finding.facts).strip() in reasons
                )


async def test_seed_explanation_names_every_card_and_its_buttons(catalog: Catalog) -> None:
    call = _call(REPO / "fixtures" / "glucocorticoid-safety" / "seed-dermatomyositis", catalog)
    data = render_json(await explain(call, GatherOptions(), DecideOptions()))
    cards = [r for r in data["rules"] if r["outcome"] == "card"]
    assert {r["topic"] for r in cards} == {
        "bone-health", "osteonecrosis", "infection-prevention", "myositis-monitoring"
    }  # fmt: skip
    infection = next(r for r in cards if r["topic"] == "infection-prevention")
    text = "\n".join(infection["why"])
    assert "TMP-SMX is first choice; dapsone (check G6PD) or atovaquone are alternatives" in text
    assert "prednisone: 40 mg/day prednisone-equivalent" in text  # the course list
    assert infection["suggestions"][0].startswith("Start TMP-SMX")


def test_buttons_beyond_the_limit_are_named_in_the_detail(catalog: Catalog) -> None:
    service = catalog.find("glucocorticoid-safety")
    assert service is not None
    rule = next(r for r in service.rules if r.definition.topic == "infection-prevention")
    keys = ("tmp-smx", "igra", "hbv-panel", "hbv-dna", "hbv-referral", "zoster", "influenza")
    finding = Finding(
        summary="pjp",
        details=("pjp", "pjp-default"),
        indicator="warning",
        facts={"current_mg": "40", "pjp_run_days": "42"},
        evidence=(),
        suggestions=keys,
    )
    context = CardContext(patient_id="p1", encounter_id=None, today="2026-11-24")
    card = render_card(finding, rule, service, context).card
    labels = [s["label"] for s in card["suggestions"]]
    assert len(labels) == SUGGESTIONS_MAX
    assert labels[0].startswith("Start TMP-SMX")  # the most important first
    last = card["detail"].split("\n\n")[-1]
    assert leads_with_action(last)
    for key in keys[SUGGESTIONS_MAX:]:
        assert rule.definition.suggestions[key].label in last
    assert detail_words(card["detail"]) < 80


@pytest.mark.parametrize(
    ("text", "words", "action"),
    [
        ("**Start PJP prophylaxis** now.", 4, True),
        ("See [the guideline](https://doi.org/10.1/x) today", 4, False),
        ("Methotrexate is on record.", 4, False),
        ("  **Order DXA**", 2, True),
    ],
)
def test_word_count_and_action_lead(text: str, words: int, action: bool) -> None:
    assert detail_words(text) == words
    assert leads_with_action(text) is action


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'tb = "**Screen for latent TB** (IGRA)',
            'tb = "**Latent TB:** screen (IGRA)',
            "action verb",
        ),
        ('hbv-known = ""', 'hbv-known = "Watch ' + "it " * 70 + '"', "over 65 words"),
        ('\nhbv-known = "**Hepatitis B is on', '\nx-hbv = "**Hepatitis B is on', "explanation"),
        ('overflow_detail = "Add these', 'overflow_detail = "These', "overflow_detail"),
        ('held_detail = "**Check {data} before', 'held_detail = "**Check before', "held_detail"),
        ('needs = ["allergies", "labs"]', 'needs = ["allergy"]', "not prefetch keys: allergy"),
    ],
)
def test_content_keeps_cards_short_and_action_first(
    hooks_copy: Path, old: str, new: str, message: str
) -> None:
    from cds_service.errors import ContentError

    edit(hooks_copy / "glucocorticoid-safety" / "service.toml", lambda t: t.replace(old, new, 1))
    with pytest.raises(ContentError, match=message):
        load_catalog(hooks_copy, KINDS)
