"""Prometheus metrics: one registry per app (no module-global state), rendered at ``/metrics``."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
_TPS_BUCKETS = (1, 5, 10, 20, 40, 60, 80, 100, 150, 200, 500, 1000)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # python_gc_*: collections per generation, what they found (a served process tunes them: collector.py)
        GCCollector(registry=r)
        self.tasks = Counter("a2a_tasks", "Tasks by skill and final state", ["skill", "state"], registry=r)
        self.active = Gauge("a2a_tasks_active", "Tasks currently running a skill", registry=r)
        self.streams = Gauge("a2a_streams_open", "Open SSE streams", registry=r)
        self.events = Counter("a2a_events_published", "Task events published to the log and the bus", registry=r)
        self.tokens = Counter("a2a_tokens_generated", "Token chunks streamed by skills", ["skill"], registry=r)
        self.ttft = Histogram(
            "a2a_time_to_first_token_seconds",
            "From submit to the first token",
            ["skill"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.tps = Histogram(
            "a2a_tokens_per_second", "Token rate of finished runs", ["skill"], buckets=_TPS_BUCKETS, registry=r
        )
        self.latency = Histogram(
            "a2a_request_duration_seconds",
            "JSON-RPC handling time by method (streams: until the stream opens)",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("a2a_queue_depth", "Tasks waiting for a skill's capacity", ["skill"], registry=r)
        self._queue_probes: dict[str, Callable[[], int]] = {}
        # money in base units; a float counter is exact up to 2^53 per series, beyond that it is a trend only
        self.cost = Counter("a2a_cost", "Cost of finished runs in base units, by model", ["model"], registry=r)

        # push notifications: every webhook call by outcome (delivered, retry, gave_up)
        self.push_attempts = Counter(
            "a2a_push_attempts", "Webhook calls by outcome (delivered, retry, gave_up)", ["outcome"], registry=r
        )

        # callers (http/auth.py, limits.py): refusals by reason (missing_key, invalid_key, missing_scope,
        # rate_limited, too_many_streams, too_many_tasks, too_many_parts, …); never a key, never a principal
        self.refusals = Counter(
            "a2a_refusals", "Requests refused by auth or a limit, by reason", ["reason"], registry=r
        )

    # labels() looks the child up under a lock on every call; the hot paths keep their children
    @functools.cache  # noqa: B019 - one Metrics per app, a handful of skills and methods
    def token_counter(self, skill: str) -> Counter:
        return self.tokens.labels(skill)

    @functools.cache  # noqa: B019
    def task_counter(self, skill: str, state: str) -> Counter:
        return self.tasks.labels(skill, state)

    @functools.cache  # noqa: B019
    def ttft_histogram(self, skill: str) -> Histogram:
        return self.ttft.labels(skill)

    @functools.cache  # noqa: B019
    def latency_histogram(self, method: str) -> Histogram:
        return self.latency.labels(method)

    def count_cost(self, metadata: Mapping[str, Any]) -> None:
        """Add a final status's ``usage.cost`` (a decimal string) to ``a2a_cost_total{model}``."""
        usage = metadata.get("usage")
        cost = usage.get("cost") if isinstance(usage, Mapping) else None
        if isinstance(cost, str) and cost.isdigit():
            model = metadata.get("model")
            self.cost.labels(model if isinstance(model, str) else "").inc(int(cost))

    def probe_queue(self, skill: str, depth: Callable[[], int]) -> None:
        self._queue_probes[skill] = depth

    def render(self) -> bytes:
        for skill, depth in self._queue_probes.items():
            self.queue_depth.labels(skill).set(depth())
        return generate_latest(self.registry)


class RunClock:
    """Times one run for the token histograms."""

    __slots__ = ("first_token", "started", "tokens")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first_token: float | None = None
        self.tokens = 0

    def token(self) -> float | None:
        """Count a token; the time to first token (seconds) on the first one, else None."""
        self.tokens += 1
        if self.first_token is None:
            self.first_token = time.perf_counter()
            return self.first_token - self.started
        return None

    def rate(self) -> float | None:
        if self.first_token is None or self.tokens < 2:
            return None
        elapsed = time.perf_counter() - self.first_token
        return (self.tokens - 1) / elapsed if elapsed > 0 else None
