"""Response writes are coalesced: chunks sent in one loop iteration leave in one write, and
chunks sent before the app waits still reach the client while it waits."""

from __future__ import annotations

import asyncio
from typing import Any

from palfrey.http.cycle import FLUSH_AT, RequestCycle
from tests.support import Conn, ServerProcess, set_event


def test_chunks_reach_the_client_while_the_app_waits(http_server: ServerProcess) -> None:
    server = http_server
    with Conn(server.port) as conn:
        conn.send(b"GET /stream-wait HTTP/1.1\r\nHost: t\r\n\r\n")
        status, headers = conn.read_head()
        assert status == 200 and ("transfer-encoding", "chunked") in headers
        # The app is now blocked on an event: both chunks must already be on the wire.
        assert conn._until(b"first|\r\n").endswith(b"6\r\n")
        assert conn._until(b"second|\r\n").endswith(b"7\r\n")
        set_event(server.port, "stream-go")
        assert conn._until(b"0\r\n\r\n") == b"4\r\nlast\r\n"
        assert conn.request("GET", "/fixed").body == b"0123456789"


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def writelines(self, data: tuple[bytes, ...]) -> None:
        self.writes.append(b"".join(data))

    def is_closing(self) -> bool:
        return False


class _State:
    draining = False
    defaults = b""
    total_requests = 0
    metrics = None
    access_log = None
    on_request_done = None

    def default_headers(self, has_server: bool, has_date: bool) -> bytes:
        return b""


class _Protocol:
    """The few things a RequestCycle asks of its connection (palfrey.http.contract.CycleConnection)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport = _Transport()
        self.state = _State()
        self.write_paused = False
        self.completed: list[RequestCycle] = []

    def cycle_done(self, cycle: RequestCycle) -> None:
        self.completed.append(cycle)


def _cycle(protocol: _Protocol) -> RequestCycle:
    scope: dict[str, Any] = {"type": "http"}
    return RequestCycle(
        protocol,  # type: ignore[arg-type]
        scope,
        keep_alive=True,
        expect_continue=False,
        more_body=False,
        is_head=False,
        http10=False,
        start_time=0.0,
    )


async def _stream(cycle: RequestCycle, chunks: list[bytes], yield_after: int | None = None) -> None:
    await cycle.send({"type": "http.response.start", "status": 200, "headers": []})
    for index, chunk in enumerate(chunks):
        await cycle.send({"type": "http.response.body", "body": chunk, "more_body": True})
        if index == yield_after:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
    await cycle.send({"type": "http.response.body", "body": b""})


def test_sixteen_chunks_in_one_iteration_are_one_write() -> None:
    async def main() -> list[bytes]:
        protocol = _Protocol(asyncio.get_running_loop())
        cycle = _cycle(protocol)
        await _stream(cycle, [b"x" * 64] * 16)
        assert protocol.completed == [cycle]
        return protocol.transport.writes

    writes = asyncio.run(main())
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n40\r\n")
    assert writes[0].endswith(b"\r\n0\r\n\r\n") and writes[0].count(b"40\r\n" + b"x" * 64) == 16


def test_a_yield_to_the_loop_flushes_what_was_sent() -> None:
    async def main() -> list[bytes]:
        protocol = _Protocol(asyncio.get_running_loop())
        await _stream(_cycle(protocol), [b"a", b"b", b"c", b"d"], yield_after=1)
        return protocol.transport.writes

    writes = asyncio.run(main())
    assert len(writes) == 2
    assert writes[0].endswith(b"1\r\na\r\n1\r\nb\r\n")
    assert writes[1] == b"1\r\nc\r\n1\r\nd\r\n0\r\n\r\n"


def test_a_large_burst_is_written_before_the_iteration_ends() -> None:
    """Pending bytes are bounded: past FLUSH_AT they are written at once, not held."""

    async def main() -> list[bytes]:
        protocol = _Protocol(asyncio.get_running_loop())
        cycle = _cycle(protocol)
        await cycle.send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"200000")]}
        )
        for _ in range(4):
            await cycle.send({"type": "http.response.body", "body": b"y" * 50000, "more_body": True})
            assert cycle.pending_size < FLUSH_AT
        await cycle.send({"type": "http.response.body", "body": b""})
        return protocol.transport.writes

    writes = asyncio.run(main())
    assert b"".join(writes).endswith(b"y" * 200000)
    assert 1 < len(writes) <= 5
