"""The master at the edges, end to end: killed workers, recycling and HUP with slow requests in flight,
--reuse-port under recycling, signals to the whole process group, hung and stopped workers, and an
import error with several workers. Real processes, real signals, a real keep-alive load
(tests/master_support.py's `Load`); every wait is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.master_support import (
    Load,
    SlowRequests,
    count_lines,
    live_workers,
    ready_pids,
    request,
    restarted_pids,
    spawn_group,
    wait_exit,
    wait_for_count,
    wait_gone,
)
from tests.support import run_server, spawn

APP = "tests.apps.workers_app:app"
QUIET = ("--no-access-log",)
APP_FILE = Path(__file__).parent / "apps" / "workers_app.py"


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_workers_killed_again_and_again_under_load_are_always_replaced(http: str) -> None:
    """SIGKILL (what the OOM killer sends) every ~0.6 s, 6 times: the master never gives up."""
    kills = 6
    with run_server(APP, *QUIET, "--workers", "2", "--http", http) as server:
        ready_pids(server)
        with Load(server.port, connections=8) as load:
            load.wait_for_requests(100)
            killed = []
            for _ in range(kills):
                deadline = time.monotonic() + 15
                while not (victims := [p for p in live_workers(server) if p not in killed]):
                    assert time.monotonic() < deadline, server.output()
                    time.sleep(0.05)
                os.kill(victims[0], signal.SIGKILL)
                killed.append(victims[0])
                time.sleep(0.6)
            wait_for_count(server, r"died unexpectedly \(signal SIGKILL — out of memory\?\)", kills)
            # Serving again with both workers once the backoff has passed.
            deadline = time.monotonic() + 30
            while len(live_workers(server)) < 2:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.05)
            served = load.result.ok
            load.wait_for_requests(served + 100)
        result = load.stop()
        assert request(server.port, "/pid")[0] == 200
    output = server.output()
    assert "stopping the master" not in output
    # Lost: only what was in flight on a killed worker's connections (at most one per connection).
    lost = len(result.failures)
    print(f"{kills} SIGKILLs ({http}): {result.ok} ok, {lost} lost, {result.retried} retried")
    assert lost <= kills * 2, result.failures


def test_recycling_with_slow_requests_in_flight_is_bounded_and_loses_nothing() -> None:
    """Four 3 s requests in flight while workers reach their limit: no worker serves past limit +
    in-flight (one long drain does not hold the others), and nothing is lost."""
    args = ("--workers", "2", "--limit-max-requests", "100", "--limit-max-requests-jitter", "20")
    with run_server(APP, *QUIET, *args) as server:
        ready_pids(server)
        with Load(server.port, connections=8) as load:
            load.wait_for_requests(20)
            slow = SlowRequests(server.port, "/sleep?seconds=3", 4)
            wait_for_count(server, r"sleep started in \d+", 4)
            wait_for_count(server, r"Worker \(pid \d+\) exited \(exit code 0\)", 4, timeout=30)
        result = load.stop()
        slow_results = slow.join()
    output = server.output()
    most = max(result.pids.values())
    recycled = count_lines(server, r"served \d+ requests \(limit \d+\): recycling it")
    print(f"recycling, 4 slow requests in flight: most served by one worker {most} (limit 100 + 20 jitter)")
    assert not result.failures, result.failures[:5]
    assert slow_results == [(200, b"slept")] * 4, slow_results
    assert recycled >= 4, output
    # limit + jitter, plus one answer per open load connection (8) and the slow requests (4) + slack.
    assert most <= 120 + 8 + 4 + 2, result.pids.most_common(3)


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_one_worker_recycled_under_load_loses_nothing(http: str) -> None:
    """One worker: while it drains and its replacement boots, the listener's backlog holds connections."""
    args = ("--workers", "1", "--limit-max-requests", "100", "--http", http)
    with run_server(APP, *QUIET, *args) as server:
        ready_pids(server)
        with Load(server.port, connections=8) as load:
            load.wait_for_requests(20)
            wait_for_count(server, r"Worker \(pid \d+\) exited \(exit code 0\)", 3, timeout=30)
        result = load.stop()
    print(
        f"one worker recycled ({http}): {result.ok} ok, {len(result.failures)} lost, {result.retried} retried"
    )
    assert not result.failures, result.failures[:5]
    assert result.retried <= 2, result
    assert max(result.pids.values()) <= 100 + 8 + 2, result.pids.most_common(3)


def test_hup_with_slow_requests_in_flight_loses_nothing() -> None:
    with run_server(APP, *QUIET, "--workers", "2") as server:
        first = ready_pids(server)
        with Load(server.port, connections=8) as load:
            load.wait_for_requests(50)
            slow = SlowRequests(server.port, "/sleep?seconds=3", 4)
            wait_for_count(server, r"sleep started in \d+", 4)
            server.signal(signal.SIGHUP)
            pids = restarted_pids(server, timeout=30)
            served = load.result.ok
            load.wait_for_requests(served + 50)
        result = load.stop()
        slow_results = slow.join()
    assert not set(first) & set(pids)
    assert not result.failures, result.failures[:5]
    assert slow_results == [(200, b"slept")] * 4, slow_results
    assert result.retried <= 2, result


def test_reuse_port_under_recycling_loses_nothing() -> None:
    args = ("--workers", "2", "--reuse-port", "--limit-max-requests", "100")
    with run_server(APP, *QUIET, *args, "--limit-max-requests-jitter", "20") as server:
        ready_pids(server)
        with Load(server.port, connections=8) as load:
            load.wait_for_requests(50)
            wait_for_count(server, r"Worker \(pid \d+\) exited \(exit code 0\)", 6, timeout=30)
        result = load.stop()
    print(f"--reuse-port recycling: {result.ok} ok, {len(result.failures)} lost, {result.retried} retried")
    assert not result.failures, result.failures[:5]
    assert count_lines(server, r"recycling it \(it stopped accepting") >= 6
    # Each slot's listener stays open in the master, so a recycled worker's queue waits for its
    # replacement instead of being reset: the limit holds as it does with a shared listener.
    assert max(result.pids.values()) <= 120 + 8 + 2, result.pids.most_common(3)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_group_signal_is_a_clean_shutdown_every_time(sig: int) -> None:
    """TERM / INT to the whole process group (systemd, Ctrl+C), ten times: never a crash or a respawn."""
    runs = 10
    for run in range(runs):
        workers = 2 + run % 2
        server = spawn_group(APP, *QUIET, "--workers", str(workers), "--host", "127.0.0.1", "--port", "0")
        try:
            wait_for_count(server, r"All \d+ workers ready", 1)
            marker = len(server.output().splitlines())
            os.killpg(server.proc.pid, sig)
            code = wait_exit(server, 15)
        finally:
            if server.proc.poll() is None:
                os.killpg(server.proc.pid, signal.SIGKILL)
                server.wait_exit()
        output = server.output()
        after = "\n".join(output.splitlines()[marker:])
        assert code == 0, (run, output)
        assert "unexpectedly" not in output and "not asked to by the master" not in output, (run, output)
        assert "Booting worker" not in after, (run, output)
        assert "Traceback" not in output, (run, output)


def test_worker_stopped_by_an_operator_is_replaced_not_reported_as_a_crash() -> None:
    with run_server(APP, *QUIET, "--workers", "2") as server:
        victim, other = ready_pids(server)
        os.kill(victim, signal.SIGTERM)
        wait_for_count(
            server, rf"Worker \(pid {victim}\) stopped \(got SIGTERM\), not asked to by the master", 1
        )
        replaced = ready_pids(server, occurrence=2)
        assert victim not in replaced and other in replaced
        server.signal(signal.SIGTERM)
        assert wait_exit(server, 15) == 0
    assert "unexpectedly" not in server.output()


def test_hung_worker_dumps_the_blocking_line_before_it_is_killed() -> None:
    line = next(
        number
        for number, text in enumerate(APP_FILE.read_text().splitlines(), 1)
        if 'time.sleep(float(query.get("seconds", "30")))' in text
    )
    with run_server(APP, *QUIET, "--workers", "2", "--timeout-worker-healthcheck", "1") as server:
        ready_pids(server)
        slow = SlowRequests(server.port, "/block?seconds=30", 1)
        match = wait_for_count(server, r"Worker \(pid (\d+)\) did not answer a health check", 1)[0]
        hung = int(match.group(1))
        wait_for_count(server, rf'workers_app\.py", line {line} in app', 1)
        assert wait_gone(hung, timeout=10)
        assert ready_pids(server, occurrence=2)
    output = server.output()
    assert "its stacks are dumped below" in output
    assert output.index("did not answer a health check") < output.index(f"line {line} in app")
    slow.join(timeout=5)


def test_stopped_worker_is_killed_long_before_the_health_timeout() -> None:
    """SIGSTOP: the default 5 s health timeout, but a stopped process is found at the next ping tick."""
    with run_server(APP, *QUIET, "--workers", "2", "--timeout-worker-healthcheck", "5") as server:
        victim, other = ready_pids(server)
        os.kill(victim, signal.SIGSTOP)
        started = time.monotonic()
        wait_for_count(
            server, rf"Worker \(pid {victim}\) did not answer a health check for [\d.]+s: process stopped", 1
        )
        assert wait_gone(victim, timeout=5)
        elapsed = time.monotonic() - started
        replaced = ready_pids(server, occurrence=2)
        assert victim not in replaced and other in replaced
    assert elapsed < 4.0, elapsed
    assert f"Worker (pid {victim}) exited (signal SIGKILL)" in server.output()


def test_import_error_is_printed_once_for_all_workers() -> None:
    server = spawn("tests.apps.no_such_module_here:app", "--workers", "3", "--port", "0")
    code = wait_exit(server, 20)
    output = server.output()
    assert code == 3, output
    lines = [line for line in output.splitlines() if re.search(r"no_such_module_here", line)]
    assert len(lines) == 1, output
    assert count_lines(server, r"failed to boot \(exit code 3\); stopping the master") == 1, output
