"""End to end: `--metrics` on real palfrey processes, scraped over HTTP and parsed with prometheus_client.

Every wait is bounded: a scrape is polled until a condition holds or a deadline passes, never slept on.
"""

from __future__ import annotations

import re
import signal
import socket
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.master_support import alive, ready_pids, wait_exit, wait_for_count
from tests.metrics_support import scrape, scrape_until
from tests.support import ROOT, ServerProcess, raw_request, run_server, spawn, spawn_command, stop

WORKERS_APP = "tests.apps.workers_app:app"
HTTP_APP = "tests.apps.http_apps:app"
METRICS = ("--metrics", "--metrics-bind", "127.0.0.1:0", "--no-access-log")
_METRICS_URL = r"Metrics on (http://\S+/metrics)"


@contextmanager
def metrics_server(app: str, *args: str) -> Iterator[tuple[ServerProcess, str]]:
    with run_server(app, *METRICS, *args) as server:
        url = server.wait_for_line(_METRICS_URL).group(1)
        yield server, url


def get(port: int, path: str, sock: socket.socket | None = None) -> tuple[int, bytes]:
    """One GET on `sock` (keep-alive) or on a new connection (closed after)."""
    own = sock is None
    conn = sock or socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        conn.sendall(
            f"GET {path} HTTP/1.1\r\nHost: t\r\n{'Connection: close' if own else ''}\r\n\r\n".encode()
        )
        from tests.support import read_response

        status, _, body = read_response(conn)
        return status, body
    finally:
        if own:
            conn.close()


def connections_to_every_worker(port: int, count: int, attempts: int = 300) -> dict[int, socket.socket]:
    """Open keep-alive connections until `count` different workers answer on them (pid -> socket).

    Each probe is a real request (counted by the caller); connections to a worker already held are
    closed. The kernel decides which worker accepts, so this tries a bounded number of times.
    """
    held: dict[int, socket.socket] = {}
    probes = 0
    while len(held) < count and probes < attempts:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        status, body = get(port, "/pid", sock)
        probes += 1
        assert status == 200
        pid = int(body)
        if pid in held:
            sock.close()
        else:
            held[pid] = sock
    connections_to_every_worker.probes = probes  # type: ignore[attr-defined]
    return held


def test_one_scrape_reports_exactly_every_request_over_three_workers() -> None:
    with metrics_server(WORKERS_APP, "--workers", "3") as (server, url):
        pids = ready_pids(server)
        held = connections_to_every_worker(server.port, 3)
        total = connections_to_every_worker.probes  # type: ignore[attr-defined]  (each probe is a request)
        served: Counter[int] = Counter(held.keys())  # at least the probe that found each held connection
        for _ in range(20):
            for pid, sock in held.items():
                assert get(server.port, "/pid", sock) == (200, str(pid).encode())
                served[pid] += 1
                total += 1
        for _ in range(7):  # and a few on fresh connections, wherever the kernel puts them
            assert get(server.port, "/pid")[0] == 200
            total += 1
        host, metrics_port = re.search(r"//([^:/]+):(\d+)/", url).groups()  # type: ignore[union-attr]
        idle = socket.create_connection((host, int(metrics_port)), timeout=5)  # never sends: must not block
        result = scrape(url)  # every response has arrived: one scrape sees them all
        assert result.total("palfrey_requests_total") == total, result.text
        assert result.total("palfrey_requests_total", method="GET", status="2xx") == total
        assert result.total("palfrey_request_duration_seconds_count") == total
        assert result.total("palfrey_worker_requests_total") == total
        assert len(held) >= 2, "requests reached more than one worker"
        slots = {int(v): k for k, v in result.by("palfrey_worker_pid", "worker").items()}
        assert sorted(slots) == sorted(pids) and sorted(slots.values()) == ["0", "1", "2"]
        per_worker = result.by("palfrey_worker_requests_total", "worker")
        for pid in held:
            assert per_worker[slots[pid]] >= served[pid]  # plus whatever probes landed there
        rss = result.by("palfrey_worker_resident_memory_bytes", "worker")
        assert sorted(rss) == ["0", "1", "2"] and all(value > 1_000_000 for value in rss.values())
        assert all(v > 0 for v in result.by("palfrey_worker_cpu_seconds_total", "worker").values())
        assert result.total("palfrey_workers_desired") == 3 and result.total("palfrey_workers_ready") == 3
        assert result.total("palfrey_requests_in_flight") == 0
        scrape_until(url, lambda s: s.total("palfrey_open_connections", protocol="http") == len(held))
        for sock in held.values():
            sock.close()
        assert scrape(url).total("palfrey_requests_total") == total, "scrapes are not requests to the app"
        head = httpx.head(url, timeout=5)
        assert head.status_code == 200 and int(head.headers["content-length"]) > 1000 and not head.content
        assert httpx.get(url.replace("/metrics", "/"), timeout=5).status_code == 404
        assert httpx.post(url, timeout=5).status_code == 405
        idle.close()


def test_recycling_never_takes_counts_back_and_says_why() -> None:
    args = ("--workers", "2", "--limit-max-requests", "15")
    with metrics_server(WORKERS_APP, *args) as (server, url):
        ready_pids(server)
        sent, retried, seen = 0, 0, []
        while sent < 90:
            try:
                status, _ = get(server.port, "/pid")
            except (ConnectionError, OSError):
                retried += 1  # a connection refused or reset by a worker exiting: never answered
                assert retried < 5
                continue
            assert status == 200
            sent += 1
            if sent % 10 == 0:
                seen.append(scrape(url).total("palfrey_requests_total"))
        assert seen == sorted(seen), f"a total went backwards: {seen}"
        wait_for_count(server, r"Worker \(pid \d+\) exited \(exit code 0\)", 2, timeout=20)
        result = scrape_until(
            url, lambda s: s.total("palfrey_worker_restarts_total", reason="max-requests") >= 2
        )
        assert sent <= result.total("palfrey_requests_total") <= sent + retried, result.text
        assert result.total("palfrey_worker_restarts_total") == result.total(
            "palfrey_worker_restarts_total", reason="max-requests"
        )
        assert sorted(result.by("palfrey_worker_pid", "worker")) == ["0", "1"], "replacements keep slots"
        assert result.total("palfrey_worker_requests_total") < result.total("palfrey_requests_total")


def test_signals_and_restarts_via_palfrey_run() -> None:
    code = (
        "import palfrey\n"
        "if __name__ == '__main__':\n"
        f"    palfrey.run({WORKERS_APP!r}, port=0, workers=2, access_log=False, metrics=True,"
        " metrics_bind='127.0.0.1:0')\n"
    )
    server = spawn_command([sys.executable, "-c", code], cwd=ROOT)
    try:
        url = server.wait_for_line(_METRICS_URL, timeout=15).group(1)
        port = int(re.search(r":(\d+)$", server.wait_for_line(r"Palfrey running on (\S+)").group(1)).group(1))
        first = ready_pids(server)
        assert get(port, "/pid")[0] == 200
        master = server.proc.pid
        server.signal(signal.SIGHUP)
        wait_for_count(server, r"Restart complete", 1, timeout=20)
        server.signal(signal.SIGTTIN)
        match = server.wait_for_line(r"All 3 workers ready \(pids ([\d, ]+)\)")
        now = [int(pid) for pid in match.group(1).split(",")]
        assert len(now) == 3 and not set(first) & set(now)
        result = scrape_until(  # the TTIN is counted, and every worker has answered a health check
            url,
            lambda s: (
                s.total("palfrey_master_signals_total", signal="TTIN") == 1
                and len(s.by("palfrey_worker_healthcheck_rtt_seconds", "worker")) == 3
            ),
        )
        signals = result.by("palfrey_master_signals_total", "signal")
        assert signals["HUP"] == 1 and signals["TTIN"] == 1 and signals["TERM"] == 0
        assert signals["CHLD"] >= 1  # the replaced workers' exits
        assert result.total("palfrey_worker_restarts_total", reason="hup") == 2
        assert result.total("palfrey_workers_desired") == 3
        pids = result.by("palfrey_worker_pid", "worker")
        assert sorted(pids) == ["0", "1", "2"] and sorted(map(int, pids.values())) == sorted(now)
        rss = result.by("palfrey_worker_resident_memory_bytes", "worker")
        assert sorted(rss) == ["0", "1", "2"] and all(alive(pid) for pid in now)
        assert result.total("palfrey_requests_total") == 1  # the request before the HUP survived it
        assert result.total("palfrey_healthcheck_duration_seconds_count") >= 3
        server.signal(signal.SIGTERM)
        assert wait_exit(server, 15) == 0
        assert alive(master) is False
    finally:
        stop(server)


def test_single_process_counts_errors_rejections_and_limits() -> None:
    args = ("--limit-concurrency", "1", "--limit-request-field-size", "100")
    with metrics_server(HTTP_APP, *args) as (server, url):
        assert "Started master" not in server.output()
        port = server.port
        assert get(port, "/fixed")[0] == 200
        assert get(port, "/raise-before")[0] == 500
        bad = b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
        assert raw_request(port, bad).startswith(b"HTTP/1.1 400 ")
        large = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 200 + b"\r\n\r\n"
        assert raw_request(port, large).startswith(b"HTTP/1.1 431 ")
        holder = socket.create_connection(("127.0.0.1", port), timeout=5)
        holder.sendall(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        scrape_until(url, lambda s: s.total("palfrey_requests_in_flight") == 1)
        assert get(port, "/fixed")[0] == 503
        holder.close()  # /hold ends when its client leaves
        result = scrape_until(url, lambda s: s.total("palfrey_requests_in_flight") == 0)
        requests = {
            (labels["method"], labels["status"]): v for labels, v in result.samples("palfrey_requests_total")
        }
        assert requests == {("GET", "2xx"): 1, ("GET", "5xx"): 2}, result.text
        assert result.total("palfrey_app_exceptions_total") == 1
        assert result.total("palfrey_concurrency_limit_responses_total") == 1
        errors = {
            (labels["status"], labels["reason"]): v
            for labels, v in result.samples("palfrey_protocol_errors_total")
        }
        # One of each, with the reason as a fixed slug (its wording depends on the parser).
        assert sorted((status, v) for (status, _), v in errors.items()) == [("400", 1), ("431", 1)], errors
        reasons = dict(errors.keys())  # status -> reason
        assert "content_length" in reasons["400"] and re.fullmatch(r"[a-z_]+", reasons["431"]), reasons
        assert result.total("palfrey_connections_total", protocol="http") == 6
        assert result.total("palfrey_request_bytes_total") >= len(bad) + len(large)
        assert result.by("palfrey_worker_pid", "worker") == {"0": float(server.proc.pid)}
        assert result.total("palfrey_worker_resident_memory_bytes", worker="0") > 1_000_000
        assert "palfrey_workers_desired" not in result.families  # no master, no master metrics
        assert httpx.get(url.replace("/metrics", "/other"), timeout=5).status_code == 404


@pytest.mark.parametrize("workers", ["1", "2"])
def test_busy_metrics_port_fails_with_one_line(workers: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = spawn(
            WORKERS_APP,
            "--port",
            "0",
            "--workers",
            workers,
            "--metrics",
            "--metrics-bind",
            f"127.0.0.1:{port}",
        )
        try:
            assert wait_exit(server, 15) == 1
        finally:
            stop(server)
    output = server.output()
    assert f"--metrics-bind 127.0.0.1:{port}: cannot listen (Address already in use)" in output, output
    assert "Traceback" not in output and "Booting worker" not in output


def test_bad_metrics_bind_is_a_usage_error() -> None:
    server = spawn(WORKERS_APP, "--metrics", "--metrics-bind", "9090")
    assert wait_exit(server, 10) == 2
    assert "--metrics-bind: expects HOST:PORT" in server.output()


# The WebSocket protocol reports to the recorder with ws_opened()/ws_closed() (docs/metrics.md); this
# test runs once that wiring is in palfrey/websocket/.
_WS_WIRED = any("ws_opened" in path.read_text() for path in (ROOT / "palfrey" / "websocket").glob("*.py"))


@pytest.mark.skipif(not _WS_WIRED, reason="palfrey/websocket does not call state.metrics.ws_opened() yet")
def test_websocket_connections_are_counted_apart_from_http() -> None:
    from websockets.sync.client import connect

    with metrics_server("tests.apps.metrics_apps:app", "--ws", "websockets") as (server, url):
        with connect(f"ws://127.0.0.1:{server.port}/echo", open_timeout=5) as ws:
            ws.send("hi")
            assert ws.recv(timeout=5) == "hi"
            result = scrape_until(
                url, lambda s: s.total("palfrey_open_connections", protocol="websocket") == 1
            )
            assert result.total("palfrey_open_connections", protocol="http") == 0
            assert result.total("palfrey_connections_total", protocol="websocket") == 1
        result = scrape_until(url, lambda s: s.total("palfrey_open_connections", protocol="websocket") == 0)
        assert result.total("palfrey_connections_total", protocol="websocket") == 1
        assert result.total("palfrey_open_connections", protocol="http") == 0
        assert result.total("palfrey_connections_total", protocol="http") == 1  # the upgrade request's
