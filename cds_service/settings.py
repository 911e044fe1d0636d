"""Service configuration from ``CDS_`` environment variables (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# Secrets shipped in this repository (settings default, docker-compose, deploy/k8s placeholder):
# fine for a local trial with CDS_AUTH=off, refused by `cds-service serve` beside real callers.
PLACEHOLDER_SECRETS = frozenset({"dev-only-change-me", "local-only-not-a-secret"})


def is_placeholder_secret(value: str) -> bool:
    """A secret anyone can read in this repository, or one still asking to be changed."""
    return value in PLACEHOLDER_SECRETS or "change-me" in value.lower()


class Settings(BaseSettings):
    """Every setting of the service. Only main.py, __main__.py and api/ read this object."""

    model_config = SettingsConfigDict(
        env_prefix="CDS_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    # Content and storage
    hooks_dir: Path = Path(__file__).resolve().parent.parent / "hooks"
    database_url: SecretStr = SecretStr("sqlite:///./var/cds.db")
    migrate_on_start: bool = True
    patient_key_secret: SecretStr = SecretStr("dev-only-change-me")
    retention_days: int = Field(default=365, ge=1)
    store_user_comments: bool = False  # overrideReason.userComment is free text: may hold PHI
    card_queue_size: int = Field(default=10_000, ge=1)  # issued cards held while storage is down
    store_retry_max_s: float = Field(default=30.0, gt=0)  # longest wait between storage retries
    card_flush_interval_s: float = Field(default=0.2, gt=0)  # issued cards written this often

    # HTTP surface
    public_url: str | None = None  # e.g. https://cds.example.org (for JWT aud behind a proxy)
    cors_origins: CommaList = Field(default_factory=list)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Requests this large are handled large_body_slots at a time (api/large_bodies.py: memory).
    large_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    large_body_slots: int = Field(default=1, ge=1)
    # Resources read from one prefetch key; past it the key is cut and marked incomplete.
    prefetch_max_entries: int = Field(default=10_000, ge=1)
    max_json_depth: int = Field(default=64, ge=8)
    strict_response_check: bool = False  # tests: raise on an invalid card instead of logging it

    # Trust: JWT verification of EHR callers
    auth: Literal["required", "optional", "off"] = "required"
    clients_file: Path | None = None
    jwt_leeway_s: int = Field(default=60, ge=0)
    # exp at most this far ahead (plus the leeway): 300 per CDS Hooks 2.0; Epic's example: 900
    jwt_max_exp_ahead_s: int = Field(default=300, ge=1, le=3600)
    jwks_cache_ttl_s: int = Field(default=3600, ge=1)
    admin_token: SecretStr | None = None
    # Remembered (iss, jti) pairs per issuer; when one issuer fills its quota only its new tokens
    # are refused (fail closed), never another issuer's.
    replay_max_per_issuer: int = Field(default=100_000, ge=1)

    # Shared state of several replicas: JWT replay cache and snooze invalidation (api/redis.py)
    redis_url: SecretStr | None = None  # e.g. redis://redis:6379/0; may hold a password
    redis_key_prefix: str = Field(default="cds:", max_length=64)  # keys and pub/sub channel
    redis_timeout_s: float = Field(default=0.5, gt=0)  # connect and socket: a dead Redis is quick

    # Operational endpoints
    metrics_token: SecretStr | None = None  # bearer token for /metrics (open when unset)
    openapi: bool = False  # /openapi.json, /docs and /redoc (make run turns them on)

    # FHIR access
    fhir_servers: CommaList = Field(default_factory=list)  # allow-listed base URL prefixes
    allow_insecure_fhir: bool = False  # send a token to http:// only when true
    fhir_timeout_s: float = Field(default=0.8, gt=0)
    fhir_budget_s: float = Field(default=1.5, gt=0)
    fhir_page_size: int = Field(default=100, ge=1)  # _count of every search, unless it has one
    fhir_max_pages: int = Field(default=50, ge=1)  # x page size = max entries: entries bind
    fhir_max_entries: int = Field(default=5000, ge=1)
    fhir_max_concurrency: int = Field(default=16, ge=1)  # >= any service's prefetch keys
    # JSON read for one key (a read, or all pages of a search): past it reading stops
    fhir_max_response_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)

    # Clinical evaluation
    lookback_days: int | None = None  # overrides hooks/thresholds.toml when set

    # Try-it page at /preview (a small EHR in the browser): off in production; needs CDS_AUTH=off
    preview: bool = False
    preview_fixtures_dir: Path = Path(__file__).resolve().parent.parent / "fixtures"

    # Runtime
    log_level: str = "INFO"
    workers: int = Field(default=1, ge=1)

    _split = field_validator("cors_origins", "fhir_servers", mode="before")(_split_commas)

    @field_validator(
        "public_url",
        "clients_file",
        "admin_token",
        "redis_url",
        "metrics_token",
        "lookback_days",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`CDS_REDIS_URL=` (an empty value, as templates and compose files leave them) means
        unset, not an address or a file named ""."""
        return None if isinstance(value, str) and not value.strip() else value


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
