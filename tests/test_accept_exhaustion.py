"""Out of file descriptors (issue 12): accepting backs off instead of spinning, and recovers.

The server runs with RLIMIT_NOFILE 128 (set in the child before palfrey starts, not in the test
process) while more idle connections than that are opened. Then, on both loops:

- the server's CPU time over a couple of seconds stays low (it used to spin on accept() errors);
- a request on a keep-alive connection opened before the exhaustion is answered;
- "Accepting paused: out of file descriptors" is logged once for the episode, with the limit;
- once the idle connections close, a new connection is served: accepting resumed by itself.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from tests.support import ServerProcess, read_response, spawn_command, stop

LIMIT = 128
IDLE = 200  # more connections than the server has descriptors
CPU_WINDOW = 2.0
REQUEST = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
PAUSED = r"Accepting paused: out of file descriptors \(EMFILE; RLIMIT_NOFILE 128\)"
LOOPS = ["asyncio"] + (["uvloop"] if sys.platform != "win32" else [])

_WRAPPER = (
    "import resource, runpy, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({LIMIT}, {LIMIT})); "
    "sys.argv = ['palfrey', *sys.argv[1:]]; "
    "runpy.run_module('palfrey', run_name='__main__', alter_sys=True)"
)


@contextmanager
def limited_server(loop: str) -> Iterator[ServerProcess]:
    pytest.importorskip("resource")
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    args = ["tests.apps.echo:app", "--host", "127.0.0.1", "--port", "0", "--loop", loop, "--no-access-log"]
    # Idle connections must stay open for the whole test: no keep-alive or header timeout closes them.
    args += ["--timeout-keep-alive", "120", "--timeout-request-header", "120"]
    server = spawn_command([sys.executable, "-c", _WRAPPER, *args])
    try:
        match = server.wait_for_line(r"Palfrey running on (\S+)", timeout=15)
        server.port = int(re.search(r":(\d+)$", match.group(1)).group(1))  # type: ignore[union-attr]
        yield server
    finally:
        stop(server)


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)


def ask(sock: socket.socket) -> int:
    sock.sendall(REQUEST)
    status, _, _ = read_response(sock, 10)
    return status


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads CPU time from /proc")
@pytest.mark.parametrize("loop", LOOPS)
def test_out_of_descriptors_backs_off_and_recovers(loop: str) -> None:
    with limited_server(loop) as server, ExitStack() as stack:
        probe = stack.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        assert ask(probe) == 200
        idle = []
        for _ in range(IDLE):  # beyond the server's limit these wait in its listen backlog
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        server.wait_for_line(PAUSED, timeout=10)

        ticks_per_s = os.sysconf("SC_CLK_TCK")
        before, start = cpu_ticks(server.proc.pid), time.monotonic()
        time.sleep(CPU_WINDOW)  # measuring a process that should be idle: there is no event to await
        used = (cpu_ticks(server.proc.pid) - before) / ticks_per_s
        wall = time.monotonic() - start
        assert used < 0.3 * wall, f"the server used {used:.2f}s of CPU in {wall:.2f}s out of descriptors"

        assert ask(probe) == 200, "an open connection was not served while out of descriptors"
        assert len(re.findall(PAUSED, server.output())) == 1, server.output()

        for sock in idle:
            sock.close()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as fresh:
            assert ask(fresh) == 200  # accepted once descriptors were free again (within the back-off)
        server.wait_for_line(r"Accepting connections again after", timeout=10)
        assert len(re.findall(PAUSED, server.output())) == 1
        assert "Traceback" not in server.output()
        assert "out of system resource" not in server.output()
