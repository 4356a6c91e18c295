"""The app side of the WebSocket cycle: the ASGI `receive`/`send` pair, the handshake answers
(101, 403, 500, 503, the `websocket.http.response` extension) and running the app.

`WebSocketProtocol` (`protocol.py`) is the connection side; this mixin holds no state of its own
and is split out only to keep each module to one job.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any

from palfrey.http.response import error_response
from palfrey.websocket.upgrade import response_head, switching_protocols

if TYPE_CHECKING:
    from palfrey.server.state import ServerState
    from palfrey.websocket.engine import Engine
    from palfrey.websocket.settings import WebSocketSettings

logger = logging.getLogger("palfrey.error")

# Phases of a connection.
CONNECTING, RESPONSE, OPEN, CLOSING, DONE = range(5)
_VALID_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


class ClientDisconnected(OSError):
    """`websocket.send` on a connection the client has closed (ASGI: an OSError subclass)."""


class WebSocketASGI:
    """ASGI messages in and out; the connection-side methods it calls live in WebSocketProtocol."""

    __slots__ = ()

    if TYPE_CHECKING:
        state: ServerState
        settings: WebSocketSettings
        loop: asyncio.AbstractEventLoop
        engine: Engine
        transport: Any
        scope: dict[str, Any]
        phase: int
        accept_key: str
        extensions: str | None
        accepted: bool
        connect_sent: bool
        disconnected: bool
        close_code: int
        close_reason: str
        sent_close: int | None
        app_closed: bool
        shutdown_code: int | None
        queue: deque[dict[str, Any]]
        waiter: asyncio.Future[None] | None
        read_paused: bool
        write_paused: bool
        pending: bytes
        response_head_pending: bool
        response_status: int
        response_headers: Any
        response_sent: int
        start_time: float

        def _feed(self, data: bytes) -> None: ...
        def _write(self, chunks: list[bytes]) -> None: ...
        def _end(self) -> None: ...
        def _close(self, code: int, reason: str) -> None: ...
        def _resume_reading(self) -> None: ...
        async def _drain(self) -> None: ...
        def _start_pings(self) -> None: ...
        def shutdown(self) -> None: ...

    def _http_error(
        self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        state = self.state
        response = error_response(status, message, state.default_headers(False, False))
        if headers:
            head, _, body = response.partition(b"\r\n")
            response = head + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + body
        self._log(status, len(message))
        if not self.transport.is_closing():
            self.transport.write(response)
        self._end()

    def _log(self, status: int, sent: int) -> None:
        state = self.state
        state.total_requests += 1
        if state.access_log is not None:
            duration = int((perf_counter() - self.start_time) * 1e9)
            state.access_log.log(self.scope, status, self.response_headers, sent, duration)
        if state.on_request_done is not None:
            state.on_request_done()

    # The ASGI callables

    async def receive(self) -> dict[str, Any]:
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        queue = self.queue
        while not queue and not self.disconnected:
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if queue:
            message = queue.popleft()
            if self.read_paused and len(queue) < self.settings.max_queue and self.phase != CONNECTING:
                self._resume_reading()
            return message
        return {"type": "websocket.disconnect", "code": self.close_code, "reason": self.close_reason}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        phase = self.phase
        if phase == CONNECTING:
            if self.disconnected:  # the client left before the handshake was answered
                if kind == "websocket.send":
                    raise ClientDisconnected("The WebSocket client has disconnected")
                return  # dropped quietly, as HTTP sends after a disconnect are
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self.response_status = 403
                self._http_error(403, "Forbidden")
            elif kind == "websocket.http.response.start":
                self.response_head_pending = True  # the head is written with the first body message
                self.response_status = message["status"]
                self.response_headers = message.get("headers", ())
                self.phase = RESPONSE
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start', but got '{kind}'."
                )
        elif phase == RESPONSE:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body', but got '{kind}'.")
            await self._response_body(message)
        elif not self.accepted:
            raise RuntimeError(f"Unexpected ASGI message '{kind}': the handshake was already answered.")
        elif kind == "websocket.send":
            if self.app_closed:
                raise RuntimeError(
                    "Unexpected ASGI message 'websocket.send', after sending 'websocket.close'."
                )
            if self.disconnected or self.sent_close is not None:
                raise ClientDisconnected("The WebSocket connection is closed")
            data = message.get("bytes")
            if data is not None:
                self._write(self.engine.send_bytes(data))
            else:
                text = message.get("text")
                if text is None:
                    raise RuntimeError("'websocket.send' needs 'bytes' or 'text'.")
                self._write(self.engine.send_text(text))
            if self.write_paused:
                await self._drain()
        elif kind == "websocket.close":
            if not self.disconnected and self.sent_close is None:  # else: already closing, nothing to do
                code = message.get("code") or 1000
                if code not in _VALID_CODES and not 3000 <= code <= 4999:
                    raise RuntimeError(f"Invalid WebSocket close code {code!r}")
                self.app_closed = True
                self._close(code, message.get("reason") or "")
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' after 'websocket.accept'.")

    def _accept(self, message: dict[str, Any]) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and subprotocol not in self.scope["subprotocols"]:
            raise RuntimeError(f"Subprotocol {subprotocol!r} was not offered by the client")
        head = switching_protocols(
            self.state, self.accept_key, self.extensions, subprotocol, message.get("headers") or ()
        )
        self.transport.write(head)
        self.accepted = True
        self.phase = OPEN
        self._log(101, 0)
        if self.state.metrics is not None:
            self.state.metrics.ws_opened()  # ws_closed() in connection_lost
        self._start_pings()
        pending = self.pending
        self.pending = b""
        self._resume_reading()
        if pending:
            self._feed(pending)
        if self.shutdown_code is not None and self.phase == OPEN and not self.disconnected:
            self.shutdown()

    async def _response_body(self, message: dict[str, Any]) -> None:
        if self.disconnected:
            return
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        transport = self.transport
        if self.response_head_pending:
            self.response_head_pending = False  # the head goes out with the first body message
            length = None if more_body else len(body)
            transport.write(
                response_head(self.state, self.response_status, self.response_headers, length) + body
            )
        elif body:
            transport.write(body)
        self.response_sent += len(body)
        if not more_body:
            self._log(self.response_status, self.response_sent)
            self._end()
        elif self.write_paused:
            await self._drain()

    # Running the app

    async def run(self, app: Any) -> None:
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            self._app_failed(exc)
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
            return
        if result is not None:
            logger.error("ASGI callable should return None, but returned %r.", result)
        phase = self.phase
        if phase == CONNECTING and not self.disconnected:
            self.response_status = 403  # returned without accepting: the handshake is refused
            self._http_error(403, "Forbidden")
        elif phase == RESPONSE:
            logger.error("ASGI callable returned without completing response.")
            self.transport.close()
        elif phase == OPEN and not self.disconnected:
            self._close(1000, "")

    def _app_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, asyncio.CancelledError):
            logger.error("Exception in ASGI application\n", exc_info=exc)
        phase = self.phase
        if self.transport.is_closing():
            return
        if phase == CONNECTING or (phase == RESPONSE and self.response_head_pending):
            if not self.disconnected:
                self.response_headers = ()
                self._http_error(500, "Internal Server Error")
        elif phase == RESPONSE:
            self.transport.close()  # the response began: closing is the only way to say it failed
        elif phase == OPEN and not self.disconnected:
            self._close(1011, "")
