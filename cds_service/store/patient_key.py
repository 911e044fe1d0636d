"""Keyed hash that links one patient's records without storing the patient id."""

from __future__ import annotations

import hashlib
import hmac


def normalise_fhir_server(fhir_server: str | None) -> str:
    """``fhirServer`` without one trailing "/" and with scheme and host in lower case.

    The path keeps its case (FHIR base paths can be case-sensitive). None gives "".
    """
    if not fhir_server:
        return ""
    server = fhir_server
    if server.endswith("/"):
        server = server[:-1]
    scheme, sep, rest = server.partition("://")
    if not sep:
        return server
    authority, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{authority.lower()}{slash}{path}"


def patient_key(secret: str, fhir_server: str | None, patient_id: str) -> str:
    """HMAC-SHA256 (hex, 64 chars) of normalised ``fhir_server`` + "|" + ``patient_id``.

    The same patient on the same FHIR server always gets the same key; without ``secret`` the
    key cannot be linked back to the id. Raises ValueError when ``secret`` or ``patient_id`` is
    empty (the message holds neither).
    """
    if not secret:
        raise ValueError("patient key secret is empty")
    if not patient_id:
        raise ValueError("patient id is empty")
    message = f"{normalise_fhir_server(fhir_server)}|{patient_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
