"""benchmarks/charts.py: each benchmark chart is the same record under other ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.charts import ChartTemplate
from tests.app_client import FIXTURES, app_client, make_settings

pytestmark = pytest.mark.anyio
SERVICE = "/cds-services/glucocorticoid-safety"
SEED = FIXTURES / "glucocorticoid-safety" / "seed-dermatomyositis" / "request.json"


def walk(node: Any, resources: list[tuple[str, str]], references: list[str]) -> None:
    if isinstance(node, dict):
        if "resourceType" in node and "id" in node:
            resources.append((node["resourceType"], node["id"]))
        if isinstance(node.get("reference"), str):
            references.append(node["reference"])
        for value in node.values():
            walk(value, resources, references)
    elif isinstance(node, list):
        for value in node:
            walk(value, resources, references)


def collect(data: bytes) -> tuple[list[tuple[str, str]], list[str]]:
    """``(type, id)`` of each resource and every reference string, in document order."""
    resources: list[tuple[str, str]] = []
    references: list[str] = []
    walk(orjson.loads(data), resources, references)
    return resources, references


def resolves(reference: str, resources: list[tuple[str, str]]) -> bool:
    kind, _, rid = reference.rpartition("/")
    return (kind.rpartition("/")[2], rid) in resources


def test_a_chart_has_new_ids_consistent_references_and_the_same_size() -> None:
    original = orjson.dumps(orjson.loads(SEED.read_bytes()))
    template = ChartTemplate(original, salt="seed")
    chart, other = template.chart(0), template.chart(1)
    assert len(chart) == len(other) == len(original)
    assert chart == ChartTemplate(original, salt="seed").chart(0)  # deterministic
    assert chart != ChartTemplate(original, salt="slice").chart(0)

    (before, refs_before), (after, refs_after) = collect(original), collect(chart)
    after_other = collect(other)[0]
    assert [t for t, _ in after] == [t for t, _ in before]
    assert {i for _, i in after}.isdisjoint({i for _, i in before} | {i for _, i in after_other})
    for old, new in zip(refs_before, refs_after, strict=True):
        assert resolves(new, after) == resolves(old, before), (old, new)
    assert sum(resolves(r, before) for r in refs_before) >= 15  # the subject references

    request, seed = orjson.loads(chart), orjson.loads(original)
    assert ("Patient", request["context"]["patientId"]) in after
    assert request["hookInstance"] != seed["hookInstance"]


async def test_a_chart_gets_the_cards_of_the_original(tmp_path: Path) -> None:
    original = SEED.read_bytes()
    chart = ChartTemplate(orjson.dumps(orjson.loads(original)), salt="seed").chart(7)
    async with app_client(make_settings(tmp_path)) as client:
        answers = [
            await client.post(SERVICE, content=body, headers={"Content-Type": "application/json"})
            for body in (original, chart)
        ]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    summaries = [sorted(c["summary"] for c in a.json()["cards"]) for a in answers]
    assert len(summaries[0]) == 4  # bone, osteonecrosis, infection, myositis follow-up
    assert summaries[0] == summaries[1]
