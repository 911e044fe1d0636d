"""The bundled requests the preview offers: ``fixtures/<service>/<case>/request.json``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A case directory name, as given in ``/preview?fixture=NAME``: no dots, no slashes.
FIXTURE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")


@dataclass(frozen=True)
class Fixture:
    name: str  # the case directory
    service: str  # the service directory (the service id it was written for)
    hook: str
    path: Path

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "service": self.service, "hook": self.hook}


class FixtureLibrary:
    """The cases under ``root``, listed on first use (none when the directory is absent, as in
    an install without the repository's ``fixtures/``). The first case of a name wins."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listing: dict[str, Fixture] | None = None

    def listing(self) -> list[Fixture]:
        return list(self._by_name().values())

    def find(self, name: str) -> Fixture | None:
        if not FIXTURE_NAME.fullmatch(name):
            return None
        return self._by_name().get(name)

    def request(self, name: str) -> dict[str, Any] | None:
        """The request JSON of case ``name``; None for an unknown name."""
        fixture = self.find(name)
        if fixture is None:
            return None
        body: dict[str, Any] = json.loads(fixture.path.read_text(encoding="utf-8"))
        return body

    def _by_name(self) -> dict[str, Fixture]:
        if self._listing is None:
            found: dict[str, Fixture] = {}
            if self.root.is_dir():
                for path in sorted(self.root.glob("*/*/request.json")):
                    name, service = path.parent.name, path.parent.parent.name
                    if name in found or not FIXTURE_NAME.fullmatch(name):
                        continue
                    hook = _hook_of(path)
                    if hook is not None:
                        found[name] = Fixture(name, service, hook, path)
            self._listing = found
        return self._listing


def _hook_of(path: Path) -> str | None:
    """The request's hook; None for a file that is not a JSON object with a string hook."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    hook = body.get("hook") if isinstance(body, dict) else None
    return hook if isinstance(hook, str) else None
