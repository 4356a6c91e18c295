"""HttpProtocol and RequestCycle on a fake transport: flow control in every state (a drain
included), the slow-client floor, --limit-concurrency and the protocol/cycle contract.

No sockets, no processes: each test feeds bytes to the protocol and drives the loop, so they run
in milliseconds. End-to-end versions live in test_http_drain_flow.py and test_http_slow_clients.py.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import palfrey.metrics.counters
from palfrey.config import Config
from palfrey.http.contract import CycleConnection
from palfrey.http.cycle import HIGH_WATER
from palfrey.http.protocol import HttpProtocol
from palfrey.server.state import ServerState
from tests.support import FakeTransport

PARSERS = ("httptools", "h11")
App = Callable[[Any, Any, Any], Awaitable[None]]


def make(app: App, http: str = "httptools", **settings: Any) -> tuple[HttpProtocol, FakeTransport]:
    loop = asyncio.get_running_loop()
    state = ServerState(Config(app, http=http, lifespan="off", **settings), app, loop)
    protocol = HttpProtocol(state)
    transport = FakeTransport(protocol)
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def until(condition: Callable[[], bool], what: str, turns: int = 200) -> None:
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


async def drain_server(protocol: HttpProtocol) -> None:
    """What Server._shutdown and a worker's drain do to one connection."""
    protocol.state.draining = True
    protocol.shutdown()


def upload_app(gate: asyncio.Event, seen: list[int]) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        first = await receive()
        seen.append(len(first["body"]))
        await gate.wait()
        total, more = len(first["body"]), first["more_body"]
        while more:
            message = await receive()
            total += len(message["body"])
            seen.append(len(message["body"]))
            more = message["more_body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d" % total})

    return app


def stream_app(progress: dict[str, Any], total: int, chunk: int = 65536) -> App:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while progress["sent"] < total:
            await send({"type": "http.response.body", "body": b"x" * chunk, "more_body": True})
            progress["sent"] += chunk
        await send({"type": "http.response.body", "body": b""})
        progress["done"] = True

    return app


# ----------------------------------------------------------------------------------------------------
# Flow control during a drain (issue 12, item 3)
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("http", PARSERS)
def test_upload_paused_before_a_drain_resumes_and_completes(http: str) -> None:
    async def main() -> None:
        gate, seen = asyncio.Event(), []
        protocol, transport = make(upload_app(gate, seen), http)
        total = 4 * HIGH_WATER
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % total)
        protocol.data_received(b"a" * 1024)
        await until(lambda: seen == [1024], "the app read its first chunk")
        protocol.data_received(b"b" * (2 * HIGH_WATER))
        assert not transport.reading, "reading did not pause above the high-water mark"
        await drain_server(protocol)
        gate.set()
        await until(lambda: transport.reading, "reading resumed during the drain")
        protocol.data_received(b"c" * (total - 1024 - 2 * HIGH_WATER))
        await until(lambda: b"\r\n\r\n" in transport.written, "the response")
        head, _, body = bytes(transport.written).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"connection: close" in head.lower()
        assert body == b"%d" % total
        await until(lambda: transport.closing, "the connection closes after its last response")

    asyncio.run(main())


@pytest.mark.parametrize("http", PARSERS)
def test_connection_accepted_while_draining_is_read_with_the_usual_limit(http: str) -> None:
    async def main() -> None:
        gate, seen = asyncio.Event(), []
        loop = asyncio.get_running_loop()
        app = upload_app(gate, seen)
        state = ServerState(Config(app, http=http, lifespan="off"), app, loop)
        state.draining = True
        protocol = HttpProtocol(state)
        transport = FakeTransport(protocol)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        total = 10 * 1024 * 1024
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % total)
        protocol.data_received(b"a" * 1024)
        await until(lambda: seen == [1024], "the app read its first chunk")
        fed = 1024
        while transport.reading and fed < total:
            protocol.data_received(b"b" * 65536)
            fed += 65536
        assert not transport.reading and fed <= 2 * HIGH_WATER + 65536, f"{fed} bytes read unpaused"
        gate.set()
        await until(lambda: transport.reading, "reading resumes when the app reads")

    asyncio.run(main())


@pytest.mark.parametrize("http", PARSERS)
def test_streaming_response_during_a_drain_gets_back_pressure(http: str) -> None:
    async def main() -> None:
        progress: dict[str, Any] = {"sent": 0, "done": False}
        protocol, transport = make(stream_app(progress, 64 * 1024 * 1024), http)
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await drain_server(protocol)
        await until(lambda: transport.write_paused, "the write buffer filled")
        for _ in range(50):
            await asyncio.sleep(0)
        assert transport.buffered < 4 * 65536, f"{transport.buffered} bytes buffered for a client not reading"
        assert progress["sent"] < 4 * 65536 and not progress["done"]
        while not progress["done"]:
            transport.client_reads()
            await asyncio.sleep(0)
        await until(lambda: transport.closing, "closed after the last response")

    asyncio.run(main())


# ----------------------------------------------------------------------------------------------------
# Slow clients: send timeout and request-body rate floor (issue 12)
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("http", PARSERS)
def test_send_timeout_aborts_a_client_that_stops_reading(http: str) -> None:
    async def main() -> None:
        progress: dict[str, Any] = {"sent": 0, "done": False}
        events: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await stream_app(progress, 64 * 1024 * 1024)(scope, receive, send)
            events.append((await receive())["type"])

        protocol, transport = make(app, http, timeout_send=3)
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await until(lambda: transport.write_paused, "the write buffer filled")
        now = protocol.loop.time()
        protocol.check_deadline(now + 2)  # the server's sweep, before the timeout: nothing happens
        assert not transport.aborted
        protocol.check_deadline(now + 3.1)
        assert transport.aborted, "a client that did not read for --timeout-send was kept"
        await until(
            lambda: events == ["http.disconnect"], "the app's send returned and it saw the disconnect"
        )

    asyncio.run(main())


@pytest.mark.parametrize("http", PARSERS)
def test_send_timeout_waits_behind_a_keep_alive_deadline(http: str) -> None:
    """A whole response written at once, then unread: the keep-alive close cannot finish (the buffer
    is full), so the send deadline still aborts it."""

    async def main() -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x" * 1_000_000})

        protocol, transport = make(app, http, timeout_send=30, timeout_keep_alive=5)
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await until(lambda: protocol.cycle is None, "the response completed")
        assert transport.write_paused
        now = protocol.loop.time()
        protocol.check_deadline(now + 5.1)
        assert transport.closing and not transport.aborted  # keep-alive ran out: close after the buffer
        protocol.check_deadline(now + 30.1)
        assert transport.aborted

    asyncio.run(main())


@pytest.mark.parametrize("http", PARSERS)
def test_a_body_trickling_below_the_rate_floor_gets_408(http: str) -> None:
    async def main() -> None:
        gate, seen = asyncio.Event(), []
        gate.set()
        protocol, transport = make(
            upload_app(gate, seen),
            http,
            timeout_request_body=5,
            limit_request_body_rate=100,
            limit_request_body_rate_grace=2,
        )
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        await until(lambda: protocol.deadline_kind != 0, "the app waits for the body")
        start = protocol.body_since
        protocol.data_received(b"a" * 50)  # 50 bytes: the floor moves to start + 2 + 0.5
        await until(lambda: seen == [50], "the app read the first chunk")
        protocol.check_deadline(start + 2.4)
        assert b"408" not in transport.written
        protocol.check_deadline(start + 2.6)  # the gap since the last chunk (5 s) has not run out
        assert transport.written.startswith(b"HTTP/1.1 408 "), bytes(transport.written[:60])

    asyncio.run(main())


@pytest.mark.parametrize("http", PARSERS)
def test_a_body_at_the_floor_rate_is_never_cut_by_it(http: str) -> None:
    async def main() -> None:
        gate, seen = asyncio.Event(), []
        gate.set()
        protocol, transport = make(
            upload_app(gate, seen), http, limit_request_body_rate=100, limit_request_body_rate_grace=1
        )
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        await until(lambda: protocol.deadline_kind != 0, "the app waits for the body")
        start = protocol.body_since
        for second in range(1, 11):  # 100 bytes a second, the sweep running in between
            protocol.check_deadline(start + second - 0.01)
            assert not transport.written
            protocol.data_received(b"a" * 100)
            await until(lambda second=second: sum(seen) == second * 100, "the app read the chunk")
        await until(lambda: transport.written.startswith(b"HTTP/1.1 200 "), "the response")

    asyncio.run(main())


def test_rate_floor_zero_turns_it_off() -> None:
    async def main() -> None:
        gate, seen = asyncio.Event(), []
        gate.set()
        protocol, transport = make(upload_app(gate, seen), limit_request_body_rate=0, timeout_request_body=60)
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        await until(lambda: protocol.deadline_kind != 0, "the app waits for the body")
        protocol.check_deadline(protocol.body_since + 59)
        assert not transport.written

    asyncio.run(main())


# ----------------------------------------------------------------------------------------------------
# --limit-concurrency counts work
# ----------------------------------------------------------------------------------------------------


def test_idle_connections_do_not_count_against_the_concurrency_limit() -> None:
    async def main() -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        protocol, transport = make(app, limit_concurrency=2)
        for _ in range(10):  # idle keep-alive connections
            idle = HttpProtocol(protocol.state)
            idle.connection_made(FakeTransport(idle))  # type: ignore[arg-type]
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await until(lambda: b"\r\n\r\nok" in transport.written, "the response")
        assert transport.written.startswith(b"HTTP/1.1 200 ")
        assert not protocol.state.at_capacity()

    asyncio.run(main())


def test_pipelined_requests_do_not_count_the_one_finishing() -> None:
    async def main() -> None:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        protocol, transport = make(app, limit_concurrency=1)
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * 3)
        await until(lambda: transport.written.count(b"HTTP/1.1 ") == 3, "three responses")
        assert transport.written.count(b"HTTP/1.1 200 ") == 3

    asyncio.run(main())


# ----------------------------------------------------------------------------------------------------
# The contract
# ----------------------------------------------------------------------------------------------------


def test_http_protocol_implements_the_cycle_contract() -> None:
    members = [
        name
        for name, _ in inspect.getmembers(CycleConnection)
        if not name.startswith("_") and name not in dir(object)
    ]
    members += list(CycleConnection.__annotations__)
    assert {"drain", "cycle_done", "wait_for_body", "body_consumed", "abort_response"} <= set(members)
    for name in members:
        assert hasattr(HttpProtocol, name) or name in HttpProtocol(_state()).__dict__, name


def test_metrics_recorder_does_not_know_the_http_code() -> None:
    source = inspect.getsource(palfrey.metrics.counters)
    assert "palfrey.http" not in source


def _state() -> ServerState:
    loop = asyncio.new_event_loop()
    try:
        return ServerState(Config("x:y", lifespan="off"), lambda *a: None, loop)
    finally:
        loop.close()
