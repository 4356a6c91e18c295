"""Flow control holds while a server drains (issue 12, item 3), end to end with real processes.

A TERM to a single process and a HUP under the master both put every connection in the "last
request" state. Before the split between that fact and "the transport is closing", flow control
switched off there: a paused upload never resumed, a connection that sent its request during the
drain had its whole body buffered, and a stream to a client that did not read was buffered whole.
The fake-transport versions of these cases are in test_http_connection_units.py.
"""

from __future__ import annotations

import fcntl
import select
import signal
import socket
import struct
import termios
import time

import pytest

from tests.master_support import ready_pids, wait_gone
from tests.support import HTTP_APP as APP
from tests.support import PARSERS, Conn, get, run_server, wait_event

MiB = 1024 * 1024


def vm_rss(pid: int) -> int:
    """Resident memory of `pid` in bytes, from /proc (the process may not answer HTTP any more)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def push_until_blocked(conn: Conn, body: memoryview, sent: int, seconds: float = 10.0) -> int:
    """Send from `body[sent:]` until the server stops reading (a send blocked for 0.4 s)."""
    conn.sock.setblocking(False)
    deadline = time.monotonic() + seconds
    try:
        while sent < len(body) and time.monotonic() < deadline:
            if not select.select([], [conn.sock], [], 0.4)[1]:
                break
            try:
                sent += conn.sock.send(body[sent : sent + MiB])
            except BlockingIOError:
                continue
    finally:
        conn.sock.setblocking(True)
    return sent


def read_by_server(conn: Conn, server_port: int, sent: int) -> int:
    """Bytes of the `sent` ones that the server process has read from the connection: what the
    kernel still holds on either side (the client's send queue, the server socket's receive queue,
    from /proc/net/tcp) is not in the server. Counting only `sent` would count the server socket's
    receive buffer, which the kernel sizes by itself (2.2 MB was seen for a server reading 64 KiB)."""
    unsent = int(struct.unpack("i", fcntl.ioctl(conn.sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0])
    client_port = conn.sock.getsockname()[1]
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            local, remote = fields[1].split(":"), fields[2].split(":")
            if int(local[1], 16) == server_port and int(remote[1], 16) == client_port:
                return sent - unsent - int(fields[4].split(":")[1], 16)
    raise AssertionError(f"no server-side socket for the client port {client_port}")


def upload_head(total: int) -> bytes:
    return b"POST /slow-reader HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % total


@pytest.mark.parametrize("http", PARSERS)
def test_term_drain_keeps_read_flow_control(http: str) -> None:
    """An upload paused before TERM completes with 200; a connection whose request arrives during
    the drain is read with the usual 64 KiB limit (its sender blocks, the server's memory stays
    flat)."""
    total = 8 * MiB
    body = memoryview(b"z" * total)
    with run_server(APP, "--http", http, "--workers", "1", "--no-access-log") as server:
        port, pid = server.port, server.proc.pid
        with Conn(port, timeout=15) as paused, Conn(port, timeout=15) as late:
            for conn in (paused, late):
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            paused.send(upload_head(total) + bytes(body[:4096]))
            wait_event(port, "slow-reader-waiting")
            sent_paused = push_until_blocked(paused, body, 4096)
            assert sent_paused < total, "the server read the whole upload of an app that does not read"
            # Released in 3 s by the app itself: after TERM nobody can connect to release it.
            assert get(port, "/event/set-later?name=release-reader&delay=3").status == 200
            before = vm_rss(pid)
            server.signal(signal.SIGTERM)
            server.wait_for_line("Shutting down")
            late.send(upload_head(total) + bytes(body[:4096]))  # its first bytes, during the drain
            sent_late = push_until_blocked(late, body, 4096, seconds=1.5)
            assert sent_late < total, "the server read the whole upload during the drain"
            taken = read_by_server(late, port, sent_late)
            # The 64 KiB pause point plus one read of the event loop (256 KiB for uvloop) and the
            # parser's buffer: 110-366 KB measured; without flow control, all 8 MiB.
            assert taken < MiB, f"{taken} bytes read during the drain for an app not reading"
            grown = vm_rss(pid) - before
            assert grown < 16 * MiB, f"server memory grew by {grown} bytes during the drain"
            paused.sock.sendall(body[sent_paused:])
            late.sock.sendall(body[sent_late:])
            for conn in (paused, late):
                response = conn.read_response()
                assert response.status == 200 and response.body == b"%d" % total
                assert response.header("connection") == "close"
        assert server.wait_exit(15) == 0


def test_hup_drain_keeps_write_back_pressure() -> None:
    """Under the master, a HUP drains the worker while it streams 64 MiB to a client that reads a
    little and then stops: the worker's memory stays flat, and the client, once it reads, gets every
    byte."""
    total = 64 * MiB
    # asyncio's transport copies what it buffers; uvloop keeps references, and the app sends one
    # bytes object over and over, so only asyncio would show an unbounded buffer in the RSS.
    with run_server(
        APP, "--loop", "asyncio", "--workers", "1", "--timeout-worker-healthcheck", "5", "--no-access-log"
    ) as server:
        port = server.port
        (worker,) = ready_pids(server)
        with Conn(port, timeout=20, rcvbuf=65536) as conn:
            conn.send(b"GET /big-stream?total=%d HTTP/1.1\r\nHost: t\r\n\r\n" % total)
            wait_event(port, "big-stream-blocked")
            before = vm_rss(worker)
            server.signal(signal.SIGHUP)
            server.wait_for_line(r"Shutting down", timeout=10)  # the old worker's drain has begun
            status, _ = conn.read_head()
            assert status == 200
            received = len(conn._exact(2 * MiB))  # a slow reader: some now (the server's send resumes),
            peak = before  # then nothing for a second
            for _ in range(10):  # 1 s: without back-pressure 64 MiB is buffered in a fraction of it
                time.sleep(0.1)
                peak = max(peak, vm_rss(worker))
            assert peak - before < 16 * MiB, f"the draining worker grew by {peak - before} bytes"
            received += len(conn._exact(total - received))
            assert received == total
        assert wait_gone(worker, 15), "the drained worker did not exit"
        assert get(port, "/fixed").status == 200
