"""Every series the gateway and the worker define follows Prometheus conventions and carries only
low-cardinality labels: never a room, session, identity or key."""

from __future__ import annotations

import re

import pytest
from prometheus_client import REGISTRY, Counter, Gauge, Histogram

import agent_worker.metrics as worker_metrics
import voice_gateway.metrics as gateway_metrics

pytestmark = pytest.mark.unit

ALLOWED_LABELS = {
    "method", "route", "status", "agent", "channel", "reason", "stage", "call", "error",
    "event", "outcome", "rule", "limit", "engine", "recoverable", "api",
}  # fmt: skip
NAME = re.compile(r"^voicegw_[a-z][a-z0-9_]*$")


def defined() -> list[Counter | Gauge | Histogram]:
    return [
        m
        for module in (gateway_metrics, worker_metrics)
        for m in vars(module).values()
        if isinstance(m, Counter | Gauge | Histogram)
    ]


def test_names_units_and_labels() -> None:
    metrics = defined()
    assert len(metrics) >= 17
    for m in metrics:
        name = m._name
        assert NAME.match(name), name
        assert m._documentation, name
        assert set(m._labelnames) <= ALLOWED_LABELS, (name, m._labelnames)
        if isinstance(m, Histogram):
            assert name.endswith("_seconds"), name
        if isinstance(m, Gauge):
            assert not name.endswith("_total"), name


def test_counters_are_exposed_with_total() -> None:
    gateway_metrics.HTTP_REQUESTS.labels("GET", "/healthz", "200").inc(0)
    exposed = {s.name for family in REGISTRY.collect() for s in family.samples}
    assert "voicegw_http_requests_total" in exposed
    assert "voicegw_http_requests" not in exposed
