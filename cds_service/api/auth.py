"""Verify the EHR's CDS Hooks JWT: issuer allow-list, pinned jku, JWKS cache, aud, exp, jti.

Implements CDS Hooks 2.0 "Trusting CDS Clients" (https://cds-hooks.hl7.org/2.0/#trusting-cds-clients)
with joserfc for every cryptographic step. Only issuers listed in the clients file
(``CDS_CLIENTS_FILE``, see :mod:`cds_service.api.trusted_clients`) are trusted, and for each one only its own
``jwks_url`` may appear as ``jku``: any other ``jku`` is refused before anything is fetched.

Every failure raises the same :class:`~cds_service.errors.Unauthorized` (one generic detail, so a
caller learns nothing about which check failed); the specific reason is logged as a constant
string in ``extra["reason"]``. Tokens are never logged, stored or put in an exception message.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import Key

from cds_service.api.replay import MemoryReplayCache, ReplayCache
from cds_service.api.trusted_clients import (
    SUPPORTED_ALGORITHMS,
    TrustedClient,
    import_public_key,
    public_keys,
)
from cds_service.errors import Unauthorized

logger = logging.getLogger(__name__)


# CDS Hooks 2.0, "Trusting CDS Clients": exp "SHALL be set to no more than five minutes in the
# future" (plus the configured leeway for clock skew). This also bounds how long the replay cache
# must remember a jti. Epic's documented example token lives 15 minutes: a deployment that must
# accept such tokens raises CDS_JWT_MAX_EXP_AHEAD_S knowingly.
MAX_EXP_AHEAD_S = 300
MAX_TOKEN_CHARS = 8192
MAX_JWKS_BYTES = 256 * 1024
JWKS_TIMEOUT_S = 2.0

_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class VerifiedClient:
    """Who called: the verified issuer, Epic-style ``sub`` and ``tenant`` when sent, and ``jti``."""

    iss: str
    sub: str | None
    tenant: str | None
    jti: str


def audience_for(public_url: str | None, request_url: str) -> str:
    """The URL the client called, which its JWT ``aud`` must name.

    Behind a proxy ``public_url`` (``CDS_PUBLIC_URL``: scheme, host and any path prefix) replaces
    the request's own scheme and host, and the request path is appended. Without it the request
    URL is used as is, minus query and fragment: then the Host header decides, so production
    should set ``CDS_PUBLIC_URL``.
    """
    request = urlsplit(request_url)
    if public_url:
        base = urlsplit(public_url)
        return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + request.path, "", ""))
    return urlunsplit((request.scheme, request.netloc, request.path, "", ""))


def _normalise_url(url: str) -> str:
    """Comparable form of a URL: lower-case scheme and host, no default port, no empty path
    segments, no trailing slash. The sandbox calls ``…/cds-services//id`` when its discovery URL
    was typed with a trailing slash, and puts that same URL in ``aud``.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = re.sub("/{2,}", "/", parts.path).rstrip("/")
    return urlunsplit((scheme, netloc, path, parts.query, ""))


class _Rejected(Exception):
    """Internal: why a token was refused (logged, never sent to the caller)."""

    def __init__(self, reason: str, iss: str | None = None, jti: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.iss, self.jti = reason, iss, jti


@dataclass
class _JWKSState:
    """The fetched key set of one ``jwks_url``: keys, when fetched, when last tried."""

    lock: anyio.Lock = field(default_factory=anyio.Lock)
    keys: dict[str, Key] = field(default_factory=dict)
    fetched_at: float | None = None
    attempted_at: float | None = None


def _number(claims: dict[str, Any], name: str, iss: str) -> float:
    """A NumericDate claim; NaN, booleans and strings are refused (NaN compares False)."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Rejected(f"{name} missing or not a number", iss)
    return float(value)


def _json_object(raw: bytes) -> dict[str, Any]:
    def no_constants(_: str) -> None:
        raise ValueError("NaN and Infinity are not JSON")

    try:
        value = json.loads(raw, parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError):
        raise _Rejected("payload not json") from None
    if not isinstance(value, dict):
        raise _Rejected("payload not an object")
    return value


def _bearer_token(authorization_header: str | None) -> bytes:
    """The compact JWT of an ``Authorization: Bearer`` header (bounded length)."""
    if not authorization_header:
        raise _Rejected("authorization header missing")
    header_value = authorization_header.strip()
    if len(header_value) > MAX_TOKEN_CHARS:
        raise _Rejected("token too long")
    match = _BEARER.fullmatch(header_value)
    if match is None:
        raise _Rejected("authorization header malformed")
    return match.group(1).encode("ascii")


def _parse_token(token: bytes) -> tuple[jws.CompactSignature, dict[str, Any], dict[str, Any]]:
    """The unverified JWS, its header and its claims (both JSON objects)."""
    registry = jws.JWSRegistry(algorithms=sorted(SUPPORTED_ALGORITHMS), strict_check_header=False)
    registry.max_header_length = 2048  # Epic's jku URLs are long
    try:
        obj = jws.extract_compact(token, registry=registry)
    except (JoseError, ValueError):
        raise _Rejected("token malformed") from None
    header: object = obj.headers()  # joserfc accepts any JSON that contains "alg"
    if not isinstance(header, dict):
        raise _Rejected("token malformed")
    return obj, header, _json_object(obj.payload or b"")


def _check_header(header: dict[str, Any]) -> tuple[str, str]:
    """``alg`` (supported) and ``kid`` (present) of a header without JWS extensions."""
    alg: object = header.get("alg")  # untrusted JSON: may be any type
    if not isinstance(alg, str) or alg not in SUPPORTED_ALGORITHMS:
        raise _Rejected("alg not allowed")
    if "crit" in header or "b64" in header:
        raise _Rejected("unsupported header")  # no JWS extensions (e.g. RFC 7797) accepted
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _Rejected("kid missing")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() != "jwt"):
        raise _Rejected("typ not jwt")
    return alg, kid


def _check_signature(obj: jws.CompactSignature, key: Key, alg: str, iss: str) -> None:
    try:
        verifier = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
        if not jws.validate_compact(obj, key, registry=verifier):
            raise _Rejected("bad signature", iss)
    except JoseError:
        raise _Rejected("key does not fit alg", iss) from None


def _check_audience(claims: dict[str, Any], accepted: Sequence[str], iss: str) -> None:
    """``aud`` (a string or a list of strings) must name one of the ``accepted`` URLs."""
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud
    if not isinstance(auds, list) or not auds or not all(isinstance(a, str) for a in auds):
        raise _Rejected("aud missing or malformed", iss)
    if not {_normalise_url(u) for u in accepted} & {_normalise_url(a) for a in auds}:
        raise _Rejected("aud mismatch", iss)


def _identity(claims: dict[str, Any], client: TrustedClient) -> tuple[str, str | None, str | None]:
    """``jti`` (required), ``tenant`` (allowed for the client) and ``sub``, type-checked."""
    iss = client.iss
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise _Rejected("jti missing or malformed", iss)
    tenant = claims.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise _Rejected("tenant malformed", iss, jti)
    if client.tenants and tenant not in client.tenants:
        raise _Rejected("tenant not allowed", iss, jti)
    sub = claims.get("sub")
    if sub is not None and not isinstance(sub, str):
        raise _Rejected("sub malformed", iss, jti)
    return jti, tenant, sub


class JWTVerifier:
    """Checks ``Authorization: Bearer <JWT>`` against the trusted clients.

    Keys are looked up by ``kid``: first in the client's inline ``jwks``, then in its ``jwks_url``
    key set, cached for ``jwks_ttl_s`` and refetched on an unknown ``kid`` at most once per
    ``min_refetch_interval_s``. Fetches use the shared ``http`` client, 2 s timeout, no redirects.
    """

    def __init__(
        self,
        clients: Sequence[TrustedClient],
        http: httpx.AsyncClient,
        *,
        leeway_s: int = 60,
        max_exp_ahead_s: int = MAX_EXP_AHEAD_S,
        jwks_ttl_s: int = 3600,
        min_refetch_interval_s: float = 30.0,
        replay_cache: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clients = {client.iss: client for client in clients}
        if len(self._clients) != len(clients):
            raise ValueError("an iss is listed twice")
        self._inline = {
            client.iss: public_keys(client.jwks, client.iss) if client.jwks is not None else {}
            for client in clients
        }
        self._http = http
        self._leeway_s = leeway_s
        self._max_exp_ahead_s = max_exp_ahead_s
        self._jwks_ttl_s = jwks_ttl_s
        self._min_refetch_s = min_refetch_interval_s
        if replay_cache is None:  # not `or`: an empty cache is falsy (__len__)
            replay_cache = MemoryReplayCache(leeway_s=leeway_s, clock=clock)
        self._replay = replay_cache
        self._clock = clock
        self._jwks: dict[str, _JWKSState] = {}

    async def verify(self, authorization_header: str | None, audience_url: str) -> VerifiedClient:
        """Verify the header's JWT for a call to ``audience_url`` (see :func:`audience_for`).

        Raises :class:`Unauthorized` with the same detail whatever failed.
        """
        try:
            return await self._verify(authorization_header, audience_url)
        except _Rejected as rejected:
            self._fail(rejected)

    @staticmethod
    def _fail(rejected: _Rejected) -> NoReturn:
        iss = rejected.iss[:200] if rejected.iss else None
        extra = {"reason": rejected.reason, "iss": iss, "jti": rejected.jti}
        logger.warning("jwt rejected", extra=extra)
        raise Unauthorized() from None

    async def _verify(self, authorization_header: str | None, audience_url: str) -> VerifiedClient:
        # Checks run cheapest first and nothing is fetched before the issuer, alg and jku are
        # known to be acceptable.
        obj, header, claims = _parse_token(_bearer_token(authorization_header))
        alg, kid = _check_header(header)
        client = self._client_for(claims, header, alg)
        key = await self._key(client, kid)
        _check_signature(obj, key, alg, client.iss)
        return await self._check_claims(client, claims, audience_url)

    def _client_for(
        self, claims: dict[str, Any], header: dict[str, Any], alg: str
    ) -> TrustedClient:
        """The trusted client named by ``iss``, if it may use ``alg`` and the header's ``jku``."""
        iss = claims.get("iss")
        client = self._clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise _Rejected("unknown issuer", iss if isinstance(iss, str) else None)
        if alg not in client.algorithms:
            raise _Rejected("alg not allowed for issuer", client.iss)
        # Never follow a jku that is not this issuer's registered one (SSRF, forged keys).
        if "jku" in header and header["jku"] != client.jwks_url:
            raise _Rejected("jku not registered", client.iss)
        return client

    async def _check_claims(
        self, client: TrustedClient, claims: dict[str, Any], audience_url: str
    ) -> VerifiedClient:
        iss = client.iss
        _check_audience(claims, (audience_url, *client.audience), iss)
        exp = self._check_times(claims, iss)
        jti, tenant, sub = _identity(claims, client)
        # Last, once everything else holds: only valid tokens take room in the cache. Raises
        # ReplayCacheUnavailable (503, not a 401) when the shared cache does not answer.
        if await self._replay.seen(iss, jti, math.ceil(exp)):
            raise _Rejected("jti replayed", iss, jti)
        logger.debug("jwt accepted", extra={"iss": iss, "jti": jti})
        return VerifiedClient(iss=iss, sub=sub, tenant=tenant, jti=jti)

    def _check_times(self, claims: dict[str, Any], iss: str) -> float:
        """``exp`` (at most 5 minutes ahead), ``iat`` (required, not ahead) and optional ``nbf``
        against now, within the leeway; returns exp."""
        now = self._clock()
        exp = _number(claims, "exp", iss)
        iat = _number(claims, "iat", iss)
        nbf = _number(claims, "nbf", iss) if "nbf" in claims else None
        if now > exp + self._leeway_s:
            raise _Rejected("jwt expired", iss)
        if iat > now + self._leeway_s:
            raise _Rejected("iat in the future", iss)
        if nbf is not None and nbf > now + self._leeway_s:
            raise _Rejected("jwt not yet valid", iss)
        if exp > now + self._max_exp_ahead_s + self._leeway_s:
            raise _Rejected("exp too far ahead", iss)
        return exp

    async def _key(self, client: TrustedClient, kid: str) -> Key:
        """The client's key ``kid``: inline first, then its cached or refetched JWKS."""
        inline = self._inline[client.iss].get(kid)
        if inline is not None:
            return inline
        url = client.jwks_url
        if url is None:
            raise _Rejected("unknown kid", client.iss)
        state = self._jwks.setdefault(url, _JWKSState())
        if self._fresh(state) and kid in state.keys:
            return state.keys[kid]
        async with state.lock:  # one fetch at a time per URL; waiters reuse its result
            now = self._clock()
            if self._fresh(state) and kid in state.keys:
                return state.keys[kid]
            if state.attempted_at is not None and now - state.attempted_at < self._min_refetch_s:
                reason = "unknown kid" if self._fresh(state) else "jwks refetch rate limited"
                raise _Rejected(reason, client.iss)
            state.attempted_at = now
            state.keys = await self._fetch(client.iss, url)
            state.fetched_at = now
        if kid not in state.keys:
            raise _Rejected("unknown kid", client.iss)
        return state.keys[kid]

    def _fresh(self, state: _JWKSState) -> bool:
        return state.fetched_at is not None and self._clock() - state.fetched_at < self._jwks_ttl_s

    async def _fetch(self, iss: str, url: str) -> dict[str, Key]:
        """GET the JWK Set at ``url`` (no redirects, bounded size) and import its signing keys."""
        try:
            async with self._http.stream(
                "GET",
                url,
                headers={"Accept": "application/json"},
                timeout=JWKS_TIMEOUT_S,
                follow_redirects=False,
            ) as response:
                if response.status_code != httpx.codes.OK:
                    logger.warning(
                        "jwks fetch failed", extra={"iss": iss, "status": response.status_code}
                    )
                    raise _Rejected("jwks fetch failed", iss)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise _Rejected("jwks too large", iss)
        except httpx.HTTPError as error:
            logger.warning(
                "jwks fetch failed", extra={"iss": iss, "error_type": type(error).__name__}
            )
            raise _Rejected("jwks fetch failed", iss) from None
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise _Rejected("jwks not json", iss) from None
        entries = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise _Rejected("jwks malformed", iss)
        keys: dict[str, Key] = {}
        for entry in entries:
            # Keys we cannot use (enc, oct, OKP, no kid) are skipped, not fatal: a JWKS may mix.
            key = import_public_key(entry) if isinstance(entry, dict) else None
            if key is not None and key.kid not in keys:
                keys[str(key.kid)] = key
        logger.info("jwks fetched", extra={"iss": iss, "count": len(keys)})
        return keys
