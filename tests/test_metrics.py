"""Prometheus metrics: exposition format, names and label safety."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from cds_service.metrics import LATENCY_BUCKETS, Metrics, prepare_multiprocess_dir

CANARIES = (
    "PHI-CANARY-PATIENT-7731",
    "Patient/123",
    "http://fhir.example.org/Patient?patient=123",
    "Jane Doe",
    "1970-01-01",
    "38265-5 T-score -2.6",
    "a" * 200,
    "",
)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _exercise(metrics: Metrics) -> None:
    metrics.observe_call("glucocorticoid-safety", "patient-view", 200, 0.004)
    metrics.observe_card("bone-health", "warning")
    metrics.observe_prefetch_key("provided", 3)
    metrics.observe_prefetch_key("fetched")
    metrics.observe_fhir_error("timeout")
    metrics.observe_jwt_rejection("expired")
    metrics.observe_rule_error("gc-dxa-due")
    metrics.observe_feedback("overridden")
    metrics.observe_prefetch_skipped("Observation", 2)
    metrics.observe_prefetch_unbound("Condition", "foreign-patient", 3)
    metrics.observe_response_violation()
    metrics.observe_store_error()


def test_render_exposition_format(metrics: Metrics) -> None:
    _exercise(metrics)
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain; version=")
    samples = _samples(metrics)
    calls = (
        "cds_calls_total",
        (("hook", "patient-view"), ("service", "glucocorticoid-safety"), ("status", "200")),
    )
    assert samples[calls] == 1.0
    assert samples[("cds_cards_total", (("indicator", "warning"), ("topic", "bone-health")))] == 1
    assert samples[("cds_prefetch_keys_total", (("source", "provided"),))] == 3
    assert samples[("cds_prefetch_keys_total", (("source", "fetched"),))] == 1
    assert samples[("cds_fhir_errors_total", (("kind", "timeout"),))] == 1
    assert samples[("cds_jwt_rejections_total", (("reason", "expired"),))] == 1
    assert samples[("cds_rule_errors_total", (("rule_id", "gc-dxa-due"),))] == 1
    assert samples[("cds_feedback_total", (("outcome", "overridden"),))] == 1
    skipped = ("cds_prefetch_entries_skipped_total", (("resource_type", "Observation"),))
    assert samples[skipped] == 2
    unbound = (
        "cds_prefetch_entries_unbound_total",
        (("reason", "foreign-patient"), ("resource_type", "Condition")),
    )
    assert samples[unbound] == 3
    assert samples[("cds_response_check_violations_total", ())] == 1
    assert samples[("cds_store_errors_total", ())] == 1
    # 4 ms lands in the 5 ms bucket but not the 2.5 ms one.
    lat = (("hook", "patient-view"), ("service", "glucocorticoid-safety"))
    assert (
        samples[("cds_request_duration_seconds_bucket", (*lat[:1], ("le", "0.0025"), *lat[1:]))]
        == 0
    )
    assert (
        samples[("cds_request_duration_seconds_bucket", (*lat[:1], ("le", "0.005"), *lat[1:]))] == 1
    )
    assert samples[("cds_request_duration_seconds_count", lat)] == 1
    assert b"# HELP cds_calls_total" in body


def test_every_metric_is_prefixed_cds(metrics: Metrics) -> None:
    _exercise(metrics)
    body, _ = metrics.render()
    families = text_string_to_metric_families(body.decode())
    names = {family.name for family in families if not family.name.endswith("_created")}
    assert len(names) == 12
    assert all(name.startswith("cds_") for name in names)


def test_latency_buckets_span_1ms_to_2s() -> None:
    assert LATENCY_BUCKETS[0] == 0.001
    assert LATENCY_BUCKETS[-1] == 2.0
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)


def test_registries_are_independent() -> None:
    first, second = Metrics(CollectorRegistry()), Metrics(CollectorRegistry())
    first.observe_store_error()
    assert _samples(first)[("cds_store_errors_total", ())] == 1
    assert _samples(second)[("cds_store_errors_total", ())] == 0


@pytest.mark.parametrize("canary", CANARIES)
def test_patient_data_never_becomes_a_label(metrics: Metrics, canary: str) -> None:
    metrics.observe_call(canary, canary, 200, 0.01)
    metrics.observe_card(canary, canary)
    metrics.observe_fhir_error(canary)
    metrics.observe_jwt_rejection(canary)
    metrics.observe_rule_error(canary)
    metrics.observe_feedback(canary)
    metrics.observe_prefetch_skipped(canary)
    metrics.observe_prefetch_unbound(canary, canary)
    metrics.observe_prefetch_key(canary)  # type: ignore[arg-type]
    samples = _samples(metrics)
    label_values = {value for _, labels in samples for _, value in labels}
    assert canary not in label_values
    body, _ = metrics.render()
    if canary:
        assert canary.encode() not in body
    assert samples[("cds_rule_errors_total", (("rule_id", "other"),))] == 1


def test_restrict_ids_limits_content_labels(metrics: Metrics) -> None:
    metrics.restrict_ids({"glucocorticoid-safety", "patient-view", "bone-health"})
    # A lower-case slug that looks like an id but is not in the catalog (e.g. from a URL path).
    metrics.observe_call("pt-egfr-low", "patient-view", 404, 0.001)
    metrics.observe_card("bone-health", "info")
    metrics.observe_card("phi-canary-patient-7731", "info")
    samples = _samples(metrics)
    assert (
        samples[
            ("cds_calls_total", (("hook", "patient-view"), ("service", "other"), ("status", "404")))
        ]
        == 1
    )
    assert samples[("cds_cards_total", (("indicator", "info"), ("topic", "bone-health")))] == 1
    assert samples[("cds_cards_total", (("indicator", "info"), ("topic", "other")))] == 1


def test_reason_phrases_become_slugs(metrics: Metrics) -> None:
    metrics.observe_jwt_rejection("unknown kid")
    assert _samples(metrics)[("cds_jwt_rejections_total", (("reason", "unknown-kid"),))] == 1


def test_bad_status_and_negative_time(metrics: Metrics) -> None:
    metrics.observe_call("glucocorticoid-safety", "patient-view", 9999, -1.0)
    samples = _samples(metrics)
    key = (("hook", "patient-view"), ("service", "glucocorticoid-safety"))
    assert samples[("cds_calls_total", (*key, ("status", "other")))] == 1
    assert samples[("cds_request_duration_seconds_sum", key)] == 0


def test_multiprocess_mode_merges_workers(tmp_path: Path) -> None:
    # prometheus_client picks its value class at import, so this runs in fresh interpreters.
    mpdir = tmp_path / "prom"
    prepare_multiprocess_dir(mpdir)
    (mpdir / "counter_999999.db").write_bytes(b"")  # a stale file from an earlier run...
    prepare_multiprocess_dir(mpdir)  # ...is removed
    assert list(mpdir.iterdir()) == []
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mpdir)}
    worker = textwrap.dedent(
        """
        from cds_service.metrics import Metrics
        Metrics().observe_call("glucocorticoid-safety", "patient-view", 200, 0.01)
        """
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=60)  # noqa: S603
    render = textwrap.dedent(
        """
        import sys
        from cds_service.metrics import Metrics
        body, _ = Metrics().render()
        sys.stdout.write(body.decode())
        """
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", render], env=env, check=True, timeout=60, capture_output=True
    ).stdout.decode()
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(out)
        for sample in family.samples
        if sample.name in {"cds_calls_total", "cds_request_duration_seconds_count"}
    }
    assert values == {"cds_calls_total": 2.0, "cds_request_duration_seconds_count": 2.0}


def test_multiprocess_dir_is_created_when_missing(tmp_path: Path) -> None:
    mpdir = tmp_path / "not" / "there"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mpdir)}
    code = "from cds_service.metrics import Metrics; Metrics().observe_store_error()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)  # noqa: S603
    assert any(mpdir.glob("counter_*.db"))
