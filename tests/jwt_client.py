"""Signed-client test fixture: an ES384 EHR whose JWKS is served on loopback, minting CDS Hooks JWTs.

Usage in any test module::

    with SignedClient.start() as ehr:            # JWKS on http://127.0.0.1:<port>/jwks.json
        clients_file = ehr.write_clients_file(tmp_path)    # CDS_CLIENTS_FILE for the app
        headers = {"Authorization": ehr.authorization("http://test/cds-services/x")}

``aud`` is the full URL the request goes to, e.g. ``http://test/cds-services/<id>`` with an
``httpx.ASGITransport`` client on ``base_url="http://test"`` and no ``CDS_PUBLIC_URL``.
Each call mints a new ``jti``: reuse a header value only to test replay.

``mint(aud=..., **overrides)`` sets or (with ``None``) removes payload claims; ``header=``
overrides JOSE header fields the same way. All keys are generated per run: nothing is secret.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, Key, KeyParameters, RSAKey

from cds_service.api.trusted_clients import TrustedClient

EHR_ISSUER = "https://ehr.test.example/fhir"


class JWKSServer:
    """A loopback HTTP server for JWK Sets; counts every request by path.

    Paths: ``/jwks.json`` serves :attr:`jwks`; ``/status/<n>`` answers with that status;
    ``/redirect`` answers 302 to ``/jwks.json`` (the verifier must not follow it).
    """

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.requests: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests[self.path] += 1
                if self.path == "/jwks.json":
                    self._send(200, json.dumps(server.jwks).encode())
                elif self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/jwks.json")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path.startswith("/status/"):
                    self._send(int(self.path.rsplit("/", 1)[1]), b"{}")
                else:
                    self._send(404, b"{}")

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def generate_key(kind: str = "EC", kid: str | None = None) -> ECKey | RSAKey:
    """A fresh private signing key: EC P-384 (ES384) or RSA 2048 (RS384)."""
    parameters: KeyParameters = {"kid": kid or uuid.uuid4().hex, "use": "sig"}
    if kind == "RSA":
        return RSAKey.generate_key(2048, parameters=parameters, private=True)
    return ECKey.generate_key("P-384", parameters=parameters, private=True)


def public_jwk(key: Key) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


def b64url_json(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SignedClient:
    """One EHR: its issuer, signing key and (optionally) its loopback JWKS server."""

    iss: str = EHR_ISSUER
    key: ECKey | RSAKey = field(default_factory=generate_key)
    alg: str = "ES384"
    server: JWKSServer | None = None
    send_jku: bool = True

    @classmethod
    @contextmanager
    def start(cls, **kwargs: Any) -> Iterator[SignedClient]:
        """A client whose JWKS is served on a loopback port for the duration of the block."""
        server = JWKSServer()
        client = cls(server=server, **kwargs)
        server.jwks = {"keys": [public_jwk(client.key)]}
        server.start()
        try:
            yield client
        finally:
            server.stop()

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    @property
    def jwks_url(self) -> str | None:
        return f"{self.server.base_url}/jwks.json" if self.server else None

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.key)]}

    def mint(
        self,
        aud: str | list[str] | None,
        *,
        header: dict[str, Any] | None = None,
        key: Key | None = None,
        now: float | None = None,
        **overrides: Any,
    ) -> str:
        """A signed JWT for ``aud``; a claim or header field set to None is left out."""
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "iss": self.iss,
            "aud": aud,
            "exp": issued + 300,
            "iat": issued,
            "jti": str(uuid.uuid4()),
            **overrides,
        }
        jose: dict[str, Any] = {"alg": self.alg, "typ": "JWT", "kid": self.kid}
        if self.send_jku and self.jwks_url:
            jose["jku"] = self.jwks_url
        jose.update(header or {})
        return jwt.encode(
            {k: v for k, v in jose.items() if v is not None},
            {k: v for k, v in claims.items() if v is not None},
            key or self.key,
            algorithms=[jose["alg"]],
            default_type=None,
        )

    def authorization(self, aud: str | list[str] | None, **overrides: Any) -> str:
        """The ``Authorization`` header value for a call to ``aud`` (a full URL)."""
        return f"Bearer {self.mint(aud, **overrides)}"

    def trusted_client(self, **overrides: Any) -> TrustedClient:
        """This client's registration, as ``load_clients`` would return it."""
        values: dict[str, Any] = {
            "iss": self.iss,
            "jwks_url": self.jwks_url,
            "jwks": None if self.jwks_url else self.jwks,
            "algorithms": (self.alg,),
        }
        values.update(overrides)
        return TrustedClient(**values)

    def registration(self) -> dict[str, Any]:
        """This client's entry in a clients file."""
        entry: dict[str, Any] = {"iss": self.iss, "algorithms": [self.alg]}
        if self.jwks_url:
            entry["jwks_url"] = self.jwks_url
        else:
            entry["jwks"] = self.jwks
        return entry

    def write_clients_file(self, directory: Path, name: str = "clients.json") -> Path:
        """Write a JSON clients file trusting this client (only) and return its path."""
        path = directory / name
        path.write_text(json.dumps({"clients": [self.registration()]}, indent=2), encoding="utf-8")
        return path
