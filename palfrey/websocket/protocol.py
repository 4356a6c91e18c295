"""The ASGI WebSocket cycle, shared by both engines: one asyncio.Protocol per WebSocket connection.

It takes the transport over from `HttpProtocol` after an upgrade head and owns everything that is
about ASGI and the connection rather than frames: the connect/accept/receive/send/close/disconnect
state machine, the `websocket.http.response` extension, the received-message queue (reading pauses
when `--ws-max-queue` messages wait, and while the app has not accepted), write back-pressure (`send`
waits while the transport buffer is full), message assembly and `--ws-max-size`, pings and their
timeout (driven by the server's once-per-tick sweep through `deadline` / `check_deadline`, no timer
per connection) and shutdown (close 1001, or 1012 when the worker restarts).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any

from palfrey.http.response import error_response
from palfrey.websocket.engine import CLOSE, DATA, FAIL, PONG, HandshakeError
from palfrey.websocket.upgrade import response_head, switching_protocols

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

logger = logging.getLogger("palfrey.error")

INF = float("inf")
CLOSE_TIMEOUT = 5.0  # seconds to wait for the client's side of a closing handshake
READ_AHEAD = 65536  # bytes taken in before the app accepts; then reading pauses
_CONNECTING, _RESPONSE, _OPEN, _CLOSING, _DONE = range(5)
_NONE, _PING, _PONG, _CLOSE = range(4)
GOING_AWAY, SERVICE_RESTART = 1001, 1012
_VALID_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


class ClientDisconnected(OSError):
    """`websocket.send` on a connection the client has closed (ASGI: an OSError subclass)."""


class WebSocketProtocol(asyncio.Protocol):
    """One WebSocket connection, from the validated handshake to the closed socket."""

    __slots__ = (
        "accept_key",
        "accepted",
        "app_closed",
        "close_code",
        "close_reason",
        "connect_sent",
        "deadline",
        "deadline_kind",
        "disconnected",
        "drain_waiters",
        "engine",
        "extensions",
        "loop",
        "message",
        "message_size",
        "message_text",
        "pending",
        "phase",
        "ping_payload",
        "ping_sent",
        "pings",
        "queue",
        "read_paused",
        "response_headers",
        "response_sent",
        "response_started",
        "response_status",
        "scope",
        "sent_close",
        "settings",
        "shutdown_code",
        "start_time",
        "state",
        "target",
        "transport",
        "waiter",
        "write_paused",
    )

    def __init__(self, state: ServerState, scope: dict[str, Any], target: str) -> None:
        settings = state.ws
        assert settings is not None and settings.new_engine is not None
        self.state = state
        self.settings = settings
        self.loop = state.loop
        self.scope = scope
        self.target = target
        self.engine = settings.new_engine()
        self.transport: Any = None
        self.phase = _CONNECTING
        self.accept_key = ""
        self.extensions: str | None = None
        self.accepted = False
        self.connect_sent = False
        self.disconnected = False
        self.close_code = 1006  # what websocket.disconnect reports
        self.close_reason = ""
        self.sent_close: int | None = None  # code of the close frame the server sent
        self.app_closed = False
        self.shutdown_code: int | None = None
        self.queue: deque[dict[str, Any]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.drain_waiters: list[asyncio.Future[None]] = []
        self.read_paused = False
        self.write_paused = False
        self.pending = b""  # bytes received before the app accepted
        self.message: list[Any] = []  # pieces of a fragmented message
        self.message_size = 0
        self.message_text = False
        self.deadline = INF
        self.deadline_kind = _NONE
        self.ping_payload: bytes | None = None
        self.ping_sent = 0.0
        self.pings = 0
        self.response_started = False
        self.response_status = 0
        self.response_headers: Any = ()
        self.response_sent = 0
        self.start_time = perf_counter()

    # Hand-over from HttpProtocol

    def take_over(self, transport: Any, rest: bytes, write_paused: bool) -> None:
        """Become the transport's protocol; answer an invalid handshake, else start the app."""
        self.transport = transport
        transport.set_protocol(self)
        self.write_paused = write_paused
        state = self.state
        state.connections.add(self)
        if rest:
            self.data_received(rest)
        try:
            self.accept_key, self.extensions = self.engine.handshake(self.target, self.scope["headers"])
        except HandshakeError as exc:
            logger.debug("Invalid WebSocket handshake: %s", exc.message)
            self._http_error(exc.status, f"Invalid WebSocket handshake: {exc.message}", exc.headers)
            return
        limit = state.limit_concurrency
        if state.draining or (
            limit is not None and (len(state.connections) > limit or len(state.tasks) >= limit)
        ):
            self._http_error(503, "Service Unavailable")
            return
        task = state.context.run(self.loop.create_task, self.run(state.app))
        state.tasks.add(task)
        task.add_done_callback(state.task_done)

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase in (_OPEN, _CLOSING):
            self._feed(data)
        elif phase == _CONNECTING:
            self.pending += data  # frames sent ahead of the 101: kept for after the accept
            if len(self.pending) > READ_AHEAD:
                self._pause_reading()
        # _RESPONSE / _DONE: input is discarded

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost reports the disconnect

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        state.connections.discard(self)
        self.phase = _DONE
        self.deadline = INF
        self._disconnect(self.sent_close or 1006, "")
        for waiter in self.drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.drain_waiters.clear()
        if state.draining:
            state.check_idle()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        for waiter in self.drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.drain_waiters.clear()

    # Incoming frames

    def _feed(self, data: bytes) -> None:
        try:
            events, out = self.engine.receive(data)
        except Exception:
            logger.exception("WebSocket engine failed")
            self._fail(1011, "")
            return
        for event in events:
            kind = event[0]
            if kind == DATA:
                self._on_data(event[1], event[2], event[3])
                if self.phase == _DONE:
                    return  # failed by the server (too big, bad UTF-8): the engine's output is moot
            elif kind == PONG:
                if event[1] == self.ping_payload:
                    self.ping_payload = None
                    if self.deadline_kind == _PONG:
                        self._set_deadline(
                            _PING, self.ping_sent + self.settings.ping_interval - self.loop.time()
                        )
            elif kind in (CLOSE, FAIL):
                self._disconnect(event[1], event[2])
        if out:
            self._write(out)

    def _on_data(self, payload: Any, is_text: bool | None, fin: bool) -> None:
        size = len(payload) if type(payload) is not str or payload.isascii() else len(payload.encode())
        parts = self.message
        if not parts:
            self.message_size = 0
            if is_text is not None:
                self.message_text = is_text
        self.message_size += size
        if self.message_size > self.settings.max_size:
            self._fail(1009, "Message too big")
            return
        if not fin:
            parts.append(payload)
            return
        if parts:
            parts.append(payload)
            payload = "".join(parts) if type(payload) is str else b"".join(parts)
            self.message = []
        if self.message_text:
            if type(payload) is not str:
                try:
                    payload = payload.decode("utf-8")
                except UnicodeDecodeError:
                    self._fail(1007, "Invalid UTF-8 in text message")
                    return
            message = {"type": "websocket.receive", "text": payload}
        else:
            message = {"type": "websocket.receive", "bytes": bytes(payload)}
        queue = self.queue
        queue.append(message)
        if len(queue) >= self.settings.max_queue and self.phase == _OPEN:
            self._pause_reading()  # the app is behind: TCP holds the rest
        self._wake()

    # Writing and closing

    def _write(self, chunks: list[bytes]) -> None:
        transport = self.transport
        if self.phase == _DONE or transport.is_closing():
            return
        eof = False
        for chunk in chunks:
            if chunk:
                transport.write(chunk)
            else:
                eof = True
        if eof:
            self._end()

    def _end(self) -> None:
        """The server is done with the connection: shut its write side, read and discard until the
        client closes or CLOSE_TIMEOUT passes (closing with unread input would reset the connection
        and could destroy what was just written, e.g. a 1009 close frame)."""
        if self.phase == _DONE:
            return
        self.phase = _DONE
        transport = self.transport
        if transport.is_closing():
            return
        if not transport.can_write_eof():  # TLS cannot half-close
            transport.close()
            return
        transport.write_eof()
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        self._set_deadline(_CLOSE, CLOSE_TIMEOUT)

    def _close(self, code: int, reason: str) -> None:
        """Start the closing handshake from the server side."""
        self.sent_close = code
        self.phase = _CLOSING
        self._write(self.engine.send_close(code, reason))
        if self.phase == _CLOSING:
            self._set_deadline(_CLOSE, CLOSE_TIMEOUT)
            self._resume_reading()  # the client's close frame must get through a full queue

    def _fail(self, code: int, reason: str) -> None:
        self.sent_close = code
        self._disconnect(code, reason)
        self._write(self.engine.fail(code, reason))
        self._end()

    def _disconnect(self, code: int, reason: str) -> None:
        if not self.disconnected:
            self.disconnected = True
            self.close_code = code
            self.close_reason = reason
            self._wake()

    def _http_error(
        self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        state = self.state
        response = error_response(status, message, state.default_headers(False, False))
        if headers:
            head, _, body = response.partition(b"\r\n")
            response = head + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + body
        self._log(status, len(message))
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

    # Flow control

    def _pause_reading(self) -> None:
        if not self.read_paused and not self.transport.is_closing():
            self.read_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.read_paused and not self.transport.is_closing():
            self.read_paused = False
            self.transport.resume_reading()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _drain(self) -> None:
        if self.write_paused and self.phase != _DONE and not self.transport.is_closing():
            waiter = self.loop.create_future()
            self.drain_waiters.append(waiter)
            await waiter

    # Deadlines (the server's sweep), shutdown

    def _set_deadline(self, kind: int, timeout: float) -> None:
        self.deadline_kind = kind
        self.deadline = self.loop.time() + timeout

    def check_deadline(self, now: float) -> None:
        if now < self.deadline:
            return
        kind = self.deadline_kind
        self.deadline = INF
        self.deadline_kind = _NONE
        settings = self.settings
        if kind == _PING:
            if self.phase != _OPEN or self.disconnected:
                return
            self.pings += 1
            self.ping_payload = payload = self.pings.to_bytes(4, "big")
            self.ping_sent = now
            self._write(self.engine.send_ping(payload))
            if settings.ping_timeout is not None:
                self._set_deadline(_PONG, settings.ping_timeout)
            elif settings.ping_interval is not None:
                self._set_deadline(_PING, settings.ping_interval)
        elif kind == _PONG:
            logger.info("WebSocket client did not answer a ping within %gs; closing", settings.ping_timeout)
            self._fail(1011, "keepalive ping timeout")
            self.transport.abort()  # it does not read either: nothing more will get through
        elif kind == _CLOSE:
            self.transport.abort()

    def shutdown(self) -> None:
        """Server shutdown: close with 1001 (going away), or 1012 when the worker is being replaced."""
        restarting = self.state.restarting
        code = SERVICE_RESTART if restarting else GOING_AWAY
        if self.phase == _CONNECTING:
            self.shutdown_code = code  # applied as soon as the app accepts
        elif self.phase == _OPEN and not self.disconnected:
            self._close(code, "Server restart" if restarting else "Server shutdown")

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
            if self.read_paused and len(queue) < self.settings.max_queue and self.phase != _CONNECTING:
                self._resume_reading()
            return message
        return {"type": "websocket.disconnect", "code": self.close_code, "reason": self.close_reason}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        phase = self.phase
        if phase == _CONNECTING:
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
                self.response_started = True  # the head is written with the first body message
                self.response_status = message["status"]
                self.response_headers = message.get("headers", ())
                self.phase = _RESPONSE
            else:
                raise RuntimeError(
                    "Expected ASGI message 'websocket.accept', 'websocket.close' or "
                    f"'websocket.http.response.start', but got '{kind}'."
                )
        elif phase == _RESPONSE:
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
        self.phase = _OPEN
        self._log(101, 0)
        interval = self.settings.ping_interval
        if interval is not None:
            self._set_deadline(_PING, interval)
        pending = self.pending
        self.pending = b""
        self._resume_reading()
        if pending:
            self._feed(pending)
        if self.shutdown_code is not None and self.phase == _OPEN and not self.disconnected:
            self.shutdown()

    async def _response_body(self, message: dict[str, Any]) -> None:
        if self.disconnected:
            return
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        transport = self.transport
        if self.response_started:
            self.response_started = False  # the head goes out with the first body message
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
        if phase == _CONNECTING and not self.disconnected:
            self.response_status = 403  # returned without accepting: the handshake is refused
            self._http_error(403, "Forbidden")
        elif phase == _RESPONSE:
            logger.error("ASGI callable returned without completing response.")
            self.transport.close()
        elif phase == _OPEN and not self.disconnected:
            self._close(1000, "")

    def _app_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, asyncio.CancelledError):
            logger.error("Exception in ASGI application\n", exc_info=exc)
        phase = self.phase
        if self.transport.is_closing():
            return
        if phase == _CONNECTING or (phase == _RESPONSE and self.response_started):
            if not self.disconnected:
                self.response_headers = ()
                self._http_error(500, "Internal Server Error")
        elif phase == _RESPONSE:
            self.transport.close()  # the response began: closing is the only way to say it failed
        elif phase == _OPEN and not self.disconnected:
            self._close(1011, "")
