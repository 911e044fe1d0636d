"""Content in hooks/ is validated at load: a content error stops startup, never a request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cds_service.catalog import load_catalog
from cds_service.errors import ContentError
from cds_service.topics import KINDS
from tests.content_support import edit, hooks_copy

__all__ = ["hooks_copy"]  # the fixture, imported for pytest

REPO = Path(__file__).resolve().parents[1]
SERVICE = "glucocorticoid-safety/service.toml"


def test_bundled_content_loads() -> None:
    catalog = load_catalog(REPO / "hooks", KINDS)
    service = catalog.find("glucocorticoid-safety")
    assert service is not None
    assert {r.definition.topic for r in service.rules} == {
        "bone-health",
        "osteonecrosis",
        "infection-prevention",
        "record-quality",
        "dose-unknown",
        "glucocorticoid-course",
        "myositis-monitoring",
    }
    assert catalog.find("nope") is None


BROKEN: dict[str, tuple[str, Callable[[str], str], str]] = {
    "unknown kind": (
        SERVICE,
        lambda s: s.replace(
            'kind = "glucocorticoid-bone-health"', 'kind = "glucocorticoid-bone-helth"'
        ),
        "unknown rule kind",
    ),
    "unknown value set": (
        SERVICE,
        lambda s: s.replace('osteopenia = "osteopenia"', 'osteopenia = "osteopaenia"'),
        "unknown value set",
    ),
    "typo in a key": (
        SERVICE,
        lambda s: s.replace("needs = [", "need = [", 1),
        "invalid service definition",
    ),
    "summary too long": (
        SERVICE,
        lambda s: s.replace(
            'supplements = "Long-term glucocorticoids:', 'supplements = "' + "x" * 140 + ":"
        ),
        "under 140",
    ),
    "unknown placeholder": (
        SERVICE,
        lambda s: s.replace("last DXA {last_dxa}", "last DXA {last_dexa}"),
        "unknown placeholders",
    ),
    "unknown needs key": (
        SERVICE,
        lambda s: s.replace(
            'needs = ["patient", "conditions", "medications"]', 'needs = ["patient", "problems"]', 1
        ),
        "unknown prefetch key",
    ),
    "date token in prefetch": (
        SERVICE,
        lambda s: s.replace(
            'conditions = "Condition?patient={{context.patientId}}"',
            'conditions = "Condition?patient={{context.patientId}}&recorded-date=ge{{today() - 90 days}}"',
        ),
        "not allowed",
    ),
    "threshold without unit": (
        "thresholds.toml",
        lambda s: s.replace(
            'cumulative_mg = { value = 2000, unit = "mg",', "cumulative_mg = { value = 2000,"
        ),
        "has no unit",
    ),
    "threshold without source": (
        "thresholds.toml",
        lambda s: s.replace(
            'frax_min_age = { value = 40, unit = "a", source = ',
            'frax_min_age = { value = 40, unit = "a", where = ',
        ),
        "has no source",
    ),
    "missing threshold": (
        "thresholds.toml",
        lambda s: s.replace("pjp_min_days = ", "pjp_minimum_days = "),
        "unknown threshold",
    ),
    "value set without source": (
        "valuesets/osteopenia.json",
        lambda s: s.replace('"description"', '"descr"', 1),
        "cite its source",
    ),
    "invalid regex": (
        "valuesets/joint-pain.json",
        lambda s: s.replace('"valueString": "', '"valueString": "(', 1),
        "invalid text pattern",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN), ids=str)
def test_content_errors_stop_loading(hooks_copy: Path, case: str) -> None:
    relative, change, message = BROKEN[case]
    edit(hooks_copy / relative, change)
    with pytest.raises(ContentError, match=message):
        load_catalog(hooks_copy, KINDS)


def test_content_error_stops_app_startup(tmp_path: Path, hooks_copy: Path) -> None:
    import anyio

    from tests.app_client import app_client, make_settings

    edit(
        hooks_copy / SERVICE,
        lambda s: s.replace('kind = "glucocorticoid-osteonecrosis"', 'kind = "nope"'),
    )

    async def start() -> None:
        async with app_client(make_settings(tmp_path, hooks_dir=hooks_copy)):
            pass

    with pytest.raises(ContentError):
        anyio.run(start)


def test_every_prefetch_template_uses_only_2_0_tokens_and_r4_syntax() -> None:
    import re

    allowed = re.compile(
        r"^\{\{(context\.(patientId|encounterId|userId)|userPractitionerId|userPractitionerRoleId|userPatientId|userRelatedPersonId)\}\}$"
    )
    # The templates as loaded (and sent in discovery): {{valueset:...}} is expanded at load.
    for service in load_catalog(REPO / "hooks", KINDS).services:
        for key, template in service.definition.prefetch.items():
            for token in re.findall(r"\{\{[^}]*\}\}", template):
                assert allowed.match(token), (service.id, key, token)
            assert "sort:" not in template
            assert "/{{context.userId}}" not in template
            assert re.match(r"^[A-Z][A-Za-z]+(/\{\{context\.patientId\}\}|\?[^ ]+)$", template), (
                key,
                template,
            )


def test_values_derived_from_a_service_are_built_once_and_kept_per_service() -> None:
    first, second = load_catalog(REPO / "hooks", KINDS), load_catalog(REPO / "hooks", KINDS)
    builds: list[str] = []

    def build(name: str) -> Callable[[], str]:
        def make() -> str:
            builds.append(name)
            return name

        return make

    service = first.services[0]
    assert service.derived("k", build("a")) == "a"
    assert service.derived("k", build("b")) == "a"
    assert second.services[0].derived("k", build("c")) == "c", "another load builds its own"
    assert builds == ["a", "c"]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '"order-select" = "glucocorticoid-order-select"',
            '"patient-view" = "glucocorticoid-order-select"',
            "is not served by this service",
        ),
        (
            '"order-select" = "glucocorticoid-order-select"',
            '"order-select" = "glucocorticoid-safety"',
            "must be unique",
        ),
        ('"order-select" = "glucocorticoid-order-select"', '"order-select" = "Not_An_Id"', "kebab"),
    ],
)
def test_hook_ids_are_checked(hooks_copy: Path, old: str, new: str, message: str) -> None:
    path = hooks_copy / "glucocorticoid-orders" / "service.toml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    with pytest.raises(ContentError, match=message):
        load_catalog(hooks_copy, KINDS)
