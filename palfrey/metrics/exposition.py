"""Render metrics in the Prometheus text format with prometheus_client's own types.

The only module that imports prometheus_client (an optional extra: `palfrey[metrics]`), and only in
the process that answers scrapes. Each scrape builds metric families from plain data (summed
snapshots, the master's counters) and renders them through a fresh `CollectorRegistry`: there is no
global registry and no client-library state, so forked workers inherit nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import exposition
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from palfrey.metrics.counters import DURATION_BOUNDS, HEALTH_BOUNDS
from palfrey.metrics.snapshot import MasterView, Totals, WorkerView

CONTENT_TYPE: str = getattr(exposition, "CONTENT_TYPE_PLAIN_0_0_4", exposition.CONTENT_TYPE_LATEST)

WORKER_STATES = ("booting", "ready", "draining", "stopping")
RESTART_REASONS = (
    "max-requests",
    "memory",
    "lifetime",
    "healthcheck",
    "boot-timeout",
    "crash",
    "hup",
    "reload",
)
SIGNALS = ("HUP", "TTIN", "TTOU", "USR1", "TERM", "INT", "QUIT", "CHLD")


def render(
    totals: Totals, gauges: dict[str, int], workers: list[WorkerView], master: MasterView | None
) -> bytes:
    """The text exposition of everything; `master` is None when palfrey runs as one process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(totals, gauges, workers, master))
    return exposition.generate_latest(registry)


class _Families:
    """A one-shot collector: prometheus_client calls `collect()` while rendering."""

    def __init__(
        self, totals: Totals, gauges: dict[str, int], workers: list[WorkerView], master: MasterView | None
    ) -> None:
        self.totals = totals
        self.gauges = gauges
        self.workers = workers
        self.master = master

    def collect(self) -> Iterator[Metric]:
        yield from _server(self.totals, self.gauges)
        yield from _workers(self.workers)
        if self.master is not None:
            yield from _master(self.master)


def _histogram(name: str, doc: str, bounds: tuple[float, ...], counts: list[int], total: float) -> Metric:
    family = HistogramMetricFamily(name, doc)
    cumulative, buckets = 0, []
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    family.add_metric([], buckets, total)
    return family


def _counter(name: str, doc: str, value: float) -> Metric:
    return CounterMetricFamily(name, doc, value=value)


def _server(totals: Totals, gauges: dict[str, int]) -> Iterator[Metric]:
    scalars = totals.scalars
    requests = CounterMetricFamily(
        "palfrey_requests", "HTTP requests answered, by method and status class.", labels=["method", "status"]
    )
    for method, counts in sorted(totals.requests.items()):
        for index, count in enumerate(counts):
            if count:
                requests.add_metric([method, f"{index}xx"], count)
    yield requests
    yield _histogram(
        "palfrey_request_duration_seconds",
        "Time from a request's head being parsed to its response being complete.",
        DURATION_BOUNDS,
        totals.duration,
        totals.duration_sum,
    )
    yield GaugeMetricFamily(
        "palfrey_requests_in_flight", "Requests being handled by the app now.", value=gauges["in_flight"]
    )
    open_connections = GaugeMetricFamily(
        "palfrey_open_connections", "Client connections open now.", labels=["protocol"]
    )
    open_connections.add_metric(["http"], gauges["open"])
    open_connections.add_metric(["websocket"], gauges["ws_open"])
    yield open_connections
    accepted = CounterMetricFamily("palfrey_connections", "Client connections opened.", labels=["protocol"])
    accepted.add_metric(["http"], scalars["connections"])
    accepted.add_metric(["websocket"], scalars["ws_connections"])
    yield accepted
    yield _counter(
        "palfrey_request_bytes", "Bytes received on HTTP connections (heads and bodies).", scalars["bytes_in"]
    )
    yield _counter("palfrey_response_body_bytes", "Response body bytes sent.", scalars["bytes_out"])
    yield _counter(
        "palfrey_app_exceptions",
        "Exceptions raised by the app while handling a request.",
        scalars["app_exceptions"],
    )
    errors = CounterMetricFamily(
        "palfrey_protocol_errors",
        "Requests refused before reaching the app (400, 408, 413, 414, 431, 501), by status and reason.",
        labels=["status", "reason"],
    )
    for (status, reason), count in sorted(totals.protocol_errors.items()):
        errors.add_metric([str(status), reason], count)
    yield errors
    yield _counter(
        "palfrey_concurrency_limit_responses",
        "Requests answered 503 because --limit-concurrency was reached.",
        scalars["limited"],
    )
    yield GaugeMetricFamily(
        "palfrey_wsgi_threads", "WSGI pool threads alive (every worker).", value=gauges.get("wsgi_threads", 0)
    )
    yield GaugeMetricFamily(
        "palfrey_wsgi_threads_busy", "WSGI pool threads running a request.", value=gauges.get("wsgi_busy", 0)
    )
    yield GaugeMetricFamily(
        "palfrey_wsgi_queued", "WSGI requests waiting for a free thread.", value=gauges.get("wsgi_queued", 0)
    )
    yield _counter(
        "palfrey_wsgi_threads_grown",
        "Threads the adaptive WSGI pool started because requests waited while its threads waited on I/O.",
        scalars.get("wsgi_grown", 0),
    )
    yield _counter(
        "palfrey_wsgi_queue_full_responses",
        "WSGI requests answered 503 because --threads-queue requests already waited.",
        scalars.get("wsgi_rejected", 0),
    )
    yield _counter(
        "palfrey_request_timeouts",
        "Requests answered 504 because the app did not start its response within --timeout-request.",
        scalars.get("request_timeouts", 0),
    )
    yield _counter(
        "palfrey_accept_exhausted",
        "Times accepting paused because the process ran out of file descriptors (or memory).",
        scalars.get("accept_exhausted", 0),
    )


def _workers(workers: list[WorkerView]) -> Iterator[Metric]:
    def family(
        kind: type[GaugeMetricFamily | CounterMetricFamily], name: str, doc: str, attribute: str
    ) -> Metric:
        metric = kind(name, doc, labels=["worker"])
        for worker in workers:
            value = getattr(worker, attribute)
            if value is not None:
                metric.add_metric([str(worker.slot)], value)
        return metric

    yield family(GaugeMetricFamily, "palfrey_worker_pid", "Process id of the worker in this slot.", "pid")
    yield family(
        GaugeMetricFamily, "palfrey_worker_resident_memory_bytes", "Resident memory of the worker.", "rss"
    )
    yield family(
        CounterMetricFamily, "palfrey_worker_cpu_seconds", "CPU time (user + system) of the worker.", "cpu"
    )
    yield family(
        CounterMetricFamily,
        "palfrey_worker_requests",
        "Requests served by the worker process now in this slot (resets when it is replaced).",
        "served",
    )
    yield family(GaugeMetricFamily, "palfrey_worker_age_seconds", "Seconds since the worker started.", "age")
    yield family(
        GaugeMetricFamily,
        "palfrey_worker_healthcheck_rtt_seconds",
        "Round trip of the worker's last health-check ping.",
        "healthcheck_rtt",
    )
    state = GaugeMetricFamily(
        "palfrey_worker_state",
        "1 for the state the worker is in, 0 for the others.",
        labels=["worker", "state"],
    )
    for worker in workers:
        for name in WORKER_STATES:
            state.add_metric([str(worker.slot), name], 1 if worker.state == name else 0)
    yield state


def _master(master: MasterView) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "palfrey_workers_desired", "Workers the master keeps (--workers, TTIN/TTOU).", value=master.desired
    )
    yield GaugeMetricFamily(
        "palfrey_workers_ready", "Workers ready and serving.", value=master.states.get("ready", 0)
    )
    processes = GaugeMetricFamily("palfrey_workers", "Worker processes by state.", labels=["state"])
    for name in WORKER_STATES:
        processes.add_metric([name], master.states.get(name, 0))
    yield processes
    restarts = CounterMetricFamily(
        "palfrey_worker_restarts", "Workers replaced, by reason.", labels=["reason"]
    )
    for reason in (*RESTART_REASONS, *sorted(set(master.restarts) - set(RESTART_REASONS))):
        restarts.add_metric([reason], master.restarts.get(reason, 0))
    yield restarts
    signals = CounterMetricFamily(
        "palfrey_master_signals", "Signals the master received, by name.", labels=["signal"]
    )
    for name in (*SIGNALS, *sorted(set(master.signals) - set(SIGNALS))):
        signals.add_metric([name], master.signals.get(name, 0))
    yield signals
    if not master.health_buckets:  # gunicorn's arbiter: no health checks, so no histogram at all
        return
    yield _histogram(
        "palfrey_healthcheck_duration_seconds",
        "Round trip of the master's health-check pings (answered by each worker's event loop).",
        HEALTH_BOUNDS,
        master.health_buckets,
        master.health_sum,
    )
