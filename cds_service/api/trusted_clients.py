"""The trusted EHRs: the clients file (``CDS_CLIENTS_FILE``) and the public keys it pins.

**The CDS Hooks Sandbox issuer (``https://sandbox.cds-hooks.org``) is never trusted by default.**
Its signing key is committed to the public sandbox repository, so anyone can mint "sandbox"
tokens. List it in a clients file only for development and testing, never in production.
"""

from __future__ import annotations

import json
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, RSAKey, import_key

logger = logging.getLogger(__name__)


SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"

# Asymmetric JWS algorithms a clients file may list. "none" and HS* are never accepted (spec,
# "JWT Signing Algorithm"); EdDSA is left out because joserfc flags it deprecated (RFC 9864).
SUPPORTED_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
)
DEFAULT_ALGORITHMS = ("ES384", "RS384")  # the spec's RECOMMENDED pair

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class ClientsFileError(ValueError):
    """The clients file is unreadable or invalid; the message names the entry, never a secret."""


@dataclass(frozen=True)
class TrustedClient:
    """One EHR allowed to call the service.

    ``jwks_url`` is the only ``jku`` accepted for ``iss`` and where its keys are fetched; ``jwks``
    pins keys inline (tried first). ``tenants`` empty means any tenant. ``audience`` lists extra
    accepted ``aud`` values besides the URL called (Epic's ``aud`` is configured by hand).
    """

    iss: str
    jwks_url: str | None
    jwks: dict[str, Any] | None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    tenants: tuple[str, ...] = ()
    audience: tuple[str, ...] = ()


def _is_allowed_jwks_url(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    # Plain http only on loopback, for tests and local development.
    return parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}


def _string_tuple(value: object, where: str, *, allow_str: bool = False) -> tuple[str, ...]:
    if allow_str and isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ClientsFileError(f"{where}: expected a list of non-empty strings")
    return tuple(value)


def public_keys(jwks: object, where: str) -> dict[str, Key]:
    """Import a JWK Set's public signing keys by ``kid``; raise on anything unusable."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ClientsFileError(f'{where}: expected {{"keys": [...]}} with at least one key')
    keys: dict[str, Key] = {}
    for index, entry in enumerate(jwks["keys"]):
        at = f"{where}.keys[{index}]"
        if not isinstance(entry, dict):
            raise ClientsFileError(f"{at}: expected an object")
        if _PRIVATE_MEMBERS & entry.keys():
            raise ClientsFileError(
                f"{at}: holds private or symmetric key material; list public keys"
            )
        key = import_public_key(entry)
        if key is None:
            raise ClientsFileError(f"{at}: not an EC or RSA signing key with a kid")
        if key.kid in keys:
            raise ClientsFileError(f"{at}: duplicate kid")
        keys[str(key.kid)] = key
    return keys


def import_public_key(entry: dict[str, Any]) -> Key | None:
    """Import one public EC or RSA signing JWK with a string ``kid``, or None."""
    if entry.get("kty") not in {"EC", "RSA"} or entry.get("use", "sig") != "sig":
        return None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid:
        return None
    public = {k: v for k, v in entry.items() if k not in _PRIVATE_MEMBERS}
    try:
        key = import_key(public)
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    return key if isinstance(key, ECKey | RSAKey) else None


def _parse_client(raw: object, where: str) -> TrustedClient:
    if not isinstance(raw, dict):
        raise ClientsFileError(f"{where}: expected an object")
    iss = raw.get("iss")
    if not isinstance(iss, str) or not iss:
        raise ClientsFileError(f"{where}.iss: required non-empty string")
    jwks_url = raw.get("jwks_url")
    if jwks_url is not None and (
        not isinstance(jwks_url, str) or not _is_allowed_jwks_url(jwks_url)
    ):
        raise ClientsFileError(f"{where}.jwks_url: must be an https URL (http only on loopback)")
    jwks = raw.get("jwks")
    if jwks is None and jwks_url is None:
        raise ClientsFileError(f"{where}: needs jwks_url or jwks")
    if jwks is not None:
        public_keys(jwks, f"{where}.jwks")
    algorithms = _string_tuple(
        raw.get("algorithms", list(DEFAULT_ALGORITHMS)), f"{where}.algorithms"
    )
    for alg in algorithms:
        if alg.lower() == "none" or alg.upper().startswith("HS"):
            raise ClientsFileError(f"{where}.algorithms: {alg} is refused (none or symmetric)")
        if alg not in SUPPORTED_ALGORITHMS:
            raise ClientsFileError(f"{where}.algorithms: {alg} is not supported")
    if not algorithms:
        raise ClientsFileError(f"{where}.algorithms: empty")
    return TrustedClient(
        iss=iss,
        jwks_url=jwks_url,
        jwks=jwks,
        algorithms=algorithms,
        tenants=_string_tuple(raw.get("tenants", []), f"{where}.tenants"),
        audience=_string_tuple(raw.get("audience", []), f"{where}.audience", allow_str=True),
    )


def load_clients(path: Path) -> tuple[TrustedClient, ...]:
    """Read the trusted-client registry from a ``.json`` or ``.toml`` file.

    Shape: ``{"clients": [{"iss", "jwks_url" and/or "jwks", "algorithms"?, "tenants"?,
    "audience"?}]}``; other keys are ignored. Raises :class:`ClientsFileError` (a ValueError)
    naming the offending entry, never echoing key material.
    """
    suffix = path.suffix.lower()
    if suffix not in {".json", ".toml"}:
        raise ClientsFileError(f"clients file {path.name}: expected a .json or .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ClientsFileError(f"clients file {path.name}: cannot be read") from error
    try:
        data: object = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError):
        # from None: the decoder's message can quote the file's content.
        raise ClientsFileError(
            f"clients file {path.name}: not valid {suffix[1:].upper()}"
        ) from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("clients"), list)
        or not data["clients"]
    ):
        raise ClientsFileError(f'clients file {path.name}: expected a non-empty "clients" list')
    clients = tuple(_parse_client(raw, f"clients[{i}]") for i, raw in enumerate(data["clients"]))
    issuers = [client.iss for client in clients]
    if len(set(issuers)) != len(issuers):
        raise ClientsFileError(f"clients file {path.name}: an iss is listed twice")
    for client in clients:
        if client.iss.rstrip("/") == SANDBOX_ISSUER:
            logger.warning("sandbox issuer trusted: its key is public", extra={"iss": client.iss})
    return clients
