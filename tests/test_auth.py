"""EHR authentication: the spec example key, the attack suite, JWKS caching and the clients file."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import import_key

from cds_service.api.auth import JWTVerifier, VerifiedClient, audience_for
from cds_service.api.replay import MemoryReplayCache
from cds_service.api.trusted_clients import (
    SANDBOX_ISSUER,
    ClientsFileError,
    TrustedClient,
    load_clients,
)
from cds_service.errors import Unauthorized, operation_outcome
from cds_service.logs import SafeJSONFormatter
from tests.jwt_client import SignedClient, b64url_json, generate_key

pytestmark = pytest.mark.anyio

DATA = Path(__file__).parent / "data" / "auth"
AUD = "https://cds.test.example/cds-services/bone-health"
GENERIC_BODY = operation_outcome(Unauthorized())


class FakeClock:
    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


class CountingTransport(httpx.MockTransport):
    """A MockTransport that records every request it is asked to send."""

    def __init__(self, handler: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request) if handler else httpx.Response(599)

        super().__init__(record)


@pytest.fixture
def ehr() -> Iterator[SignedClient]:
    with SignedClient.start() as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as client:
        yield client


def rejected_reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.__dict__["reason"] for r in caplog.records if r.getMessage() == "jwt rejected"]


async def assert_rejected(
    verifier: JWTVerifier,
    header: str | None,
    reason: str,
    caplog: pytest.LogCaptureFixture,
    aud: str = AUD,
) -> None:
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="cds_service.api.auth"),
        pytest.raises(Unauthorized) as info,
    ):
        await verifier.verify(header, aud)
    assert operation_outcome(info.value) == GENERIC_BODY  # identical body whatever failed
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert rejected_reasons(caplog) == [reason]


# ---------------------------------------------------------------- the spec's example key pair


def spec_json(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return value


def spec_client() -> TrustedClient:
    header, payload = spec_json("jwt-header.json"), spec_json("jwt-payload.json")
    return TrustedClient(
        iss=payload["iss"],
        jwks_url=header["jku"],
        jwks=spec_json("jwks-public.json"),
        algorithms=("ES384",),
        tenants=(payload["tenant"],),
    )


def spec_token(**overrides: Any) -> str:
    """The spec's example header and payload, signed with the spec's (public) private key."""
    private = import_key(spec_json("jwk-private-SPEC-EXAMPLE-ONLY.json"))
    claims = {**spec_json("jwt-payload.json"), **overrides}
    return jwt.encode(spec_json("jwt-header.json"), claims, private, algorithms=["ES384"])


async def test_spec_example_key_pair_verifies_with_inline_jwks() -> None:
    transport = CountingTransport()
    now = int(time.time())
    token = spec_token(iat=now, exp=now + 300)
    async with httpx.AsyncClient(transport=transport) as http:
        verifier = JWTVerifier([spec_client()], http)
        aud = audience_for(None, "https://cds.example.org/cds-services/some-service?x=1")
        verified = await verifier.verify(f"Bearer {token}", aud)
    assert verified == VerifiedClient(
        iss="https://fhir-ehr.example.com/",
        sub=None,
        tenant="2ddd6c3a-8e9a-44c6-a305-52111ad302a2",
        jti="ee22b021-e1b7-4611-ba5b-8eec6a33ac1e",
    )
    assert transport.requests == []  # inline key: the registered jku is never fetched


async def test_spec_example_token_as_published_is_expired(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with httpx.AsyncClient(transport=CountingTransport()) as http:
        verifier = JWTVerifier([spec_client()], http)
        header = f"Bearer {spec_token()}"
        await assert_rejected(
            verifier, header, "jwt expired", caplog, aud=spec_json("jwt-payload.json")["aud"]
        )


async def test_example_toml_clients_file_loads_and_verifies() -> None:
    clients = load_clients(DATA / "clients.example.toml")
    assert [c.iss for c in clients] == [
        "https://fhir-ehr.example.com/",
        "https://ehr.example.org/fhir",
    ]
    assert clients[0].audience == ("https://cds.example.org/cds-services/some-service",)
    assert clients[1].algorithms == ("ES384", "RS384")
    now = int(time.time())
    async with httpx.AsyncClient(transport=CountingTransport()) as http:
        verifier = JWTVerifier(clients, http)
        # Audience override: accepted on a URL other than the one named in aud.
        token = spec_token(iat=now, exp=now + 300)
        verified = await verifier.verify(f"Bearer {token}", "https://cds.example.org/cds-services")
    assert verified.tenant == "2ddd6c3a-8e9a-44c6-a305-52111ad302a2"


# ---------------------------------------------------------------- accepted tokens


async def test_loopback_jwks_es384_token_accepted(
    ehr: SignedClient, http: httpx.AsyncClient
) -> None:
    verifier = JWTVerifier([ehr.trusted_client()], http)
    verified = await verifier.verify(ehr.authorization(AUD, jti="jti-1"), AUD)
    assert verified == VerifiedClient(iss=ehr.iss, sub=None, tenant=None, jti="jti-1")
    assert ehr.server is not None
    assert ehr.server.requests == {"/jwks.json": 1}


async def test_clients_file_from_fixture_drives_verifier(
    ehr: SignedClient, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    verifier = JWTVerifier(load_clients(ehr.write_clients_file(tmp_path)), http)
    assert (await verifier.verify(ehr.authorization(AUD), AUD)).iss == ehr.iss


async def test_token_without_jku_uses_registered_jwks_url(
    ehr: SignedClient, http: httpx.AsyncClient
) -> None:
    verifier = JWTVerifier([ehr.trusted_client()], http)
    await verifier.verify(ehr.authorization(AUD, header={"jku": None}), AUD)


async def test_aud_as_array_accepted(ehr: SignedClient, http: httpx.AsyncClient) -> None:
    verifier = JWTVerifier([ehr.trusted_client()], http)
    await verifier.verify(ehr.authorization([AUD]), AUD)
    await verifier.verify(ehr.authorization(["https://other.example/x", AUD]), AUD)


@pytest.mark.parametrize(
    ("aud", "called"),
    [
        # Sandbox quirk: a discovery URL typed with a trailing slash gives ".../cds-services//id".
        ("https://cds.test.example/cds-services//bone-health", AUD),
        (AUD, "https://cds.test.example/cds-services//bone-health"),
        ("HTTPS://CDS.TEST.EXAMPLE:443/cds-services/bone-health/", AUD),
    ],
)
async def test_aud_compared_in_normalised_form(
    ehr: SignedClient, http: httpx.AsyncClient, aud: str, called: str
) -> None:
    verifier = JWTVerifier([ehr.trusted_client()], http)
    await verifier.verify(ehr.authorization(aud), called)


async def test_epic_style_rs384_with_sub_nbf_and_configured_aud(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Epic: RS384, base64 kid with "+" and "=", sub and nbf (5 min before iat), aud configured by
    # hand by the health system, and an example lifetime of 15 min: beyond the spec's 5 minutes,
    # so refused unless the deployment raises CDS_JWT_MAX_EXP_AHEAD_S.
    key = generate_key("RSA", kid="d3bmo5HzW61TUgikHZH+A8Tx4UOXz2iOs4KvVU4eLY0=")
    with SignedClient.start(
        iss="https://epic.test.example/interconnect-fhir", key=key, alg="RS384"
    ) as epic:
        configured = "https://example.com/savecdshooksrequest"
        client = epic.trusted_client(audience=(configured,))
        now = int(time.time())

        def header(exp: int) -> str:
            return epic.authorization(configured, sub="epic-cds-client", nbf=now - 300, exp=exp)

        verified = await JWTVerifier([client], http).verify(header(now + 300), AUD)
        assert verified.sub == "epic-cds-client"
        fifteen_minutes = header(now + 900)
        await assert_rejected(
            JWTVerifier([client], http), fifteen_minutes, "exp too far ahead", caplog
        )
        relaxed = JWTVerifier([client], http, max_exp_ahead_s=900)
        assert (await relaxed.verify(fifteen_minutes, AUD)).sub == "epic-cds-client"


async def test_valid_token_without_sub_or_tenant(
    ehr: SignedClient, http: httpx.AsyncClient
) -> None:
    verifier = JWTVerifier([ehr.trusted_client()], http)
    verified = await verifier.verify(ehr.authorization(AUD), AUD)
    assert verified.sub is None
    assert verified.tenant is None


async def test_typ_is_case_insensitive_and_optional(
    ehr: SignedClient, http: httpx.AsyncClient
) -> None:
    verifier = JWTVerifier([ehr.trusted_client()], http)
    await verifier.verify(ehr.authorization(AUD, header={"typ": "jwt"}), AUD)
    await verifier.verify(ehr.authorization(AUD, header={"typ": None}), AUD)


async def test_skew_within_leeway_accepted(ehr: SignedClient, http: httpx.AsyncClient) -> None:
    verifier = JWTVerifier([ehr.trusted_client()], http, leeway_s=60)
    now = int(time.time())
    await verifier.verify(ehr.authorization(AUD, now=now + 30), AUD)  # iat slightly ahead
    await verifier.verify(ehr.authorization(AUD, now=now - 330), AUD)  # exp 30 s ago


# ---------------------------------------------------------------- attack suite


def unsigned(ehr: SignedClient, signature: str = "") -> str:
    header = {"alg": "none", "typ": "JWT", "kid": ehr.kid}
    claims = {"iss": ehr.iss, "aud": AUD, "exp": time.time() + 300, "iat": time.time(), "jti": "x"}
    return f"Bearer {b64url_json(header)}.{b64url_json(claims)}.{signature}"


def hs256_with_public_key(ehr: SignedClient) -> str:
    # Key confusion: HMAC "signed" with the client's public key as the shared secret.
    header = {"alg": "HS256", "typ": "JWT", "kid": ehr.kid}
    now = int(time.time())
    claims = {"iss": ehr.iss, "aud": AUD, "exp": now + 300, "iat": now, "jti": "hs"}
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    secret = ehr.key.as_pem(private=False)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"Bearer {signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def tampered(ehr: SignedClient) -> str:
    header, _, signature = ehr.mint(AUD).split(".")
    now = int(time.time())
    claims = {"iss": ehr.iss, "aud": AUD, "exp": now + 86400, "iat": now, "jti": "t"}
    return f"Bearer {header}.{b64url_json(claims)}.{signature}"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def odd_header(raw: bytes) -> str:
    """A header that is JSON containing "alg" but not an object."""
    return f"Bearer {b64(raw)}.{b64(b'{}')}.AAAA"


def reheadered(ehr: SignedClient, **fields: Any) -> str:
    """A signed token whose header was then changed (joserfc refuses to sign such headers)."""
    _, payload, signature = ehr.mint(AUD).split(".")
    header = {"alg": ehr.alg, "typ": "JWT", "kid": ehr.kid, **fields}
    return f"Bearer {b64url_json(header)}.{payload}.{signature}"


def other_key_same_kid(ehr: SignedClient) -> str:
    return ehr.authorization(AUD, key=generate_key(kid=ehr.kid))


def rs384_not_registered(ehr: SignedClient) -> str:
    return ehr.authorization(AUD, key=generate_key("RSA", kid=ehr.kid), header={"alg": "RS384"})


def nan_exp(ehr: SignedClient) -> str:
    header, _, signature = ehr.mint(AUD).split(".")
    payload = b'{"iss":"%s","aud":"%s","exp":NaN,"iat":1,"jti":"n"}' % (
        ehr.iss.encode(),
        AUD.encode(),
    )
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    return f"Bearer {header}.{encoded}.{signature}"


def _now() -> int:
    return int(time.time())


NOW = int(time.time())
ATTACKS: dict[str, tuple[Callable[[SignedClient], str | None], str]] = {
    "missing header": (lambda _: None, "authorization header missing"),
    "empty header": (lambda _: "", "authorization header missing"),
    "basic scheme": (lambda _: "Basic x", "authorization header malformed"),
    "bearer alone": (lambda _: "Bearer", "authorization header malformed"),
    "bearer garbage": (lambda _: "Bearer not-a-jwt!", "authorization header malformed"),
    "bearer three junk segments": (lambda _: "Bearer a.b.c", "token malformed"),
    "header a json list": (lambda _: odd_header(b'["alg"]'), "token malformed"),
    "header a json string": (lambda _: odd_header(b'"alg"'), "token malformed"),
    "token twice": (
        lambda e: f"{e.authorization(AUD)} {e.mint(AUD)}",
        "authorization header malformed",
    ),
    "oversized": (lambda _: "Bearer " + "a" * 9000, "token too long"),
    "alg none unsigned": (unsigned, "authorization header malformed"),
    "alg none with junk signature": (lambda e: unsigned(e, "AAAA"), "alg not allowed"),
    "alg not a string": (lambda e: reheadered(e, alg=["ES384"]), "alg not allowed"),
    "hs256 public key as secret": (hs256_with_public_key, "alg not allowed"),
    "rs384 not registered for issuer": (rs384_not_registered, "alg not allowed for issuer"),
    "tampered payload": (tampered, "bad signature"),
    "other key same kid": (other_key_same_kid, "bad signature"),
    "wrong aud": (lambda e: e.authorization(AUD + "-other"), "aud mismatch"),
    "discovery aud on service": (
        lambda e: e.authorization("https://cds.test.example/cds-services"),
        "aud mismatch",
    ),
    "aud array without us": (lambda e: e.authorization(["https://x.example/"]), "aud mismatch"),
    "aud missing": (lambda e: e.authorization(None), "aud missing or malformed"),
    "expired": (lambda e: e.authorization(AUD, now=NOW - 1000), "jwt expired"),
    "nbf in future": (lambda e: e.authorization(AUD, nbf=NOW + 600), "jwt not yet valid"),
    "iat in future": (lambda e: e.authorization(AUD, now=NOW + 600), "iat in the future"),
    "exp missing": (lambda e: e.authorization(AUD, exp=None), "exp missing or not a number"),
    "exp as string": (
        lambda e: e.authorization(AUD, exp=str(NOW + 300)),
        "exp missing or not a number",
    ),
    "exp NaN": (nan_exp, "payload not json"),
    "iat missing": (lambda e: e.authorization(AUD, iat=None), "iat missing or not a number"),
    "exp an hour ahead": (lambda e: e.authorization(AUD, exp=_now() + 3600), "exp too far ahead"),
    "exp beyond 5 min plus leeway": (
        lambda e: e.authorization(AUD, exp=_now() + 300 + 60 + 30),
        "exp too far ahead",
    ),
    "iat in future beyond leeway": (
        lambda e: e.authorization(AUD, iat=_now() + 90, exp=_now() + 200),
        "iat in the future",
    ),
    "jti missing": (lambda e: e.authorization(AUD, jti=None), "jti missing or malformed"),
    "kid missing": (lambda e: e.authorization(AUD, header={"kid": None}), "kid missing"),
    "typ not jwt": (lambda e: e.authorization(AUD, header={"typ": "at+jwt"}), "typ not jwt"),
    "crit header": (lambda e: e.authorization(AUD, header={"crit": ["kid"]}), "unsupported header"),
    "unknown kid": (lambda e: e.authorization(AUD, header={"kid": "nope"}), "unknown kid"),
    "unknown issuer": (
        lambda e: e.authorization(AUD, iss="https://evil.example"),
        "unknown issuer",
    ),
    "sandbox issuer": (lambda e: e.authorization(AUD, iss=SANDBOX_ISSUER), "unknown issuer"),
    "tenant not a string": (lambda e: e.authorization(AUD, tenant=["t"]), "tenant malformed"),
    "sub not a string": (lambda e: e.authorization(AUD, sub=42), "sub malformed"),
}


@pytest.mark.parametrize("name", list(ATTACKS))
async def test_attack_rejected_with_generic_401(
    name: str, ehr: SignedClient, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    build, reason = ATTACKS[name]
    verifier = JWTVerifier([ehr.trusted_client()], http)
    await assert_rejected(verifier, build(ehr), reason, caplog)


async def test_replayed_jti_rejected(
    ehr: SignedClient, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = JWTVerifier([ehr.trusted_client()], http)
    header = ehr.authorization(AUD)
    await verifier.verify(header, AUD)
    await assert_rejected(verifier, header, "jti replayed", caplog)
    # Same jti in a freshly signed token is still a replay.
    jti = header.split(".")[1]
    again = ehr.authorization(AUD, jti=json.loads(base64.urlsafe_b64decode(jti + "=="))["jti"])
    await assert_rejected(verifier, again, "jti replayed", caplog)


async def test_invalid_tokens_do_not_fill_replay_cache(
    ehr: SignedClient, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    cache = MemoryReplayCache()
    verifier = JWTVerifier([ehr.trusted_client()], http, replay_cache=cache)
    await assert_rejected(verifier, ehr.authorization(AUD + "-x", jti="j"), "aud mismatch", caplog)
    await verifier.verify(ehr.authorization(AUD, jti="j"), AUD)
    assert len(cache) == 1


async def test_tenant_allow_list(
    ehr: SignedClient, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = JWTVerifier([ehr.trusted_client(tenants=("t1",))], http)
    assert (await verifier.verify(ehr.authorization(AUD, tenant="t1"), AUD)).tenant == "t1"
    await assert_rejected(
        verifier, ehr.authorization(AUD, tenant="t2"), "tenant not allowed", caplog
    )
    await assert_rejected(verifier, ehr.authorization(AUD), "tenant not allowed", caplog)


async def test_jku_elsewhere_is_never_fetched(caplog: pytest.LogCaptureFixture) -> None:
    # The attacker signs with its own key and points jku at its own JWKS.
    transport = CountingTransport(lambda _: httpx.Response(200, json={"keys": []}))
    registered = SignedClient(send_jku=False)
    attacker = SignedClient(key=generate_key())
    header = attacker.authorization(AUD, header={"jku": "https://attacker.example/jwks.json"})
    async with httpx.AsyncClient(transport=transport) as http:
        clients = [
            registered.trusted_client(jwks_url="https://ehr.test.example/jwks.json", jwks=None)
        ]
        verifier = JWTVerifier(clients, http)
        await assert_rejected(verifier, header, "jku not registered", caplog)
    assert transport.requests == []


async def test_jku_elsewhere_no_request_on_loopback(
    ehr: SignedClient, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    assert ehr.server is not None
    evil = f"{ehr.server.base_url}/evil.json"  # same host, different path: still refused
    verifier = JWTVerifier([ehr.trusted_client()], http)
    await assert_rejected(
        verifier, ehr.authorization(AUD, header={"jku": evil}), "jku not registered", caplog
    )
    assert ehr.server.total_requests == 0


async def test_jku_with_inline_only_client_rejected(caplog: pytest.LogCaptureFixture) -> None:
    client = SignedClient()
    transport = CountingTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        verifier = JWTVerifier([client.trusted_client()], http)
        await verifier.verify(client.authorization(AUD), AUD)  # inline key, no jku: fine
        header = client.authorization(AUD, header={"jku": "https://ehr.test.example/jwks"})
        await assert_rejected(verifier, header, "jku not registered", caplog)
    assert transport.requests == []


# ---------------------------------------------------------------- JWKS fetching and caching


async def test_jwks_cached_for_ttl_then_refetched(
    ehr: SignedClient, http: httpx.AsyncClient
) -> None:
    clock = FakeClock()
    verifier = JWTVerifier([ehr.trusted_client()], http, jwks_ttl_s=100, clock=clock)
    assert ehr.server is not None
    await verifier.verify(ehr.authorization(AUD, now=clock()), AUD)
    clock.now += 99
    await verifier.verify(ehr.authorization(AUD, now=clock()), AUD)
    assert ehr.server.requests["/jwks.json"] == 1
    clock.now += 2
    await verifier.verify(ehr.authorization(AUD, now=clock()), AUD)
    assert ehr.server.requests["/jwks.json"] == 2


async def test_unknown_kid_refetch_is_rate_limited_and_picks_up_rotation(
    ehr: SignedClient, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    verifier = JWTVerifier([ehr.trusted_client()], http, min_refetch_interval_s=10, clock=clock)
    server = ehr.server
    assert server is not None
    await verifier.verify(ehr.authorization(AUD, now=clock()), AUD)
    assert server.requests["/jwks.json"] == 1

    unknown = {"kid": "unknown"}
    clock.now += 1  # within the interval: no refetch
    await assert_rejected(
        verifier, ehr.authorization(AUD, now=clock(), header=unknown), "unknown kid", caplog
    )
    assert server.requests["/jwks.json"] == 1
    clock.now += 10  # interval passed: one refetch, kid still unknown
    await assert_rejected(
        verifier, ehr.authorization(AUD, now=clock(), header=unknown), "unknown kid", caplog
    )
    assert server.requests["/jwks.json"] == 2
    await assert_rejected(
        verifier, ehr.authorization(AUD, now=clock(), header=unknown), "unknown kid", caplog
    )
    assert server.requests["/jwks.json"] == 2

    # The EHR rotates its key: the next unknown kid after the interval is found by a refetch.
    rotated = generate_key(kid="rotated")
    server.jwks = {"keys": [*server.jwks["keys"], dict(rotated.as_dict(private=False))]}
    clock.now += 10
    await verifier.verify(
        ehr.authorization(AUD, now=clock(), key=rotated, header={"kid": "rotated"}), AUD
    )
    assert server.requests["/jwks.json"] == 3
    # Known keys keep verifying without any fetch.
    await verifier.verify(ehr.authorization(AUD, now=clock()), AUD)
    assert server.requests["/jwks.json"] == 3


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/status/500", "jwks fetch failed"),
        ("/status/404", "jwks fetch failed"),
        ("/redirect", "jwks fetch failed"),
    ],
)
async def test_jwks_http_failures_rejected(
    ehr: SignedClient,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    path: str,
    reason: str,
) -> None:
    assert ehr.server is not None
    verifier = JWTVerifier([ehr.trusted_client(jwks_url=ehr.server.base_url + path)], http)
    await assert_rejected(verifier, ehr.authorization(AUD, header={"jku": None}), reason, caplog)
    assert ehr.server.requests["/jwks.json"] == 0  # the redirect was not followed


def jwks_response(body: bytes) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(200, content=body)


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectTimeout("timed out", request=request)


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (timeout, "jwks fetch failed"),
        (jwks_response(b"<html>"), "jwks not json"),
        (jwks_response(b'{"keys": {}}'), "jwks malformed"),
        (jwks_response(b" " * 300_000), "jwks too large"),
        (jwks_response(b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]}'), "unknown kid"),
    ],
)
async def test_jwks_bad_responses_rejected(
    caplog: pytest.LogCaptureFixture,
    handler: Callable[[httpx.Request], httpx.Response],
    reason: str,
) -> None:
    client = SignedClient(send_jku=False, key=generate_key(kid="k"))
    transport = CountingTransport(handler)
    async with httpx.AsyncClient(transport=transport) as http:
        verifier = JWTVerifier(
            [client.trusted_client(jwks_url="https://ehr.test.example/jwks", jwks=None)], http
        )
        await assert_rejected(verifier, client.authorization(AUD), reason, caplog)
    [request] = transport.requests
    assert request.extensions["timeout"]["read"] == 2.0


async def test_jwks_fetch_failure_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    client = SignedClient(send_jku=False)
    transport = CountingTransport(lambda _: httpx.Response(503))
    clock = FakeClock()
    async with httpx.AsyncClient(transport=transport) as http:
        trusted = client.trusted_client(jwks_url="https://ehr.test.example/jwks", jwks=None)
        verifier = JWTVerifier([trusted], http, clock=clock)
        await assert_rejected(
            verifier, client.authorization(AUD, now=clock()), "jwks fetch failed", caplog
        )
        header = client.authorization(AUD, now=clock())
        await assert_rejected(verifier, header, "jwks refetch rate limited", caplog)
    assert len(transport.requests) == 1


# ---------------------------------------------------------------- logging


async def test_logs_never_contain_the_token(
    ehr: SignedClient, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    verifier = JWTVerifier([ehr.trusted_client()], http)
    tokens = [
        ehr.mint(AUD),
        ehr.mint(AUD + "-x"),
        ehr.mint(AUD, iss="https://evil.example"),
        ehr.mint(AUD, now=NOW - 1000),
        ehr.mint(AUD, header={"kid": "nope"}),
    ]
    for token in [*tokens, tokens[0]]:
        with contextlib.suppress(Unauthorized):
            await verifier.verify(f"Bearer {token}", AUD)
    assert caplog.records
    formatter = SafeJSONFormatter()
    logged = "\n".join(formatter.format(r) + repr(r.__dict__) for r in caplog.records)
    for token in tokens:
        for segment in token.split("."):
            assert segment not in logged
    assert "jwt rejected" in logged
    assert "jwt expired" in logged


# ---------------------------------------------------------------- audience_for


@pytest.mark.parametrize(
    ("public_url", "request_url", "expected"),
    [
        (None, "http://test/cds-services/x?a=1#f", "http://test/cds-services/x"),
        (None, "https://cds.example.org/cds-services", "https://cds.example.org/cds-services"),
        (
            "https://cds.example.org",
            "http://10.0.0.5:8000/cds-services/x?q",
            "https://cds.example.org/cds-services/x",
        ),
        (
            "https://cds.example.org/base/",
            "http://internal/cds-services/x/feedback",
            "https://cds.example.org/base/cds-services/x/feedback",
        ),
        ("", "http://test/cds-services", "http://test/cds-services"),
    ],
)
def test_audience_for(public_url: str | None, request_url: str, expected: str) -> None:
    assert audience_for(public_url, request_url) == expected


# ---------------------------------------------------------------- replay cache


async def test_memory_replay_cache_expires_after_exp_plus_leeway() -> None:
    clock = FakeClock(1000.0)
    cache = MemoryReplayCache(leeway_s=60, clock=clock)
    assert not await cache.seen("iss", "a", 1100)
    assert await cache.seen("iss", "a", 1100)
    assert not await cache.seen("other-iss", "a", 1100)  # jti is scoped by issuer
    clock.now = 1160.0
    assert await cache.seen("iss", "a", 1100)
    clock.now = 1161.0
    assert not await cache.seen("iss", "a", 1100)
    clock.now = 2000.0
    assert len(cache) == 0  # expired entries are evicted, issuers with them
    assert cache.count("iss") == cache.count("other-iss") == 0


async def test_memory_replay_cache_full_fails_closed_for_that_issuer_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(0.0)
    cache = MemoryReplayCache(max_per_issuer=2, leeway_s=0, clock=clock)
    assert not await cache.seen("flood", "a", 10)
    assert not await cache.seen("flood", "b", 20)
    assert await cache.seen("flood", "c", 30)  # full: refused, not forgotten
    assert "replay cache full" in caplog.text
    # Another issuer is never refused because the first one filled its quota.
    assert not await cache.seen("other", "a", 30)
    assert not await cache.seen("other", "b", 30)
    assert cache.count("flood") == 2
    clock.now = 11.0  # "a" expired: room again for the flooding issuer
    assert not await cache.seen("flood", "c", 30)


# ---------------------------------------------------------------- clients file


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_clients_json_defaults(tmp_path: Path) -> None:
    body = {
        "clients": [{"iss": "https://e.example", "jwks_url": "https://e.example/jwks", "extra": 1}]
    }
    [client] = load_clients(write(tmp_path, "c.json", json.dumps(body)))
    assert client == TrustedClient(
        iss="https://e.example", jwks_url="https://e.example/jwks", jwks=None
    )


def test_sandbox_listed_explicitly_is_loaded_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = {
        "clients": [{"iss": SANDBOX_ISSUER, "jwks_url": SANDBOX_ISSUER + "/.well-known/jwks.json"}]
    }
    [client] = load_clients(write(tmp_path, "c.json", json.dumps(body)))
    assert client.iss == SANDBOX_ISSUER
    assert "sandbox issuer trusted" in caplog.text


PRIVATE = json.loads((DATA / "jwk-private-SPEC-EXAMPLE-ONLY.json").read_text(encoding="utf-8"))
GOOD = {"iss": "https://e.example", "jwks_url": "https://e.example/jwks"}


@pytest.mark.parametrize(
    ("clients", "message"),
    [
        ({"clients": []}, '"clients" list'),
        ({"client": [GOOD]}, '"clients" list'),
        ({"clients": ["x"]}, "clients[0]: expected an object"),
        ({"clients": [{"jwks_url": "https://e.example/jwks"}]}, "clients[0].iss"),
        ({"clients": [{"iss": "https://e.example"}]}, "needs jwks_url or jwks"),
        ({"clients": [{**GOOD, "algorithms": ["HS256"]}]}, "HS256 is refused"),
        ({"clients": [{**GOOD, "algorithms": ["none"]}]}, "none is refused"),
        ({"clients": [{**GOOD, "algorithms": ["EdDSA"]}]}, "not supported"),
        ({"clients": [{**GOOD, "algorithms": []}]}, "algorithms: empty"),
        ({"clients": [{**GOOD, "algorithms": "ES384"}]}, "algorithms: expected a list"),
        (
            {"clients": [{**GOOD, "jwks_url": "http://e.example/jwks"}]},
            "jwks_url: must be an https",
        ),
        ({"clients": [{**GOOD, "jwks": {"keys": [PRIVATE]}}]}, "private or symmetric"),
        (
            {"clients": [{**GOOD, "jwks": {"keys": [{"kty": "EC", "kid": "x"}]}}]},
            "not an EC or RSA",
        ),
        ({"clients": [{**GOOD, "jwks": {"keys": []}}]}, "at least one key"),
        ({"clients": [{**GOOD, "tenants": "t"}]}, "tenants: expected a list"),
        ({"clients": [GOOD, GOOD]}, "listed twice"),
    ],
)
def test_load_clients_rejects_bad_files(
    tmp_path: Path, clients: dict[str, Any], message: str
) -> None:
    with pytest.raises(
        ClientsFileError, match=message.replace("[", r"\[").replace("]", r"\]")
    ) as info:
        load_clients(write(tmp_path, "c.json", json.dumps(clients)))
    assert PRIVATE["d"] not in str(info.value)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.yaml", "clients: []", "expected a .json or .toml"),
        ("c.json", '{"clients": [', "not valid JSON"),
        ("c.toml", 'secret = "PHI-CANARY-TOKEN-9142', "not valid TOML"),
    ],
)
def test_load_clients_rejects_unparseable_files(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(ClientsFileError, match=message) as info:
        load_clients(write(tmp_path, name, text))
    assert "PHI-CANARY" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_load_clients_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ClientsFileError, match="cannot be read"):
        load_clients(tmp_path / "absent.json")
