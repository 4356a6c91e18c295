"""WebSocketProtocol + WebSocketCycle in-process, on a fake transport: the send timeout shares the
connection's one deadline with pings without losing either.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest

from palfrey.config import Config
from palfrey.server.state import ServerState
from palfrey.websocket.cycle import ClientDisconnected
from palfrey.websocket.protocol import WebSocketProtocol

pytest.importorskip("websockets")

SEND_TIMEOUT = 3.0
PING_INTERVAL = 10.0


class FakeTransport:
    """Records writes; write back-pressure is driven by the test through the protocol."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False
        self.aborted = False
        self.protocol: Any = None

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None: ...

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def open_connection(loop: asyncio.AbstractEventLoop, app: Any) -> tuple[WebSocketProtocol, FakeTransport]:
    config = Config(
        app="tests.apps.ws_apps:app",
        ws="websockets",
        timeout_send=SEND_TIMEOUT,
        ws_ping_interval=PING_INTERVAL,
        ws_ping_timeout=None,
    )
    state = ServerState(config, app, loop)
    key = base64.b64encode(b"0123456789abcdef")
    headers = [
        (b"host", b"t"),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", key),
        (b"sec-websocket-version", b"13"),
    ]
    scope = {"type": "websocket", "path": "/", "headers": headers, "subprotocols": []}
    protocol = WebSocketProtocol(state, scope, "/")
    transport = FakeTransport()
    protocol.take_over(transport, b"", False)
    return protocol, transport


def test_a_send_that_drains_in_time_keeps_the_ping_deadline(loop: asyncio.AbstractEventLoop) -> None:
    sent = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        protocol.pause_writing()  # the client's buffer is full
        await send({"type": "websocket.send", "text": "hello"})
        sent.set()
        await receive()

    protocol, transport = open_connection(loop, app)

    async def scenario() -> None:
        for _ in range(5):
            await asyncio.sleep(0)
        now = loop.time()
        assert protocol.send_deadline == pytest.approx(now + SEND_TIMEOUT, abs=0.1)
        assert protocol.deadline == protocol.send_deadline  # sooner than the ping due in 10 s
        protocol.resume_writing()
        await asyncio.wait_for(sent.wait(), 1)
        assert protocol.send_deadline == float("inf")
        protocol.check_deadline(now + SEND_TIMEOUT + 0.5)  # a wake-up for the cleared send deadline
        assert not transport.aborted
        assert protocol.deadline == protocol.timer_at == pytest.approx(now + PING_INTERVAL, abs=0.1)
        protocol.connection_lost(None)
        await asyncio.wait_for(asyncio.gather(*protocol.state.tasks), 1)  # the app sees the disconnect

    loop.run_until_complete(scenario())


def test_a_send_that_waits_too_long_aborts_and_raises(loop: asyncio.AbstractEventLoop) -> None:
    outcome: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        protocol.pause_writing()
        try:
            await send({"type": "websocket.send", "bytes": b"x" * 10})
        except ClientDisconnected as exc:
            outcome["raised"] = exc
        outcome["message"] = await receive()

    protocol, transport = open_connection(loop, app)

    async def scenario() -> None:
        for _ in range(5):
            await asyncio.sleep(0)
        protocol.check_deadline(protocol.send_deadline)
        assert transport.aborted
        protocol.connection_lost(None)  # what the transport does after abort()
        for _ in range(5):
            await asyncio.sleep(0)
        assert isinstance(outcome.get("raised"), OSError)
        assert outcome["message"] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
        await asyncio.wait_for(asyncio.gather(*protocol.state.tasks), 1)

    loop.run_until_complete(scenario())
