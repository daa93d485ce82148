"""Prometheus metrics: requests, transitions, open waits by reason, lease backlog."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine import Engine
from ..engine.transitions import EVENTS_COMMITTED


class StoreCollector(Collector):
    """Read at scrape time: backlogs come from the store, so every replica reports the truth."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        transitions = CounterMetricFamily(
            "tether_transitions", "Events (intent changes) committed by this process"
        )
        transitions.add_metric([], EVENTS_COMMITTED.value)
        yield transitions
        waits = GaugeMetricFamily("tether_open_waits", "Open waits by kind", labels=["kind"])
        leases = GaugeMetricFamily(
            "tether_lease_backlog", "Runnable intents no worker holds a live lease on"
        )
        timers = GaugeMetricFamily("tether_timers_pending", "Timers not yet fired")
        counts = self.engine.backlog()
        for kind in ("human", "tool", "agent", "time"):
            waits.add_metric([kind], counts.get(f"wait:{kind}", 0))
        leases.add_metric([], counts.get("runnable", 0))
        timers.add_metric([], counts.get("timers", 0))
        yield waits
        yield leases
        yield timers


class Metrics:
    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tether_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tether_http_request_seconds", "HTTP request latency", ["method", "route"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30, 60),
        )  # fmt: skip
        self.registry.register(StoreCollector(engine))


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # the labelled children, once per label set (``labels()`` validates and locks on
        # every call); never removed, as prometheus_client never removes them either
        self._counted: dict[tuple[str, str, int], Counter] = {}
        self._timed: dict[tuple[str, str], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope["method"]
            counted = self._counted.get((method, path, status))
            if counted is None:
                counted = self.metrics.requests.labels(method, path, str(status))
                self._counted[method, path, status] = counted
            counted.inc()
            timed = self._timed.get((method, path))
            if timed is None:
                timed = self._timed[method, path] = self.metrics.latency.labels(method, path)
            timed.observe(elapsed)
