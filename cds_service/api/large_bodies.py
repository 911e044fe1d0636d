"""Large request bodies one at a time: their parsed JSON is most of a worker's memory."""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send


class LargeBodyGate:
    """ASGI middleware: a request that declares a ``Content-Length`` of ``min_bytes`` or more
    waits for one of ``slots`` before the app reads its body, and keeps it until the app is done.

    A 6 MB prefetch (the 5,712-entry record) parses into about 30 MB of Python objects, with a
    transient peak near 100 MB inside the parser, and they live until the response is sent. Four
    such calls in flight took one worker from 170 MB to 290 MB RSS, at no gain in throughput:
    the work is CPU-bound on one core either way (docs/performance.md). Requests under
    ``min_bytes`` pass untouched, so a large record never delays an ordinary chart; a waiting
    body stays in the socket buffers (the server stops reading until the app asks for it).
    """

    def __init__(self, app: ASGIApp, *, min_bytes: int, slots: int) -> None:
        self.app = app
        self.min_bytes = min_bytes
        self.slots = slots
        self._gate: list[anyio.Semaphore] = []  # made on first use, in the running event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _declared_length(scope) < self.min_bytes:
            await self.app(scope, receive, send)
            return
        if not self._gate:
            self._gate.append(anyio.Semaphore(self.slots))
        async with self._gate[0]:
            await self.app(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    """The request's ``Content-Length`` (0 when absent or not a number: the body limit in
    api/body.py still applies to what is read)."""
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
