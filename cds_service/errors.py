"""Error tree and its FHIR OperationOutcome rendering; messages never carry patient data."""

from __future__ import annotations

from typing import Any, ClassVar


class CDSError(Exception):
    """Base of every error the service reports to a client.

    ``detail`` is sent to the EHR, so it must never contain patient data, tokens or URLs.
    ``code`` is a stable slug (never reused for another meaning).
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    issue_type: ClassVar[str] = "exception"  # FHIR IssueType

    def __init__(self, detail: str = "internal error") -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRequest(CDSError):
    status, code, issue_type = 400, "invalid-request", "invalid"


class Unauthorized(CDSError):
    status, code, issue_type = 401, "unauthorized", "login"

    def __init__(self, detail: str = "authentication required") -> None:
        super().__init__(detail)


class UnknownService(CDSError):
    status, code, issue_type = 404, "unknown-service", "not-found"


class MethodNotAllowed(CDSError):
    status, code, issue_type = 405, "method-not-allowed", "not-supported"


class BodyTooLarge(CDSError):
    status, code, issue_type = 413, "body-too-large", "too-costly"


class UnsupportedMediaType(CDSError):
    status, code, issue_type = 415, "unsupported-media-type", "not-supported"


class MissingData(CDSError):
    """Data a rule needs could be neither prefetched nor fetched (CDS Hooks: HTTP 412)."""

    status, code, issue_type = 412, "missing-data", "processing"

    def __init__(self, keys: list[str]) -> None:
        self.keys = sorted(keys)
        super().__init__("required data could not be obtained: " + ", ".join(self.keys))


class StorageUnavailable(CDSError):
    """The feedback store is down; the client may retry after ``retry_after_s`` seconds
    (sent as ``Retry-After``). Hook calls never raise it: only feedback and statistics need the
    database."""

    status, code, issue_type = 503, "storage-unavailable", "transient"

    def __init__(
        self, retry_after_s: int, detail: str = "feedback storage is unavailable; retry later"
    ) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ReplayCacheUnavailable(CDSError):
    """The shared JWT replay cache (Redis) does not answer: a token cannot be checked for reuse,
    so the call is refused (fail closed) rather than risk accepting a replay. Transient: the EHR
    may retry after ``retry_after_s`` seconds."""

    status, code, issue_type = 503, "replay-cache-unavailable", "transient"

    def __init__(self, retry_after_s: int = 1) -> None:
        super().__init__("replay cache unavailable; retry later")
        self.retry_after_s = retry_after_s


class ContentError(Exception):
    """The clinical content in hooks/ is invalid; raised at load time, never during a request."""


def operation_outcome(error: CDSError) -> dict[str, Any]:
    """Render ``error`` as a FHIR R4 OperationOutcome body."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": error.issue_type,
                "details": {"coding": [{"code": error.code}], "text": error.detail},
                "diagnostics": error.detail,
            }
        ],
    }
