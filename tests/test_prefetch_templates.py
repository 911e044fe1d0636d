"""Prefetch code filters are generated from the value sets at load (cds_service.prefetch_templates)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from cds_service.catalog import load_catalog
from cds_service.errors import ContentError
from cds_service.fhir.urls import join_url
from cds_service.prefetch import render_template
from cds_service.prefetch_templates import MAX_TEMPLATE_CHARS, code_filter, expand_prefetch
from cds_service.topics import KINDS
from cds_service.valuesets import ValueSet, parse_valueset
from tests.app_client import app_client, make_settings
from tests.content_support import hooks_copy

__all__ = ["hooks_copy"]  # the fixture, imported for pytest

REPO = Path(__file__).resolve().parents[1]
VALUESETS = REPO / "hooks" / "valuesets"
SYSTEM = "http://loinc.org"
PATIENT = "Observation?patient={{context.patientId}}"


def file_codes(valueset_id: str) -> list[str]:
    """system|code of every expansion entry, read from the JSON file itself."""
    data = json.loads((VALUESETS / f"{valueset_id}.json").read_text())
    return [f"{c['system']}|{c['code']}" for c in data["expansion"]["contains"]]


def query_codes(template: str) -> list[str]:
    return parse_qs(template.partition("?")[2])["code"][0].split(",")


# -- the bundled content --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_discovery_observations_template_lists_every_bone_density_code(
    tmp_path: Path,
) -> None:
    async with app_client(make_settings(tmp_path)) as client:
        body = (await client.get("/cds-services")).json()
    templates = [s["prefetch"]["observations"] for s in body["services"]]
    assert len(templates) == 3, "glucocorticoid-safety once, glucocorticoid-orders per hook"
    for template in templates:
        listed = query_codes(template)
        for valueset_id in ("bone-density", "tb-screening-tests", "hbv-screening-tests"):
            missing = sorted(set(file_codes(valueset_id)) - set(listed))
            assert not missing, (valueset_id, missing)
        # Left/right hip T- and Z-scores: the codes the hand-written list had missed.
        for code in ("80945-9", "80946-7", "80937-6", "80938-4"):
            assert f"{SYSTEM}|{code}" in listed
        assert len(listed) == len(set(listed)), "each code once"


def test_every_code_filter_is_generated_from_its_roles() -> None:
    """Drift check: each code filter is exactly the codes of the value sets behind its roles."""
    for service in load_catalog(REPO / "hooks", KINDS).services:
        template = service.definition.prefetch["observations"]
        roles = ["bone_density", "tb_tests", "hbv_tests", "body_weight", "body_height"]
        assert query_codes(template) == code_filter(roles, service.valuesets, "test").split(",")
        assert query_codes(template)[:2] == file_codes("bone-density")[:2], "expansion order"
        # Kidney function and pregnancy status: their own query (the first is near the limit).
        labs = service.definition.prefetch["labs"]
        roles = ["kidney_function", "pregnancy_status"]
        files = ["kidney-function", "pregnancy-status"]
        if service.definition.id == "glucocorticoid-safety":  # the myositis topic's results
            roles += ["pulmonary_function", "muscle_enzymes", "ild_antibodies"]
            files += ["pulmonary-function", "muscle-enzymes", "myositis-ild-antibodies"]
        assert query_codes(labs) == code_filter(roles, service.valuesets, "test").split(",")
        assert {c for f in files for c in file_codes(f)} == set(query_codes(labs))


def test_expanded_template_is_a_valid_search_url_within_the_limit() -> None:
    service = load_catalog(REPO / "hooks", KINDS).find("glucocorticoid-safety")
    assert service is not None
    template = service.definition.prefetch["observations"]
    assert len(template) <= MAX_TEMPLATE_CHARS
    rendered = render_template(template, {"patientId": "pt-1"})
    assert rendered is not None
    url = httpx.URL(join_url("https://ehr.test/r4", rendered, resource_type="Observation"))
    assert url.path == "/r4/Observation"
    assert url.params["patient"] == "pt-1"
    assert url.params["code"].split(",") == query_codes(template)


def set_observations(hooks: Path, template: str) -> None:
    path = hooks / "glucocorticoid-safety" / "service.toml"
    lines = path.read_text().splitlines(keepends=True)
    # The first one is the [prefetch] key ([data_labels] has one too).
    index = next(i for i, line in enumerate(lines) if line.startswith("observations = "))
    lines[index] = f"observations = {json.dumps(template)}\n"
    path.write_text("".join(lines))


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (f"{PATIENT}&code={SYSTEM}|38265-5", "not listed by hand"),
        (f"{PATIENT}&code:not={SYSTEM}|38265-5", "not listed by hand"),
        (f"{PATIENT}&code={SYSTEM}|1-8,{{{{valueset:bone_density}}}}", "not listed by hand"),
        ("Observation?patient={{valueset:bone_density}}", "code parameter"),
        (f"{PATIENT}&code={{{{valueset:bone_density}}}}", "selection] reads role 'tb_tests'"),
        (f"{PATIENT}&code={{{{valueset:bone_density,tb_tests,nope}}}}", "unknown value set role"),
        (f"{PATIENT}&code={{{{valueset:bone_density,,tb_tests}}}}", "role names"),
        (
            f"{PATIENT}&code={{{{valueset:bone_density,tb_tests,hbv_tests,joint_pain}}}}",
            "no explicit",
        ),
        (f"{PATIENT}&code={{{{valueset:bone_density,tb_tests,hbv_tests,osteoporosis}}}}", "is-a"),
    ],
)
def test_content_errors_stop_loading(hooks_copy: Path, template: str, message: str) -> None:
    set_observations(hooks_copy, template)
    with pytest.raises(ContentError, match=message.replace("[", r"\[")):
        load_catalog(hooks_copy, KINDS)


def test_an_unfiltered_search_of_the_same_type_covers_the_selection(hooks_copy: Path) -> None:
    path = hooks_copy / "glucocorticoid-safety" / "service.toml"
    path.write_text(
        path.read_text().replace(
            'allergies = "',
            'all_observations = "Observation?patient={{context.patientId}}"\nallergies = "',
        )
    )
    set_observations(hooks_copy, f"{PATIENT}&code={{{{valueset:bone_density}}}}")
    service = load_catalog(hooks_copy, KINDS).find("glucocorticoid-safety")
    assert service is not None
    assert "{{valueset" not in service.definition.prefetch["observations"]


# -- the expansion rules on small value sets ------------------------------------------------------


def valueset(vs_id: str, codes: list[tuple[str, str]], **extra: Any) -> ValueSet:
    data: dict[str, Any] = {
        "resourceType": "ValueSet",
        "id": vs_id,
        "description": "test",
        "date": "2026-11-24",
        "expansion": {"contains": [{"system": s, "code": c} for s, c in codes]},
        **extra,
    }
    return parse_valueset(data, vs_id)


def test_roles_in_order_codes_in_expansion_order_each_once() -> None:
    sets = {
        "b": valueset("b", [(SYSTEM, "2-2"), (SYSTEM, "1-1")]),
        "a": valueset("a", [(SYSTEM, "1-1"), ("http://snomed.info/sct", "3")]),
    }
    assert code_filter(["b", "a"], sets, "t") == (
        "http://loinc.org|2-2,http://loinc.org|1-1,http://snomed.info/sct|3"
    )


def test_excluded_codes_are_not_fetched() -> None:
    excluded = {"exclude": [{"system": SYSTEM, "concept": [{"code": "1-1"}]}]}
    sets = {"a": valueset("a", [(SYSTEM, "1-1"), (SYSTEM, "2-2")], compose=excluded)}
    assert code_filter(["a"], sets, "t") == "http://loinc.org|2-2"


def test_codes_that_need_escaping_are_refused() -> None:
    sets = {"a": valueset("a", [(SYSTEM, "1,2")])}
    with pytest.raises(ContentError, match="escaping"):
        code_filter(["a"], sets, "t")


def test_placeholder_must_be_the_whole_value_and_templates_stay_short() -> None:
    sets = {"a": valueset("a", [(SYSTEM, f"{n}-0") for n in range(200)])}
    with pytest.raises(ContentError, match="whole parameter value"):
        expand_prefetch({"k": f"{PATIENT}&_tag={{{{valueset:a}}}}x"}, sets, {}, "t")
    with pytest.raises(ContentError, match="characters"):
        expand_prefetch({"k": f"{PATIENT}&code={{{{valueset:a}}}}"}, sets, {}, "t")


def test_templates_without_placeholders_are_unchanged() -> None:
    templates = {"patient": "Patient/{{context.patientId}}", "c": "Condition?patient=x"}
    assert expand_prefetch(templates, {}, {"Condition": ["x"]}, "t") == templates
