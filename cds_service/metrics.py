"""Prometheus metrics (``cds_*``) with label values that can never carry patient data.

Every label value is either a member of a small fixed set (prefetch source, card indicator, HTTP
status) or a slug chosen by our code or by the content in ``hooks/`` (service id, hook name, rule
id, topic, error kind, FHIR resource type). Values are checked here, not trusted: anything that
does not look like such a slug is counted as ``other``. Never pass ids, names, dates, codes from the
record, URLs or free text. ``restrict_ids`` narrows the content-id labels to the loaded catalog, so
a caller-chosen string (an unknown service id in a URL) cannot add a time series.

With ``--workers N`` the CLI sets ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the
workers start; prometheus_client then keeps values in per-process files there and ``render``
merges them (https://prometheus.github.io/client_python/multiprocess/).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, Generic, Literal, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
OTHER: Final = "other"

# Latency buckets in seconds: 1 ms (small request, nothing fetched) to 2 s (FHIR budget exceeded).
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
)

PrefetchSource = Literal["provided", "fetched", "missing", "null"]
PREFETCH_SOURCES: Final = frozenset({"provided", "fetched", "missing", "null"})
# Why an entry is not the context patient's (patient_binding.py verdicts).
UNBOUND_REASONS: Final = frozenset({"foreign-patient", "unbound"})
# CDS Hooks card indicators (spec: "Card Attributes").
INDICATORS: Final = frozenset({"info", "warning", "critical"})

# kebab/snake slugs as used for service ids, hooks, rule ids, topics and error kinds.
_SLUG = re.compile(r"[a-z][a-z0-9._-]{0,63}")
# FHIR resource type names: ``Observation``, ``MedicationRequest``.
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")


def _slug(value: str, allowed: frozenset[str] | None = None) -> str:
    if allowed is not None:
        return value if value in allowed else OTHER
    # Reasons are constant strings in code ("unknown kid"); spaces become hyphens, case is kept,
    # so a capitalised name still fails the pattern.
    value = value.replace(" ", "-")
    return value if _SLUG.fullmatch(value) else OTHER


def _member(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else OTHER


C = TypeVar("C", Counter, Histogram)


class LabelledChildren(Generic[C]):
    """The children of one labelled metric, looked up once per label tuple.

    ``metric.labels(...)`` checks and joins the values on every call; the hook route counts
    several series per call. Keys are label values already reduced to their allowed sets
    (``_id``, ``_member``), so this holds no more entries than the metric has series.
    """

    def __init__(self, metric: C) -> None:
        self.metric: C = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> C:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.metric.labels(*labels)
        return child


def multiprocess_dir() -> Path | None:
    """The multiprocess directory when prometheus_client runs in multiprocess mode, else None."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def prepare_multiprocess_dir(path: Path) -> None:
    """Create ``path`` empty, for ``PROMETHEUS_MULTIPROC_DIR`` before the workers start.

    Files left by an earlier run would be merged into the new one's counters.
    """
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def mark_process_dead(pid: int) -> None:
    """Tell prometheus_client a worker has exited (only needed for live-sum gauges; harmless)."""
    if multiprocess_dir() is not None:
        prom_multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class Metrics:
    """The service's metrics, registered in one ``CollectorRegistry``.

    Tests pass their own registry; the app builds one ``Metrics`` per process.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        mpdir = multiprocess_dir()
        if mpdir is not None:
            # prometheus_client opens its per-process files there as soon as a metric exists.
            mpdir.mkdir(parents=True, exist_ok=True)
        self._known_ids: frozenset[str] | None = None
        reg = self.registry
        self.calls = Counter(
            "cds_calls",
            "CDS Hooks service calls by service, hook and HTTP status.",
            ["service", "hook", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "cds_request_duration_seconds",
            "Time to answer a CDS Hooks service call, in seconds.",
            ["service", "hook"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.cards = Counter(
            "cds_cards",
            "Cards returned, by topic and indicator.",
            ["topic", "indicator"],
            registry=reg,
        )
        self.prefetch_keys = Counter(
            "cds_prefetch_keys",
            "Prefetch keys by where the data came from: provided by the EHR, fetched from FHIR, "
            "missing (could not be had) or null (EHR has no data).",
            ["source"],
            registry=reg,
        )
        self.fhir_errors = Counter(
            "cds_fhir_errors",
            "Failed FHIR requests by kind (timeout, unavailable, refused, ...).",
            ["kind"],
            registry=reg,
        )
        self.jwt_rejections = Counter(
            "cds_jwt_rejections",
            "Rejected EHR JWTs by reason.",
            ["reason"],
            registry=reg,
        )
        self.rule_errors = Counter(
            "cds_rule_errors",
            "Rules that raised during evaluation, by rule id.",
            ["rule_id"],
            registry=reg,
        )
        self.feedback = Counter(
            "cds_feedback",
            "Card feedback received, by outcome.",
            ["outcome"],
            registry=reg,
        )
        self.prefetch_skipped = Counter(
            "cds_prefetch_entries_skipped",
            "Prefetch entries that failed R4B validation and were skipped, by resource type.",
            ["resource_type"],
            registry=reg,
        )
        self.prefetch_unbound = Counter(
            "cds_prefetch_entries_unbound",
            "Prefetch entries dropped as not the context patient's, by resource type and reason: "
            "foreign-patient (another patient's) or unbound (no provable patient link). A prefetch "
            "key holding another patient's Patient counts once, as resource type Patient.",
            ["resource_type", "reason"],
            registry=reg,
        )
        self.response_violations = Counter(
            "cds_response_check_violations",
            "Responses that failed the outgoing self-check (card schema).",
            registry=reg,
        )
        self.store_errors = Counter(
            "cds_store_errors",
            "Errors writing to or reading from the feedback store.",
            registry=reg,
        )

        self._calls = LabelledChildren(self.calls)
        self._latency = LabelledChildren(self.latency)
        self._cards = LabelledChildren(self.cards)
        self._prefetch_keys = LabelledChildren(self.prefetch_keys)

    def restrict_ids(self, ids: Iterable[str]) -> None:
        """Allow only these content ids (services, hooks, rules, topics) as label values.

        Call once the catalog is loaded; other values are then counted as ``other``.
        """
        self._known_ids = frozenset(ids)

    def _id(self, value: str) -> str:
        return _slug(value, self._known_ids)

    def observe_call(self, service: str, hook: str, status: int, seconds: float) -> None:
        """Count one service call and record its latency (``status`` is the HTTP status)."""
        service, hook = self._id(service), self._id(hook)
        status_label = str(status) if 100 <= status <= 599 else OTHER
        self._calls(service, hook, status_label).inc()
        self._latency(service, hook).observe(max(seconds, 0.0))

    def observe_card(self, topic: str, indicator: str) -> None:
        """Count one returned card (``indicator`` is info, warning or critical)."""
        self._cards(self._id(topic), _member(indicator, INDICATORS)).inc()

    def observe_prefetch_key(self, source: PrefetchSource, count: int = 1) -> None:
        """Count prefetch keys by source: provided, fetched, missing or null."""
        if count > 0:
            self._prefetch_keys(_member(source, PREFETCH_SOURCES)).inc(count)

    def observe_fhir_error(self, kind: str) -> None:
        """Count one failed FHIR request; ``kind`` is a slug such as ``timeout`` or ``status-5xx``."""
        self.fhir_errors.labels(_slug(kind)).inc()

    def observe_jwt_rejection(self, reason: str) -> None:
        """Count one rejected JWT; ``reason`` is a slug such as ``expired`` or ``unknown-issuer``."""
        self.jwt_rejections.labels(_slug(reason)).inc()

    def observe_rule_error(self, rule_id: str) -> None:
        """Count one rule that raised (rule ids come from ``hooks/``)."""
        self.rule_errors.labels(self._id(rule_id)).inc()

    def observe_feedback(self, outcome: str) -> None:
        """Count one feedback item; ``outcome`` is a slug such as ``accepted`` or ``overridden``."""
        self.feedback.labels(_slug(outcome)).inc()

    def observe_prefetch_skipped(self, resource_type: str, count: int = 1) -> None:
        """Count prefetch entries skipped because they failed validation."""
        if count > 0:
            label = resource_type if _RESOURCE_TYPE.fullmatch(resource_type) else OTHER
            self.prefetch_skipped.labels(label).inc(count)

    def observe_prefetch_unbound(self, resource_type: str, reason: str, count: int = 1) -> None:
        """Count prefetch entries dropped because they are not the context patient's."""
        if count > 0:
            label = resource_type if _RESOURCE_TYPE.fullmatch(resource_type) else OTHER
            self.prefetch_unbound.labels(label, _member(reason, UNBOUND_REASONS)).inc(count)

    def observe_response_violation(self) -> None:
        """Count one response that failed the outgoing self-check."""
        self.response_violations.inc()

    def observe_store_error(self) -> None:
        """Count one feedback-store error."""
        self.store_errors.inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type, merged across workers in multiprocess mode."""
        if multiprocess_dir() is not None:
            merged = CollectorRegistry()
            prom_multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
