"""Large request bodies are handled one at a time (api/large_bodies.py); others pass freely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from cds_service.api.large_bodies import LargeBodyGate
from tests.app_client import FIXTURES, app_client, make_settings

pytestmark = pytest.mark.anyio


class Recorder:
    """An ASGI app that reads the body, then holds the call open until released."""

    def __init__(self, expected: int) -> None:
        self.inside = 0
        self.most = 0
        self.entered = 0
        self.expected = expected  # calls that can enter before any is released
        self.arrived = anyio.Event()
        self.release = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.inside += 1
        self.entered += 1
        self.most = max(self.most, self.inside)
        if self.entered >= self.expected:
            self.arrived.set()
        await receive()
        await self.release.wait()
        self.inside -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def _post_all(app: Any, sizes: list[int], recorder: Recorder) -> list[int]:
    statuses: list[int] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def post(size: int) -> None:
            response = await client.post("/x", content=b"x" * size)
            statuses.append(response.status_code)

        async with anyio.create_task_group() as group:
            for size in sizes:
                group.start_soon(post, size)
            with anyio.fail_after(5):
                await recorder.arrived.wait()
            await anyio.sleep(0.05)  # a second large call would have entered by now
            seen = recorder.most
            recorder.release.set()
    statuses.append(seen)
    return statuses


async def test_large_bodies_wait_for_each_other_small_ones_do_not() -> None:
    recorder = Recorder(expected=3)
    gate = LargeBodyGate(recorder, min_bytes=1000, slots=1)
    *statuses, most = await _post_all(gate, [5000, 5000, 5000, 10, 10], recorder)
    assert statuses == [200] * 5
    assert most == 3  # two small calls and one large one at a time
    assert recorder.entered == 5


async def test_without_the_gate_they_overlap() -> None:
    recorder = Recorder(expected=1)
    *_, most = await _post_all(recorder, [5000, 5000, 5000], recorder)
    assert most == 3  # the recorder sees overlap when nothing holds it back


async def test_the_service_answers_a_large_chart_through_the_gate(tmp_path: Path) -> None:
    body = json.loads(
        (FIXTURES / "glucocorticoid-safety/seed-dermatomyositis/request.json").read_text()
    )
    settings = make_settings(tmp_path, large_body_bytes=1024, large_body_slots=1)
    async with app_client(settings) as client:
        responses = []

        async def post() -> None:
            responses.append(await client.post("/cds-services/glucocorticoid-safety", json=body))

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(post)
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len({len(r.json()["cards"]) for r in responses}) == 1
