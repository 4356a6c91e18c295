"""The connection side of the WebSocket cycle, shared by both engines: one asyncio.Protocol per
WebSocket connection.

It takes the transport over from `HttpProtocol` after an upgrade head and owns everything about the
connection rather than frames or ASGI messages: the received-message queue (reading pauses when
`--ws-max-queue` messages wait, and while the app has not accepted), write back-pressure (`send`
waits while the transport buffer is full), message assembly and `--ws-max-size`, the closing
handshake, pings and their timeout (driven by the server's once-per-tick sweep through `deadline` /
`check_deadline`, no timer per connection) and shutdown (close 1001, or 1012 when the worker is being
replaced). The app side (`receive`/`send`) is `asgi.WebSocketASGI`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any

from palfrey.http.flow import WriteFlow
from palfrey.websocket.asgi import CLOSING, CONNECTING, DONE, OPEN, ClientDisconnected, WebSocketASGI
from palfrey.websocket.engine import CLOSE, DATA, FAIL, PONG, HandshakeError

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

logger = logging.getLogger("palfrey.error")

INF = float("inf")
CLOSE_TIMEOUT = 5.0  # seconds to wait for the client's side of a closing handshake
READ_AHEAD = 65536  # bytes taken in before the app accepts; then reading pauses
_NONE, _PING, _PONG, _CLOSE = range(4)
GOING_AWAY, SERVICE_RESTART = 1001, 1012

__all__ = ["ClientDisconnected", "WebSocketProtocol"]


class WebSocketProtocol(WriteFlow, WebSocketASGI, asyncio.Protocol):
    """One WebSocket connection, from the validated handshake to the closed socket."""

    __slots__ = (
        "accept_key",
        "accepted",
        "app_closed",
        "close_code",
        "close_reason",
        "close_received",
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
        "response_head_pending",
        "response_headers",
        "response_sent",
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
        self.phase = CONNECTING
        self.accept_key = ""
        self.extensions: str | None = None
        self.accepted = False
        self.connect_sent = False
        self.disconnected = False
        self.close_code = 1006  # what websocket.disconnect reports
        self.close_reason = ""
        self.close_received = False  # the client's close frame arrived: it will send nothing more
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
        self.response_head_pending = False
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
        if phase in (OPEN, CLOSING):
            self._feed(data)
        elif phase == CONNECTING:
            self.pending += data  # frames sent ahead of the 101: kept for after the accept
            if len(self.pending) > READ_AHEAD:
                self._pause_reading()
        # RESPONSE / DONE: input is discarded

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost reports the disconnect

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        state.connections.discard(self)
        if self.accepted and state.metrics is not None:
            state.metrics.ws_closed()
        self.phase = DONE
        self.deadline = INF
        self._disconnect(self.sent_close or 1006, "")
        self.release_drain_waiters()
        if state.draining:
            state.check_idle()

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
                if self.phase == DONE:
                    return  # failed by the server (too big, bad UTF-8): the engine's output is moot
            elif kind == PONG:
                if event[1] == self.ping_payload:
                    self.ping_payload = None
                    if self.deadline_kind == _PONG:
                        self._set_deadline(
                            _PING, self.ping_sent + self.settings.ping_interval - self.loop.time()
                        )
            elif kind == CLOSE:
                self.close_received = True
                self._disconnect(event[1], event[2])
            elif kind == FAIL:
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
        if len(queue) >= self.settings.max_queue and self.phase == OPEN:
            self._pause_reading()  # the app is behind: TCP holds the rest
        self._wake()

    # Writing and closing

    def _write(self, chunks: list[bytes]) -> None:
        transport = self.transport
        if self.phase == DONE or transport.is_closing():
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
        """The server is done with the connection. After a complete closing handshake the client
        sends nothing more: close. Otherwise shut the write side, read and discard until the client
        closes or CLOSE_TIMEOUT passes: closing with unread input would reset the connection and
        could destroy what was just written (a 1009 close frame, an HTTP 403)."""
        if self.phase == DONE:
            return
        self.phase = DONE
        transport = self.transport
        if transport.is_closing():
            return
        if self.close_received or not transport.can_write_eof():  # (TLS cannot half-close)
            transport.close()
            return
        transport.write_eof()
        if self.read_paused:
            self.read_paused = False
            transport.resume_reading()
        self._set_deadline(_CLOSE, CLOSE_TIMEOUT)

    def _close(self, code: int, reason: str) -> None:
        """Start the closing handshake from the server side."""
        if len(reason) > 30:  # a close frame holds 123 bytes of reason: cut at a character boundary
            reason = reason.encode("utf-8")[:123].decode("utf-8", "ignore")
        self.sent_close = code
        self.phase = CLOSING
        self._write(self.engine.send_close(code, reason))
        if self.phase == CLOSING:
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
        if self.write_paused and self.phase != DONE and not self.transport.is_closing():
            waiter = self.loop.create_future()
            self.drain_waiters.append(waiter)
            await waiter

    # Deadlines (the server's sweep), shutdown

    def _set_deadline(self, kind: int, timeout: float) -> None:
        self.deadline_kind = kind
        self.deadline = self.loop.time() + timeout

    def _start_pings(self) -> None:
        interval = self.settings.ping_interval
        if interval is not None:
            self._set_deadline(_PING, interval)

    def check_deadline(self, now: float) -> None:
        if now < self.deadline:
            return
        kind = self.deadline_kind
        self.deadline = INF
        self.deadline_kind = _NONE
        settings = self.settings
        if kind == _PING:
            if self.phase != OPEN or self.disconnected:
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
        if self.phase == CONNECTING:
            self.shutdown_code = code  # applied as soon as the app accepts
        elif self.phase == OPEN and not self.disconnected:
            self._close(code, "Server restart" if restarting else "Server shutdown")
