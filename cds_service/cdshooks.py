"""CDS Hooks 2.0 wire models (https://cds-hooks.hl7.org/2.0/): requests in, cards out.

Inbound models ignore unknown fields (EHRs add extensions; later hook versions add context).
Outbound models forbid extras and are serialised with ``exclude_none``; empty lists are
never set (``Card`` fields default to None), so the JSON has no null or empty values except
``"cards": []``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

# CDS Hooks 2.0 "Prefetch tokens": {{context.<field>}} plus the four user tokens, each mapped to
# the resource type that ``context.userId`` must carry for the token to resolve.
PREFETCH_TOKEN = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}

# ---------------------------------------------------------------------------------------------
# Inbound

# Length limits on id-like fields: what real clients send is far shorter (UUIDs are 36
# characters); a limit keeps a hostile value out of logs, storage and responses. Longer is 400.
ID_MAX = 128  # hookInstance, feedback card and suggestion ids
HOOK_MAX = 64
URL_MAX = 2048
TOKEN_MAX = 16_384  # an access token (a JWT with many scopes is a few KB)


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)


class FHIRAuthorization(_Inbound):
    """``fhirAuthorization``: the token is transient and never logged or stored."""

    access_token: str = Field(min_length=1, max_length=TOKEN_MAX, repr=False)
    token_type: str
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None

    @field_validator("token_type")
    @classmethod
    def _bearer_only(cls, value: str) -> str:
        # OAuth token types are case-insensitive (RFC 6749 section 5.1).
        if value.lower() != "bearer":
            raise ValueError("token_type must be Bearer")
        return "Bearer"


class CDSRequest(_Inbound):
    """A hook invocation (CDS Hooks 2.0, "Calling a CDS Service")."""

    hook: str = Field(min_length=1, max_length=HOOK_MAX)
    hookInstance: str = Field(min_length=1, max_length=ID_MAX)  # spec spelling kept on wire fields
    fhirServer: str | None = Field(default=None, max_length=URL_MAX)
    fhirAuthorization: FHIRAuthorization | None = None
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_required_with_token(self) -> CDSRequest:
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("fhirServer is required when fhirAuthorization is present")
        return self


class OverrideReasonIn(_Inbound):
    reason: CodingIn | None = None
    userComment: str | None = None


class CodingIn(_Inbound):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class AcceptedSuggestion(_Inbound):
    id: str = Field(min_length=1, max_length=ID_MAX)


class FeedbackEntry(_Inbound):
    card: str = Field(min_length=1, max_length=ID_MAX)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReasonIn | None = None
    outcomeTimestamp: str

    @model_validator(mode="after")
    def _accepted_needs_suggestions(self) -> FeedbackEntry:
        if self.outcome == "accepted" and not self.acceptedSuggestions:
            raise ValueError("an accepted outcome needs acceptedSuggestions")
        return self


class FeedbackRequest(_Inbound):
    feedback: list[FeedbackEntry] = Field(min_length=1, max_length=1000)


OverrideReasonIn.model_rebuild()

# ---------------------------------------------------------------------------------------------
# Outbound


class _Outbound(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Coding(_Outbound):
    system: str
    code: str
    display: str | None = None


class Source(_Outbound):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(_Outbound):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: str | None = None


class Suggestion(_Outbound):
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_Outbound):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None
    autolaunchable: bool | None = None


class Card(_Outbound):
    uuid: str | None = None
    summary: str
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None
    extension: dict[str, Any] | None = None


class CDSResponse(_Outbound):
    cards: list[Card]
    systemActions: list[Action] | None = None
    extension: dict[str, Any] | None = None


class ServiceDescriptor(_Outbound):
    hook: str
    id: str
    title: str | None = None
    description: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None
    extension: dict[str, Any] | None = None


class Discovery(_Outbound):
    services: list[ServiceDescriptor]


def validation_paths(exc: ValidationError) -> str:
    """Field paths only: pydantic's messages would echo the input (tokens included)."""
    return describe_errors(exc.errors())


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """``invalid or missing fields: PATH[ (what)]...``: the path of each error, with what is wrong
    only where that cannot echo the input: a length limit (numbers from the model) or a rule of
    a whole-object validator of ours (its constant message, e.g. fhirServer needed with
    fhirAuthorization)."""
    parts = sorted({_describe(error) for error in errors})
    return "invalid or missing fields: " + ", ".join(parts)


def _describe(error: Mapping[str, Any]) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "body"
    ctx = error.get("ctx") or {}
    if error["type"] == "too_long" and "max_length" in ctx:
        return f"{path} (at most {ctx['max_length']} items)"
    if error["type"] == "too_short" and "min_length" in ctx:
        return f"{path} (at least {ctx['min_length']} items)"
    if (
        error["type"] == "value_error"
        and path == "body"
        and isinstance(ctx.get("error"), ValueError)
    ):
        return f"{path} ({ctx['error']})"
    return path


def dump(model: BaseModel) -> dict[str, Any]:
    """Serialise an outbound model: no None values; the model layer never sets empty lists."""
    return model.model_dump(mode="json", exclude_none=True)


class OperationOutcomeIssue(_Outbound):
    severity: Literal["fatal", "error", "warning", "information"]
    code: str
    details: dict[str, Any] | None = None
    diagnostics: str | None = None


class OperationOutcome(_Outbound):
    """The FHIR OperationOutcome body of every error response (documented in the OpenAPI)."""

    resourceType: Literal["OperationOutcome"]
    issue: list[OperationOutcomeIssue]
