"""FHIR fetch failures: the exception tree and the only words that may describe one.

Modelled on httpx's documented exception tree (encode/httpx:httpx/_exceptions.py). A message
holds the resource type and the HTTP status or failure kind, never the URL (it holds the
patient id), the response body or the token.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BAD_AUTH",
    "BAD_QUERY",
    "BUDGET",
    "CONNECTION",
    "INVALID",
    "LOG_MESSAGES",
    "NOT_ALLOWED",
    "OUTCOME",
    "TIMEOUT",
    "TOO_LARGE",
    "FHIRError",
    "FHIRNotAllowed",
    "FHIRRefused",
    "FHIRUnavailable",
]

# Failure kinds: the only words besides the resource type and status that reach a message or log.
TIMEOUT: Final = "timeout"
CONNECTION: Final = "connection error"
INVALID: Final = "invalid response"
OUTCOME: Final = "OperationOutcome"
BUDGET: Final = "budget exhausted"
NOT_ALLOWED: Final = "not allowed"
BAD_AUTH: Final = "invalid token"
BAD_QUERY: Final = "invalid query"
TOO_LARGE: Final = "response too large"

# One constant log message per kind (ruff G: no formatted log messages).
LOG_MESSAGES: Final = {
    TIMEOUT: "fhir fetch failed: timeout",
    CONNECTION: "fhir fetch failed: connection error",
    INVALID: "fhir fetch failed: invalid response",
    OUTCOME: "fhir fetch failed: OperationOutcome",
    BUDGET: "fhir fetch failed: budget exhausted",
    NOT_ALLOWED: "fhir fetch refused: server not allowed",
    BAD_AUTH: "fhir fetch refused: invalid token",
    BAD_QUERY: "fhir fetch refused: invalid query",
    TOO_LARGE: "fhir fetch failed: response too large",
    "status": "fhir fetch failed: http status",
}


class FHIRError(Exception):
    """A FHIR fetch failed. The message holds the resource type and the status or failure kind.

    Never the URL (it holds the patient id), the body or the token. ``status`` is the HTTP status
    when there was a response, else None; ``kind`` is one of the module's failure kinds or "status".
    """

    def __init__(self, resource_type: str, *, status: int | None = None, kind: str = "status"):
        self.resource_type = resource_type
        self.status = status
        self.kind = kind
        detail = str(status) if kind == "status" else kind
        super().__init__(f"{resource_type} fetch failed: {detail}")


class FHIRUnavailable(FHIRError):
    """Timeout, connection error, 5xx, a body that is not a FHIR resource or is over the byte
    cap, or no budget left."""


class FHIRRefused(FHIRError):
    """The server answered 3xx (redirects are not followed) or 4xx (401, 403, 404, ...)."""


class FHIRNotAllowed(FHIRError):
    """Nothing was sent: server not allow-listed, a token for http://, or an unsafe URL."""
