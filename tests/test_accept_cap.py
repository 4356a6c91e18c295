"""The per-worker connection cap (palfrey/server/accept.py, `room`): a WSGI worker that has no room
for more connections leaves new ones to the other workers sharing the listener, and a worker that no
other takes them from (alone, or the others stuck) still accepts them.

End to end with real workers on a shared socket: connections opened at once, each then sending a
request that holds a thread, the way wrk's keep-alive connections do. Plus the Acceptor in-process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from palfrey.server.accept import HOLD, OVERFLOW_LOOKS, Acceptor
from tests.master_support import ready_pids
from tests.support import read_response, run_server

APP = "tests.apps.wsgi_pool_app:app"


def blocking_requests(port: int, count: int, seconds: float) -> list[tuple[int, str]]:
    """Open `count` connections at once, then send `/sleep` on each: (status, serving pid) per request."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(count)]
    try:
        for sock in socks:
            sock.sendall(f"GET /sleep?s={seconds} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        results = []
        for sock in socks:
            status, headers, _ = read_response(sock, timeout=20)
            results.append((status, headers.get("x-pid", "")))
        return results
    finally:
        for sock in socks:
            sock.close()


def test_two_workers_split_connections_at_the_cap() -> None:
    """--threads-max 6, 2 workers, 12 connections holding a thread each: 6 per worker, all 200.
    Without the cap, whichever worker wakes first takes most of the burst and queues the rest."""
    args = ("--interface", "wsgi", "--workers", "2", "--threads-max", "6", "--no-access-log")
    with run_server(APP, *args) as server:
        pids = ready_pids(server)
        for _ in range(3):  # three bursts: the distribution is not a lucky one
            results = blocking_requests(server.port, 12, 0.3)
            assert [status for status, _ in results] == [200] * 12, results
            served = Counter(pid for _, pid in results)
            assert sorted(served.values()) == [6, 6], served
            assert set(served) <= {str(pid) for pid in pids}


def test_a_lone_worker_accepts_past_its_cap() -> None:
    """One process, --threads-max 4, 16 blocking connections: nobody else reads the listener, so the
    server has no cap at all (the extra requests wait for a thread at once) and answers all of them.
    The overflow path of a worker that does have siblings is the stuck-sibling test below."""
    args = ("--interface", "wsgi", "--threads-max", "4", "--no-access-log")
    with run_server(APP, *args) as server:
        results = blocking_requests(server.port, 16, 0.2)
    assert [status for status, _ in results] == [200] * 16, results


def test_a_full_worker_takes_over_when_the_other_is_stuck() -> None:
    """2 workers, one SIGSTOPped (stuck): the other, at its cap of 4, still takes all 12 connections
    (they keep waiting in the backlog through five looks: nobody else will) and answers them."""
    args = ("--interface", "wsgi", "--workers", "2", "--threads-max", "4", "--no-access-log")
    with run_server(APP, *args) as server:
        stuck, live = ready_pids(server)
        os.kill(stuck, signal.SIGSTOP)
        try:
            results = blocking_requests(server.port, 12, 0.2)
        finally:
            os.kill(stuck, signal.SIGCONT)
    assert results == [(200, str(live))] * 12, results


def run_until(loop: asyncio.AbstractEventLoop, condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Run the loop in HOLD/5 steps until `condition` holds (bounded)."""
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        loop.run_until_complete(asyncio.sleep(HOLD / 5))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_acceptor_holds_while_full_and_overflows_after_five_looks(loop: asyncio.AbstractEventLoop) -> None:
    """In-process: no room stops reading the listener; a connection waiting through OVERFLOW_LOOKS looks
    is taken anyway (counted as overflow); with room again the listener is read again."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    room = [0]
    acceptor = Acceptor(loop, [listener], asyncio.Protocol, backlog=8, room=lambda: room[0])
    acceptor.start()
    clients = []
    try:
        acceptor._accept(listener)
        assert not acceptor.reading and acceptor.hold is not None
        clients.append(socket.create_connection(listener.getsockname(), timeout=5))
        for look in range(1, OVERFLOW_LOOKS):
            run_until(loop, lambda look=look: acceptor.waited == look)  # seen waiting, not taken
            assert acceptor.overflowed == 0
        run_until(loop, lambda: acceptor.overflowed == 1)  # the last look takes it
        assert not acceptor.reading and acceptor.waited == 0
        room[0] = 5
        run_until(loop, lambda: acceptor.reading)
        assert acceptor.hold is None
        clients.append(socket.create_connection(listener.getsockname(), timeout=5))
        loop.run_until_complete(asyncio.sleep(0.05))
        assert acceptor.overflowed == 1  # taken the ordinary way
    finally:
        acceptor.close()
        for client in clients:
            client.close()
        for task in list(acceptor.pending):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
