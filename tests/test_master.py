"""The pre-fork master end to end: real processes, real signals, real pids.

Fork model, process titles and pid file, replacement of killed and hung workers, signals (TERM, INT,
TTIN/TTOU, USR1), and bounded failure (boot errors exit with code 3; workers dying at runtime are
always replaced, later and later if they keep dying young).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.master_support import (
    READY_ALL,
    Load,
    ResponseLost,
    alive,
    count_lines,
    ready_pids,
    request,
    restarted_pids,
    wait_exit,
    wait_for_count,
    wait_gone,
)
from tests.support import run_server, spawn

APP = "tests.apps.workers_app:app"
QUIET = ("--no-access-log",)


def distinct_pids(port: int, want: int, attempts: int = 400) -> dict[int, dict[str, str]]:
    """Ask /pid on new connections until `want` different workers answered (the kernel picks)."""
    seen: dict[int, dict[str, str]] = {}
    for _ in range(attempts):
        status, headers, body = request(port, "/pid")
        assert status == 200
        seen[int(body)] = headers
        if len(seen) >= want:
            break
    return seen


def test_three_workers_serve_with_their_own_lifespan(tmp_path: Path) -> None:
    pid_file = tmp_path / "palfrey.pid"
    with run_server(APP, *QUIET, "--workers", "3", "--pid", str(pid_file)) as server:
        pids = ready_pids(server)
        assert len(set(pids)) == 3
        assert int(pid_file.read_text()) == server.proc.pid
        seen = distinct_pids(server.port, 3)
        assert set(seen) == set(pids), "every worker serves requests"
        assert all(h["x-startup-ran"] == "1" for h in seen.values()), "lifespan startup ran in each"
        assert server.proc.pid not in seen, "the master serves nothing"
        assert count_lines(server, r"Palfrey running on") == 1, "the master announces the listener once"
        titles = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in [server.proc.pid, *pids]}
    pytest.importorskip("setproctitle")
    assert titles[server.proc.pid].startswith(b"palfrey: master [tests.apps.workers_app:app]")
    assert all(titles[p].startswith(b"palfrey: worker [tests.apps.workers_app:app]") for p in pids)
    assert not pid_file.exists(), "the pid file is removed on exit"


def test_plain_run_is_one_process() -> None:
    with run_server(APP, *QUIET) as server:
        status, _, body = request(server.port, "/pid")
        assert status == 200 and int(body) == server.proc.pid
    assert "master" not in server.output()


def test_killed_worker_is_replaced_while_requests_succeed() -> None:
    with run_server(APP, *QUIET, "--workers", "2") as server:
        victim, survivor = ready_pids(server)
        with Load(server.port, connections=4) as load:
            load.wait_for_requests(50)
            os.kill(victim, signal.SIGKILL)
            wait_for_count(server, rf"Worker \(pid {victim}\) died unexpectedly \(signal SIGKILL", 1)
            replaced = ready_pids(server, occurrence=2)
            served = load.result.ok
            load.wait_for_requests(served + 50)
        result = load.stop()
    assert victim not in replaced and survivor in replaced and len(replaced) == 2
    # Only what was in flight on the killed worker's connections is lost: at most one per connection.
    assert len(result.failures) <= 4, result.failures
    assert all("Connection" in f for f in result.failures), result.failures


@pytest.mark.parametrize("how", ["blocked-loop", "sigstop"])
def test_hung_worker_is_detected_and_replaced(how: str) -> None:
    timeout = 1.0
    with run_server(APP, *QUIET, "--workers", "2", "--timeout-worker-healthcheck", str(timeout)) as server:
        pids = ready_pids(server)
        started = time.monotonic()
        if how == "sigstop":
            hung = pids[0]
            os.kill(hung, signal.SIGSTOP)
        else:
            blocker = threading.Thread(
                target=_ignore_errors, args=(server.port, "/block?seconds=60"), daemon=True
            )
            blocker.start()
        match = wait_for_count(server, r"Worker \(pid (\d+)\) did not answer a health check", 1, timeout=10)[
            0
        ]
        detected = time.monotonic() - started
        hung = int(match.group(1))
        assert hung in pids
        # Ping interval (timeout / 2) + timeout, plus scheduling slack on a busy machine.
        assert detected < timeout * 1.5 + 2.5, detected
        other = next(p for p in pids if p != hung)
        for _ in range(10):  # the healthy worker answers meanwhile
            status, _, body = request(server.port, "/pid")
            assert status == 200 and int(body) != hung
        wait_for_count(server, rf"Worker \(pid {hung}\) exited \(signal SIGKILL\)", 1, timeout=10)
        replaced = ready_pids(server, occurrence=2)
        assert hung not in replaced and other in replaced
        assert not alive(hung)


def _ignore_errors(port: int, path: str) -> None:
    try:
        request(port, path, timeout=30)
    except (OSError, ResponseLost):
        pass  # the server closed it: that is what these tests provoke


def test_term_lets_an_inflight_request_finish() -> None:
    with run_server(APP, "--workers", "2") as server:
        ready_pids(server)
        answer: list[bytes] = []
        thread = threading.Thread(target=lambda: answer.append(request(server.port, "/sleep?seconds=2")[2]))
        thread.start()
        server.wait_for_line(r"sleep started in \d+")
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        code = wait_exit(server, 15)
        thread.join(timeout=5)
    assert code == 0
    assert answer == [b"slept"]
    assert time.monotonic() - started > 1.0, "the master waited for the request"


def test_graceful_shutdown_timeout_bounds_term() -> None:
    with run_server(APP, "--workers", "2", "--timeout-graceful-shutdown", "1") as server:
        ready_pids(server)
        thread = threading.Thread(target=_ignore_errors, args=(server.port, "/sleep?seconds=20"), daemon=True)
        thread.start()
        server.wait_for_line(r"sleep started in \d+")
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        code = wait_exit(server, 15)
        elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 5, elapsed
    assert "Graceful shutdown timed out" in server.output()


@pytest.mark.parametrize("signals", [(signal.SIGINT, signal.SIGINT), (signal.SIGQUIT,)])
def test_second_int_or_quit_stops_at_once(signals: tuple[int, ...]) -> None:
    with run_server(APP, "--workers", "2") as server:
        ready_pids(server)
        thread = threading.Thread(target=_ignore_errors, args=(server.port, "/sleep?seconds=20"), daemon=True)
        thread.start()
        server.wait_for_line(r"sleep started in \d+")
        started = time.monotonic()
        if len(signals) == 2:
            server.signal(signals[0])
            server.wait_for_line("shutting down gracefully")
        server.signal(signals[-1])
        wait_exit(server, 10)
    assert time.monotonic() - started < 5
    assert "stopping now" in server.output()


def test_master_reaps_children_that_are_not_workers() -> None:
    env = {"WORKERS_APP_FORK_AT_IMPORT": "1"}
    with run_server(APP, *QUIET, "--workers", "2", "--preload", "--log-level", "debug", env=env) as server:
        ready_pids(server)
        match = server.wait_for_line(r"Reaped child process (\d+) \(exit code 0\)")
        assert not Path(f"/proc/{match.group(1)}").exists(), "no zombie left behind"


def test_ttin_and_ttou_change_the_worker_count() -> None:
    with run_server(APP, *QUIET, "--workers", "2") as server:
        first = ready_pids(server)
        server.signal(signal.SIGTTIN)
        more = ready_pids(server, occurrence=2)
        assert len(more) == 3 and set(first) < set(more)
        server.signal(signal.SIGTTOU)
        match = wait_for_count(server, r"Worker \(pid (\d+)\) draining: reducing to 2", 1)[0]
        gone = int(match.group(1))
        wait_for_count(server, rf"Worker \(pid {gone}\) exited \(exit code 0\)", 1)
        assert [p for p in more if alive(p)] == [p for p in more if p != gone]
        assert request(server.port, "/pid")[0] == 200


def test_usr1_reopens_log_files(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(log), "formatter": "plain"},
            "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        },
        "loggers": {
            "palfrey": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "palfrey.access": {"handlers": ["file"], "level": "INFO", "propagate": False},
        },
    }
    config_path = tmp_path / "log.json"
    config_path.write_text(json.dumps(config))
    with run_server(APP, "--workers", "2", "--log-config", str(config_path)) as server:
        ready_pids(server)
        request(server.port, "/pid?before")
        log.rename(tmp_path / "access.log.1")
        server.signal(signal.SIGUSR1)
        wait_for_count(server, r"Worker \(pid \d+\) reopened 1 log file", 2)
        for _ in range(4):
            request(server.port, "/pid?after")
    assert "before" in (tmp_path / "access.log.1").read_text()
    assert "after" in log.read_text() and "before" not in log.read_text()


@pytest.mark.parametrize(
    ("variable", "reason"),
    [
        ("WORKERS_APP_FAIL_IMPORT", "refuses to import"),
        ("WORKERS_APP_FAIL_STARTUP", "Application startup failed"),
    ],
)
def test_boot_failure_exits_3_without_a_loop(variable: str, reason: str) -> None:
    server = spawn(APP, "--workers", "2", "--port", "0", env={variable: "1"})
    started = time.monotonic()
    code = wait_exit(server, 20)
    output = server.output()
    assert code == 3, output
    assert time.monotonic() - started < 10
    assert reason in output
    assert count_lines(server, r"failed to boot \(exit code 3\); stopping the master") == 1, output
    assert count_lines(server, r"Booting worker") == 2, "no respawn loop"


def test_crash_loop_of_ready_workers_backs_off_and_never_stops_the_master() -> None:
    """Workers that die soon after becoming ready are replaced later and later; TERM still stops at once."""
    server = spawn(APP, "--workers", "2", "--port", "0", env={"WORKERS_APP_CRASH_AFTER_STARTUP": "1"})
    try:
        deaths = wait_for_count(server, r"died unexpectedly \(signal SIGSEGV — segmentation fault\)", 6)
        delays = [float(m) for m in re.findall(r"replacing it in ([\d.]+)s", server.output())]
        assert delays and delays == sorted(delays) and delays[-1] >= 0.4, server.output()
        assert len(deaths) >= 6
        # Wait in the middle of a long backoff: TERM must not wait for it.
        wait_for_count(server, r"replacing it in (?:[1-9]\d*\.\d|[1-9])", 1, timeout=30)
        server.signal(signal.SIGTERM)
        started = time.monotonic()
        code = wait_exit(server, 10)
        assert time.monotonic() - started < 3
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    output = server.output()
    assert code == 0, output
    assert "stopping the master" not in output
    assert count_lines(server, r"Booting worker") < 30


def test_workers_exit_when_the_master_dies() -> None:
    with run_server(APP, *QUIET, "--workers", "2") as server:
        pids = ready_pids(server)
        server.proc.kill()
        server.wait_exit()
        for pid in pids:
            assert wait_gone(pid, timeout=10), f"worker {pid} outlived its master"


def test_all_ready_line_names_every_worker() -> None:
    with run_server(APP, *QUIET, "--workers", "2", "--reuse-port") as server:
        pids = ready_pids(server)
        assert len(distinct_pids(server.port, 2)) == 2
        assert count_lines(server, READY_ALL) == 1
        booted = wait_for_count(server, r"Booting worker \(pid (\d+)", 2)
        assert sorted(pids) == sorted(int(m.group(1)) for m in booted)


def test_slow_boot_is_not_a_hang_but_a_boot_deadline_is_enforced() -> None:
    slow = {"WORKERS_APP_IMPORT_DELAY": "1.5"}
    args = ("--workers", "2", "--timeout-worker-healthcheck", "0.5")
    with run_server(APP, *QUIET, *args, "--timeout-worker-boot", "20", env=slow) as server:
        assert len(ready_pids(server)) == 2
        assert count_lines(server, r"did not") == 0
    server = spawn(APP, *args, "--timeout-worker-boot", "0.5", "--port", "0", env=slow)
    assert wait_exit(server, 30) == 3
    assert "did not boot within 0.5s" in server.output()
    assert count_lines(server, r"Workers died \d+ times within") == 1


def test_unix_socket_survives_a_rolling_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "palfrey.sock")
    with run_server(APP, *QUIET, "--uds", path, "--workers", "2") as server:
        first = ready_pids(server)
        server.signal(signal.SIGHUP)
        assert not set(first) & set(restarted_pids(server))
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(path)
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert b" 200 " in sock.recv(65536)
    assert not os.path.exists(path), "the master removes the socket file on exit"
