"""End to end: PALFREY_METRICS_BIND under real gunicorn with palfrey's worker classes.

One endpoint in gunicorn's master serves /metrics for every worker: exact counts over `-w 3`,
totals that never go back across max_requests recycling, HUP, TTIN/TTOU, a timeout kill and a
SIGKILL, signals and restarts counted by name. Every wait is bounded (scrapes polled to a deadline).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest

from palfrey.metrics.gunicorn_worker import PUSH_EVERY
from tests.metrics_support import Scrape, scrape, scrape_until
from tests.support import (
    GUNICORN_APP,
    GUNICORN_WORKERS,
    ServerProcess,
    raw_request,
    run_gunicorn,
    spawn_gunicorn,
    stop,
)

pytest.importorskip("gunicorn")

_METRICS_URL = r"Metrics on (http://\S+/metrics)"
WSGI_APP = "tests.apps.gunicorn_apps:wsgi_app"


@contextmanager
def gunicorn_metrics(
    *args: str, worker: str = GUNICORN_WORKERS[0], workers: int = 3, app: str = GUNICORN_APP
) -> Iterator[tuple[ServerProcess, str]]:
    env = {"PALFREY_METRICS_BIND": "127.0.0.1:0"}
    with run_gunicorn(*args, app=app, worker=worker, workers=workers, env=env) as server:
        url = server.wait_for_line(_METRICS_URL).group(1)
        yield server, url


def get(port: int, path: str = "/pid", timeout: float = 10.0) -> tuple[int, bytes]:
    """One request on a fresh connection: the kernel spreads them over the workers."""
    data = raw_request(
        port, f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode(), timeout=timeout
    )
    head, _, body = data.partition(b"\r\n\r\n")
    assert head, "empty response"
    return int(head.split(b" ", 2)[1]), body


def load(port: int, count: int, path: str = "/pid", threads: int = 4) -> set[str]:
    """`count` requests, all answered 200 (none lost); returns the pids that answered."""
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda _: get(port, path), range(count)))
    assert [status for status, _ in results] == [200] * count
    return {body.decode() for _, body in results}


def requests_total(result: Scrape) -> float:
    return result.total("palfrey_requests_total")


def ready_workers(url: str, count: int, timeout: float = 20.0) -> Scrape:
    return scrape_until(url, lambda s: s.total("palfrey_workers_ready") == count, timeout)


@pytest.mark.parametrize(
    ("worker", "app"), [(GUNICORN_WORKERS[0], GUNICORN_APP), (GUNICORN_WORKERS[1], WSGI_APP)]
)
def test_three_workers_one_scrape_counts_every_request(worker: str, app: str) -> None:
    with gunicorn_metrics(worker=worker, app=app) as (server, url):
        path = "/pid" if app == GUNICORN_APP else "/x"
        answered = load(server.port, 150, path)
        assert len(answered) >= 2, answered  # several workers served
        result = scrape(url)  # one scrape, no polling: exact at once
        assert requests_total(result) == 150
        assert result.total("palfrey_requests_total", method="GET", status="2xx") == 150
        assert result.total("palfrey_request_duration_seconds_count") == 150
        assert result.total("palfrey_connections_total", protocol="http") == 150
        assert result.total("palfrey_response_body_bytes_total") > 0
        per_worker = result.by("palfrey_worker_requests_total", "worker")
        assert sorted(per_worker) == ["0", "1", "2"] and sum(per_worker.values()) == 150
        rss = result.by("palfrey_worker_resident_memory_bytes", "worker")
        assert sorted(rss) == ["0", "1", "2"] and all(value > 1_000_000 for value in rss.values())
        assert len(result.by("palfrey_worker_cpu_seconds_total", "worker")) == 3
        assert len(result.by("palfrey_worker_age_seconds", "worker")) == 3
        pids = {str(int(v)) for v in result.by("palfrey_worker_pid", "worker").values()}
        assert answered <= pids or app != GUNICORN_APP
        assert result.total("palfrey_worker_state", state="ready") == 3
        assert result.total("palfrey_workers_desired") == 3
        assert result.total("palfrey_workers", state="ready") == 3
        assert "palfrey_healthcheck_duration_seconds" not in result.families  # gunicorn has none
        head = raw_request(urlsplit(url).port or 0, b"GET /nope HTTP/1.0\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404")


def test_max_requests_recycling_keeps_totals_monotonic_and_counts_restarts() -> None:
    with gunicorn_metrics("--max-requests", "20", "--max-requests-jitter", "4") as (server, url):
        seen: list[float] = []
        stop_scraping = threading.Event()

        def scraper() -> None:
            while not stop_scraping.is_set():
                seen.append(requests_total(scrape(url)))

        thread = threading.Thread(target=scraper, daemon=True)
        thread.start()
        try:
            pids = load(server.port, 160)
        finally:
            stop_scraping.set()
            thread.join(timeout=10)
        assert len(pids) >= 6, pids  # at most 24 per worker: recycling happened
        assert seen == sorted(seen), seen  # never backwards
        result = scrape(url)
        assert requests_total(result) == 160
        # Every worker that served its max and exited is counted; none counted as a crash.
        restarts = result.by("palfrey_worker_restarts_total", "reason")
        assert restarts["max-requests"] >= len(pids) - 3
        assert restarts["crash"] == restarts["timeout"] == restarts["hup"] == 0
        # The kernel merges pending SIGCHLDs: at least one, not one per exit.
        assert result.total("palfrey_master_signals_total", signal="CHLD") >= 1


def test_hup_ttin_ttou_usr1_keep_totals_and_are_counted() -> None:
    with gunicorn_metrics() as (server, url):
        load(server.port, 60)
        master = server.proc.pid
        old = set(ready_workers(url, 3).by("palfrey_worker_pid", "worker").values())
        os.kill(master, signal.SIGHUP)
        after_hup = scrape_until(
            url,
            lambda s: (
                s.by("palfrey_worker_restarts_total", "reason").get("hup") == 3
                and s.total("palfrey_workers_ready") == 3
            ),
        )
        assert requests_total(after_hup) == 60
        slots = after_hup.by("palfrey_worker_pid", "worker")
        assert sorted(slots) == ["0", "1", "2"]  # replacements took the old slots
        assert not old & set(slots.values())
        load(server.port, 30)
        assert requests_total(scrape(url)) == 90
        os.kill(master, signal.SIGTTIN)
        grown = scrape_until(url, lambda s: s.total("palfrey_workers_ready") == 4)
        assert grown.total("palfrey_workers_desired") == 4
        os.kill(master, signal.SIGTTOU)
        shrunk = scrape_until(
            url,
            lambda s: (
                s.total("palfrey_workers_desired") == 3
                and sum(s.by("palfrey_workers", "state").values()) == 3
            ),
        )
        os.kill(master, signal.SIGUSR1)
        result = scrape_until(url, lambda s: s.total("palfrey_master_signals_total", signal="USR1") == 1)
        signals = result.by("palfrey_master_signals_total", "signal")
        assert signals["HUP"] == 1 and signals["TTIN"] == 1 and signals["TTOU"] == 1
        assert signals["CHLD"] >= 1  # the kernel merges pending SIGCHLDs
        restarts = result.by("palfrey_worker_restarts_total", "reason")
        assert restarts["hup"] == 3  # TTOU shrinking the pool is not a restart
        assert sum(restarts.values()) == 3
        assert requests_total(shrunk) == requests_total(result) == 90


def test_timeout_kill_and_sigkill_are_restarts_and_lose_no_scraped_counts() -> None:
    with gunicorn_metrics("--timeout", "3", workers=2) as (server, url):
        load(server.port, 40)
        assert requests_total(scrape(url)) == 40

        def block() -> None:
            try:
                get(server.port, "/block", timeout=20)
            except (OSError, AssertionError):
                pass  # the worker holding it is killed

        blocker = threading.Thread(target=block, daemon=True)
        blocker.start()
        result = scrape_until(
            url, lambda s: s.total("palfrey_worker_restarts_total", reason="timeout") == 1, timeout=20
        )
        blocker.join(timeout=10)
        # gunicorn's ABRT handler raises SystemExit inside the blocked handler: the worker may still
        # answer that request 500 on its way out (and count it); the 40 answered before all count.
        assert result.total("palfrey_requests_total", status="2xx") == 40
        before = requests_total(result)
        assert before - 40 == result.total("palfrey_requests_total", status="5xx") <= 1
        ready_workers(url, 2)
        victim = int(scrape(url).by("palfrey_worker_pid", "worker")["0"])
        os.kill(victim, signal.SIGKILL)
        result = scrape_until(url, lambda s: s.total("palfrey_worker_restarts_total", reason="crash") == 1)
        assert requests_total(result) == before
        assert result.total("palfrey_worker_restarts_total") == 2
        # Counts not yet scraped survive a SIGKILL once the worker pushed them (every PUSH_EVERY s).
        # (No scrape between the load and the kills: a scrape would fetch fresh snapshots itself.)
        pids = ready_workers(url, 2).by("palfrey_worker_pid", "worker").values()
        load(server.port, 20)
        time.sleep(PUSH_EVERY + 0.5)  # nothing to await: the push is the worker's own timer
        for pid in pids:
            os.kill(int(pid), signal.SIGKILL)
        result = scrape_until(url, lambda s: s.total("palfrey_worker_restarts_total", reason="crash") == 3)
        assert requests_total(result) == before + 20


def test_busy_metrics_port_stops_gunicorn_with_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = spawn_gunicorn(
            GUNICORN_APP,
            "-k",
            GUNICORN_WORKERS[0],
            "-b",
            "127.0.0.1:0",
            env={"PALFREY_METRICS_BIND": f"127.0.0.1:{port}"},
        )
        try:
            assert server.proc.wait(timeout=20) == 1
        finally:
            stop(server)
        output = server.output()
        assert f"Error: PALFREY_METRICS_BIND 127.0.0.1:{port}: cannot listen" in output
        assert "Traceback" not in output
        assert "Booting worker" not in output


def test_docs_gunicorn_metrics_conf() -> None:
    """docs_src/operations/gunicorn_metrics_conf.py runs as documented (addresses moved to free ports)."""
    env = {"PALFREY_METRICS_BIND": "127.0.0.1:0", "WEB_CONCURRENCY": "2"}
    with run_gunicorn(
        "-c",
        "docs_src/operations/gunicorn_metrics_conf.py",
        app="docs_src.getting_started.hello_world:app",
        worker=None,
        workers=None,
        ready=2,
        env=env,
    ) as server:
        url = server.wait_for_line(_METRICS_URL).group(1)
        load(server.port, 20, "/")
        result = scrape(url)
        assert requests_total(result) == 20
        assert result.total("palfrey_workers_desired") == 2
        assert "Using worker: palfrey.workers.PalfreyWorker" in server.output()
