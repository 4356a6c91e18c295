"""The adaptive WSGI thread pool (`--threads auto`, the default), end to end on real sockets.

It grows while requests wait and its threads wait on I/O, not under CPU load, shrinks back when idle
without leaking threads, and bounds the requests that wait. Assertions are on counts the app and the
kernel report (requests in the app at once, pool threads, /proc tasks), not on tight timings.
"""

from __future__ import annotations

import os
import socket
import threading
import time

import httpx
import pytest

from palfrey.supervisor.process import usable_cpus
from tests.support import ServerProcess, read_response, run_server

APP = "tests.apps.wsgi_pool_app:app"
CPUS = usable_cpus()


def pool(server: ServerProcess, reset: bool = False) -> dict[str, int]:
    response = httpx.get(f"{server.url}/pool{'?reset=1' if reset else ''}", timeout=10)
    return dict(response.json())


def burst(port: int, target: str, count: int) -> list[int]:
    """`count` requests sent at once on their own connections; their statuses."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        socks.append(sock)
    statuses = []
    for sock in socks:
        with sock:
            statuses.append(read_response(sock, timeout=20)[0])
    return statuses


def tasks(pid: int) -> int:
    """Threads of the process, as the kernel counts them."""
    return len(os.listdir(f"/proc/{pid}/task"))


def wait_for(condition: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_pool_grows_while_its_threads_wait_on_io() -> None:
    """200 requests to a view sleeping 0.5 s: far more than 16 run at once (a fixed 16 would need
    ~6 s); the pool grew well past its starting size."""
    with run_server(APP, "--interface", "wsgi") as server:
        started = time.monotonic()
        statuses = burst(server.port, "/sleep?s=0.5", 200)
        elapsed = time.monotonic() - started
        seen = pool(server)
    assert statuses == [200] * 200
    assert seen["max_active"] >= 100, seen
    assert seen["max_threads"] > 16, seen
    assert elapsed < 200 / 16 * 0.5, elapsed  # what a fixed pool of 16 would take at best


def test_pool_does_not_grow_under_cpu_load() -> None:
    """16 clients keep a computing view busy: the pool stays at ≤ 2x the CPUs."""
    with run_server(APP, "--interface", "wsgi") as server:
        pool(server, reset=True)
        stop_at = time.monotonic() + 1.5
        failures: list[int] = []

        def client() -> None:
            with httpx.Client(base_url=server.url, timeout=20) as http:
                while time.monotonic() < stop_at:
                    status = http.get("/spin?s=0.02").status_code
                    if status != 200:
                        failures.append(status)

        clients = [threading.Thread(target=client) for _ in range(16)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=30)
        seen = pool(server)
    assert not failures
    assert seen["max_threads"] <= 2 * CPUS, seen
    assert seen["threads"] <= 2 * CPUS, seen


def test_pool_shrinks_when_idle_and_leaks_no_threads() -> None:
    with run_server(APP, "--interface", "wsgi", "--threads-idle-timeout", "0.3") as server:
        pid = server.proc.pid
        pool(server)
        idle_tasks = tasks(pid)
        for _ in range(2):  # grow and shrink twice: the second time ends where the first did
            assert burst(server.port, "/sleep?s=0.3", 60) == [200] * 60
            assert pool(server)["max_threads"] > CPUS
            assert wait_for(lambda: tasks(pid) <= idle_tasks + CPUS), (tasks(pid), idle_tasks)
            assert pool(server, reset=True)["threads"] <= CPUS
        assert tasks(pid) <= idle_tasks + CPUS


def test_pool_and_its_queue_are_bounded() -> None:
    """At most --threads-max threads; beyond them, --threads-queue requests wait, the rest get 503."""
    args = ("--interface", "wsgi", "--threads-max", "8", "--threads-queue", "20")
    with run_server(APP, *args) as server:
        statuses = burst(server.port, "/sleep?s=0.3", 40)
        seen = pool(server)
    assert sorted(statuses) == [200] * 28 + [503] * 12
    assert seen["max_active"] == 8, seen
    assert seen["max_threads"] <= 8, seen


def test_fixed_pool_keeps_its_size_under_io_load() -> None:
    with run_server(APP, "--interface", "wsgi", "--threads", "4") as server:
        assert burst(server.port, "/sleep?s=0.1", 20) == [200] * 20
        seen = pool(server)
    assert seen["max_active"] == 4 and seen["threads"] == 4, seen


def test_threads_option_spellings() -> None:
    from palfrey import Config
    from palfrey.config import ConfigError

    assert Config("a:b").threads == 0  # auto, the adaptive pool
    assert Config("a:b", threads="AUTO").threads == 0
    assert Config("a:b", threads=8).threads == 8
    with pytest.raises(ConfigError, match="--threads"):
        Config("a:b", threads="many")
    with pytest.raises(ConfigError, match="--threads"):
        Config("a:b", threads=-1)


def test_pool_accounting_in_process() -> None:
    """Jobs submitted faster than a fixed pool runs them all run once; its counters settle at idle."""
    from palfrey.interfaces.wsgi_pool import ThreadPool, pool_stats

    pool = ThreadPool(3, name="unit-pool")
    done = threading.Semaphore(0)
    ran: list[int] = []
    for index in range(200):
        assert pool.submit(lambda index=index: (ran.append(index), done.release()))
    for _ in range(200):
        assert done.acquire(timeout=10)
    assert sorted(ran) == list(range(200))
    assert wait_for(lambda: pool.idle == 3 and pool.queued == 0)
    stats = pool_stats()
    assert stats is not None and stats["wsgi_threads"] >= 3
    pool.shutdown()
    assert wait_for(lambda: not any(t.name.startswith("unit-pool") for t in threading.enumerate()))


def test_pool_metrics() -> None:
    """Pool size, busy threads, queue length and growth events are in the metrics endpoint."""
    from prometheus_client.parser import text_string_to_metric_families

    args = ("--interface", "wsgi", "--metrics", "--metrics-bind", "127.0.0.1:0", "--no-access-log")
    with run_server(APP, *args) as server:
        url = server.wait_for_line(r"Metrics on (http://\S+/metrics)").group(1)
        assert burst(server.port, "/sleep?s=0.3", 60) == [200] * 60
        text = httpx.get(url, timeout=10).text
    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("palfrey_wsgi")
    }
    assert values["palfrey_wsgi_threads_grown_total"] > 0, values
    assert values["palfrey_wsgi_threads"] > CPUS, values  # idle timeout (10 s) not reached yet
    assert values["palfrey_wsgi_queued"] == 0, values
    assert values["palfrey_wsgi_threads_busy"] >= 0, values
    assert values["palfrey_wsgi_queue_full_responses_total"] == 0, values


def test_switch_interval_follows_a_large_pool_and_comes_back() -> None:
    """Past 64 threads the worker's GIL switch interval grows with the pool (hundreds of threads
    waking every 5 ms to look at the GIL is what collapsed a worker under a 2,000-connection burst);
    as the pool shrinks back it returns to what it was."""
    args = ("--interface", "wsgi", "--threads-idle-timeout", "0.3")
    with run_server(APP, *args) as server:
        found = pool(server)["switch"]
        assert burst(server.port, "/sleep?s=0.5", 300) == [200] * 300
        grown = pool(server)
        assert grown["max_threads"] > 128, grown
        assert found < grown["switch"] <= 0.05, (found, grown)
        assert wait_for(lambda: pool(server)["threads"] <= CPUS), pool(server)
        assert pool(server)["switch"] == found
