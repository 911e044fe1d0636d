"""The preview's HTTP surface: the page, its static files, the bundled requests and the
explanation with the exposure chart. Included only with CDS_PREVIEW=true (404 otherwise)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, Request, Response

from cds_service.api.body import check_depth
from cds_service.api.deps import RuntimeDep
from cds_service.api.http import authenticate, find_service, json_response, read_model
from cds_service.api.routes import request_scope
from cds_service.cdshooks import CDSRequest
from cds_service.errors import UnknownService
from cds_service.explain import explain_with_exposure, render_json, render_text
from cds_service.hook_call import HookCall
from cds_service.preview.chart import exposure_chart
from cds_service.preview.fixtures import FixtureLibrary

# The page loads its script and style from this service only and talks only to it; nothing
# inline (EdgeMiddleware keeps a CSP a route set; everything else gets default-src 'none').
PREVIEW_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
PAGE = "index.html"


def load_static() -> dict[str, tuple[bytes, str]]:
    """The files of ``static/`` (package data) by name, with their media types."""
    folder = resources.files(__package__ or "cds_service.preview") / "static"
    return {
        item.name: (item.read_bytes(), MEDIA_TYPES[Path(item.name).suffix])
        for item in folder.iterdir()
        if item.is_file() and Path(item.name).suffix in MEDIA_TYPES
    }


def _asset(content: bytes, media_type: str) -> Response:
    response = Response(content, media_type=media_type)
    response.headers["content-security-policy"] = PREVIEW_CSP
    return response


def preview_router(fixtures_dir: Path) -> APIRouter:
    """The routes, with the static files read once and the fixtures listed on first use."""
    router = APIRouter(prefix="/preview", include_in_schema=False)
    static = load_static()
    fixtures = FixtureLibrary(fixtures_dir)

    @router.get("")
    async def page(request: Request, runtime: RuntimeDep) -> Response:
        await authenticate(request, runtime)
        return _asset(*static[PAGE])

    @router.get("/static/{name}")
    async def static_file(name: str, request: Request, runtime: RuntimeDep) -> Response:
        await authenticate(request, runtime)
        if name == PAGE or name not in static:
            raise UnknownService("no such file")
        return _asset(*static[name])

    @router.get("/api/fixtures")
    async def fixture_list(request: Request, runtime: RuntimeDep) -> Response:
        await authenticate(request, runtime)
        listing = await anyio.to_thread.run_sync(fixtures.listing)
        return json_response({"fixtures": [f.as_json() for f in listing]})

    @router.get("/api/fixtures/{name}")
    async def fixture_request(name: str, request: Request, runtime: RuntimeDep) -> Response:
        await authenticate(request, runtime)
        body = await anyio.to_thread.run_sync(fixtures.request, name)
        if body is None:
            raise UnknownService("no such fixture")
        return json_response(body)

    @router.post("/api/explain/{service_id}")
    async def explain(service_id: str, request: Request, runtime: RuntimeDep) -> Response:
        """The same body as ``POST /cds-services/{id}``: the explanation (JSON and text) and
        the exposure chart, from the same gather and decide steps as the hook call (nothing
        is recorded: no card is issued here)."""
        client = await authenticate(request, runtime)
        service = find_service(runtime, service_id)
        body = await read_model(request, CDSRequest, max_bytes=runtime.settings.max_body_bytes)
        check_depth(body.context, runtime.settings.max_json_depth, "context")
        # The hook call's own snooze scope (client and patient), so the same snoozes apply.
        call = HookCall.of(body, service, runtime.clock(), request_scope(runtime, body, client))
        engine = runtime.engine
        explanation, summary = await explain_with_exposure(call, engine.gather, engine.decide)
        request.state.log_fields = {"service_id": service.id, "hook": body.hook}
        return json_response(
            {
                "explanation": render_json(explanation),
                "text": render_text(explanation),
                "chart": exposure_chart(summary, service.thresholds),
            }
        )

    return router
