"""Unit tests for the pure parts of palfrey.metrics: recorder, snapshots and their sum, rendering,
the bind address, the scrape router, worker slots and the control channel's long lines."""

from __future__ import annotations

import itertools
import re
import socket
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import palfrey.metrics
from palfrey.addresses import parse_bind
from palfrey.config import Config, ConfigError
from palfrey.metrics.counters import DURATION_BOUNDS, MAX_REASONS, Recorder, reason_label
from palfrey.metrics.endpoint import response, route
from palfrey.metrics.exposition import render
from palfrey.metrics.snapshot import Aggregate, MasterView, Totals, WorkerView, decode, encode, take
from palfrey.supervisor.channel import Channel
from palfrey.supervisor.handle import WorkerHandle


def _cycle(method: str = "GET", status: int = 200, sent: int = 5, elapsed: float = 0.001) -> Any:
    from time import perf_counter

    return SimpleNamespace(
        scope={"method": method}, status=status, sent=sent, start_time=perf_counter() - elapsed
    )


def _state(recorder: Recorder, requests: int = 0) -> Any:
    return SimpleNamespace(
        metrics=recorder, tasks={1, 2}, connections={1, 2, 3}, total_requests=requests, draining=False
    )


def test_recorder_counts_by_method_and_status_class() -> None:
    recorder = Recorder()
    for status in (200, 204, 404, 500):
        recorder.response(_cycle(status=status))
    recorder.response(_cycle(method="POST", status=201, sent=10))
    assert recorder.requests["GET"][2] == 2 and recorder.requests["GET"][4] == 1
    assert recorder.requests["GET"][5] == 1 and recorder.requests["POST"][2] == 1
    assert recorder.bytes_out == 30
    assert sum(recorder.duration_buckets) == 5 and recorder.duration_sum > 0


def test_histogram_buckets_are_upper_inclusive() -> None:
    recorder = Recorder()
    recorder.duration_buckets = [0] * (len(DURATION_BOUNDS) + 1)
    from bisect import bisect_left

    assert bisect_left(DURATION_BOUNDS, 0.005) == 0  # le="0.005" holds an observation of exactly 0.005
    recorder.response(_cycle(elapsed=60.0))
    assert recorder.duration_buckets[-1] == 1  # beyond the last bound: +Inf only


def test_protocol_error_reasons_are_bounded_labels() -> None:
    assert reason_label("Request header field too large") == "request_header_field_too_large"
    assert reason_label("Illegal header line: bytearray(b'x')") is None  # quotes client bytes
    assert reason_label("Unsupported HTTP version 9.9") is None  # digits: may come from the client
    recorder = Recorder()
    recorder.protocol_error(431, "Request header field too large")
    recorder.protocol_error(400, "illegal header name b'\\x00'")
    for index in range(MAX_REASONS + 5):
        recorder.protocol_error(400, f"Reason {'x' * (index % 40)}y")
    assert recorder.protocol_errors[(431, "request_header_field_too_large")] == 1
    assert len(recorder.protocol_errors) <= MAX_REASONS + 1
    assert recorder.protocol_errors[(400, "other")] >= 1


def test_snapshot_round_trip_and_gauges_from_state() -> None:
    recorder = Recorder()
    recorder.response(_cycle())
    recorder.ws_opened()
    snapshot = take(_state(recorder, requests=1))
    assert snapshot["in_flight"] == 2 and snapshot["open"] == 2 and snapshot["ws_open"] == 1
    assert snapshot["served"] == 1 and snapshot["cpu"] is not None and snapshot["rss"] > 0
    line = encode(snapshot)
    assert "\n" not in line
    assert decode(line) == decode(encode(snapshot))
    assert decode("not json") is None and decode("[1]") is None and decode('{"duration": []}') is None


def _snapshot(requests: int, in_flight: int = 0) -> dict[str, Any]:
    recorder = Recorder()
    for _ in range(requests):
        recorder.response(_cycle())
    state = _state(recorder, requests)
    state.tasks = set(range(in_flight))
    return decode(encode(take(state)))  # type: ignore[return-value]


def test_aggregate_totals_never_go_backwards_across_recycling() -> None:
    aggregate = Aggregate()
    aggregate.update(1, _snapshot(10, in_flight=2))
    aggregate.update(2, _snapshot(5))
    totals, gauges = aggregate.totals()
    assert totals.request_count == 15 and gauges["in_flight"] == 2
    aggregate.update(1, _snapshot(12))  # worker 1 served two more, then exits
    aggregate.finish(1)
    aggregate.update(3, _snapshot(0))  # its replacement starts from zero
    totals, gauges = aggregate.totals()
    assert totals.request_count == 17 and gauges["in_flight"] == 0
    assert sum(totals.duration) == 17
    aggregate.finish(99)  # a worker that never reported: nothing to add
    assert aggregate.totals()[0].request_count == 17


def test_render_parses_with_prometheus_client() -> None:
    totals = Totals()
    totals.add(_snapshot(3))
    totals.protocol_errors[(431, "request_head_too_large")] = 2
    gauges = {"in_flight": 1, "open": 2, "ws_open": 0}
    workers = [WorkerView(slot=0, pid=10, state="ready", age=1.5, served=3, rss=1000, cpu=0.5)]
    master = MasterView(
        desired=1,
        states={"ready": 1},
        restarts={"max-requests": 1},
        signals={"HUP": 2},
        health_buckets=[1] + [0] * 13,
        health_sum=0.0001,
    )
    text = render(totals, gauges, workers, master).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["palfrey_requests"]
    assert requests.type == "counter"
    assert [(s.labels, s.value) for s in requests.samples] == [({"method": "GET", "status": "2xx"}, 3.0)]
    buckets = [s for s in families["palfrey_request_duration_seconds"].samples if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 3
    assert all(a.value <= b.value for a, b in itertools.pairwise(buckets))  # cumulative
    errors = families["palfrey_protocol_errors"].samples
    assert errors[0].labels == {"status": "431", "reason": "request_head_too_large"}
    restarts = {s.labels["reason"]: s.value for s in families["palfrey_worker_restarts"].samples}
    assert restarts["max-requests"] == 1 and restarts["crash"] == 0
    signals = {s.labels["signal"]: s.value for s in families["palfrey_master_signals"].samples}
    assert signals["HUP"] == 2 and signals["TTIN"] == 0
    rss = families["palfrey_worker_resident_memory_bytes"].samples
    assert rss[0].labels == {"worker": "0"} and rss[0].value == 1000
    assert "palfrey_workers_desired" not in {
        f.name for f in text_string_to_metric_families(render(totals, gauges, workers, None).decode())
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9090", ("127.0.0.1", 9090)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:9100", ("localhost", 9100)),
        ("[::1]:9090", ("::1", 9090)),
        (" [::]:80 ", ("::", 80)),
    ],
)
def test_parse_bind(value: str, expected: tuple[str, int]) -> None:
    assert parse_bind(value) == expected


@pytest.mark.parametrize(
    "value", ["9090", ":9090", "::1:9090", "[::1]9090", "[::1]", "host:port", "h:70000", "[a]:1"]
)
def test_parse_bind_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        parse_bind(value)


def test_config_options() -> None:
    config = Config("m:app", metrics=True, metrics_bind="[::1]:9100")
    assert config.metrics is True and config.metrics_bind == "[::1]:9100"
    assert Config("m:app").metrics is False and Config("m:app").metrics_bind == "127.0.0.1:9090"
    with pytest.raises(ConfigError, match="--metrics-bind: an IPv6 address needs brackets"):
        Config("m:app", metrics_bind="::1:9090")


def test_missing_client_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(palfrey.metrics, "client_available", lambda: False)
    with pytest.raises(ConfigError) as info:
        Config("m:app", metrics=True)
    assert (
        str(info.value)
        == "--metrics: needs prometheus_client: pip install prometheus_client (or install palfrey with its metrics extra)"
    )
    Config("m:app", metrics=False)  # only --metrics needs it


def test_route() -> None:
    assert route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") == (200, False)
    assert route(b"GET /metrics?x=1 HTTP/1.0\n\n") == (200, False)
    assert route(b"HEAD /metrics HTTP/1.1\r\n\r\n") == (200, True)
    assert route(b"GET / HTTP/1.1\r\n\r\n") == (404, False)
    assert route(b"POST /metrics HTTP/1.1\r\n\r\n") == (405, False)
    assert route(b"nonsense\r\n\r\n") == (400, False)
    assert response(200, b"abc", "text/plain", head_only=True).endswith(
        b"Content-Length: 3\r\nConnection: close\r\n\r\n"
    )


def test_free_slot_is_the_lowest_not_held_by_a_serving_worker() -> None:
    def handle(slot: int, state: str) -> WorkerHandle:
        return WorkerHandle(
            pid=slot, channel=None, generation=0, started=0, boot_deadline=0, state=state, slot=slot
        )  # type: ignore[arg-type]

    assert WorkerHandle.free_slot([]) == 0
    assert WorkerHandle.free_slot([handle(0, "ready"), handle(1, "booting")]) == 2
    assert WorkerHandle.free_slot([handle(0, "draining"), handle(1, "ready")]) == 0
    assert WorkerHandle.free_slot([handle(0, "ready"), handle(2, "ready")]) == 1


def test_channel_never_tears_a_long_line() -> None:
    master, worker = Channel.pair()
    try:
        worker.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        big = "stats 0 " + "x" * 500_000
        assert worker.send(big)  # goes out in part; the tail waits
        worker.send("pong")  # sent after the tail, or dropped whole: never torn
        received: list[str] = []
        for _ in range(1000):
            received += master.receive()
            worker.send("ping")  # each send first pushes more of the tail
            if len(received) >= 2:
                break
        worker.flush(timeout=1.0)
        received += master.receive()
        assert received[0] == big
        assert all(line in ("pong", "ping") for line in received[1:])
    finally:
        master.close()
        worker.close()


def test_docs_name_only_metrics_that_exist() -> None:
    from pathlib import Path

    import yaml

    from palfrey.options import OPTIONS_BY_NAME

    root = Path(__file__).resolve().parent.parent
    master = MasterView(
        desired=1, states={}, restarts={}, signals={}, health_buckets=[0] * 14, health_sum=0.0
    )
    worker = WorkerView(
        slot=0, pid=1, state="ready", age=1.0, served=0, rss=1, cpu=0.0, healthcheck_rtt=0.001
    )
    totals = Totals()
    totals.add(_snapshot(1))
    totals.protocol_errors[(400, "other")] = 1
    text = render(totals, {"in_flight": 0, "open": 0, "ws_open": 0}, [worker], master).decode()
    exported = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    exported |= {name.removesuffix("_bucket") for name in exported}
    for doc in ("docs/metrics.md", "docs_src/operations/sizing.md"):
        named = set(re.findall(r"\bpalfrey_[a-z_]+[a-z]", (root / doc).read_text()))
        assert named and named <= exported, (doc, named - exported)
    documented = set(re.findall(r"`(palfrey_[a-z_]+)`", (root / "docs/metrics.md").read_text()))
    families = {family.name for family in text_string_to_metric_families(text)}
    assert {f"{f}_total" if f"{f}_total" in exported else f for f in families} <= documented
    scrape = yaml.safe_load((root / "docs_src/operations/prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["static_configs"][0]["targets"] == [OPTIONS_BY_NAME["metrics_bind"].default]
    assert scrape["metrics_path"] == "/metrics"
