"""The connection side of a WebSocket: one asyncio.Protocol per WebSocket connection, shared by
both engines.

It takes the transport over from `HttpProtocol` after an upgrade head and owns everything about the
socket rather than ASGI messages: the engine (bytes in, events and bytes out), read pausing (while
the app has not accepted, and when the cycle's queue is full), write back-pressure (`drain_send`:
WriteFlow's `drain` bounded by `--timeout-send`), the closing handshake, pings and their timeout
(all deadlines driven by the server's once-per-tick sweep through `deadline` / `check_deadline`,
no timer per connection) and shutdown (close 1001, or 1012 when the worker is being replaced).
The app side is the `cycle.WebSocketCycle` it owns; this class implements the `cycle.Connection`
seam for it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from palfrey.http.flow import WriteFlow
from palfrey.websocket.cycle import (
    CLOSING,
    CONNECTING,
    DONE,
    OPEN,
    RESPONSE,
    ClientDisconnected,
    WebSocketCycle,
)
from palfrey.websocket.engine import CLOSE, DATA, FAIL, PONG, Engine, HandshakeError

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

logger = logging.getLogger("palfrey.error")

INF = float("inf")
CLOSE_TIMEOUT = 5.0  # seconds to wait for the client's side of a closing handshake
READ_AHEAD = 65536  # bytes taken in before the app accepts; then reading pauses
_NONE, _PING, _PONG, _CLOSE, _SEND = range(5)
GOING_AWAY, SERVICE_RESTART = 1001, 1012

__all__ = ["ClientDisconnected", "WebSocketProtocol"]


class WebSocketProtocol(WriteFlow, asyncio.Protocol):
    """One WebSocket connection, from the validated handshake to the closed socket."""

    __slots__ = (
        "accept_key",
        "close_received",
        "cycle",
        "deadline",
        "deadline_kind",
        "drain_waiters",
        "engine",
        "extensions",
        "loop",
        "pending",
        "phase",
        "ping_payload",
        "ping_sent",
        "pings",
        "read_paused",
        "send_deadline",
        "sent_close",
        "settings",
        "shutdown_code",
        "state",
        "target",
        "timer_at",
        "transport",
        "write_paused",
    )

    def __init__(self, state: ServerState, scope: dict[str, Any], target: str) -> None:
        settings = state.ws
        assert settings is not None and settings.new_engine is not None
        self.state = state
        self.settings = settings
        self.loop = state.loop
        self.target = target
        self.engine: Engine = settings.new_engine()
        self.transport: Any = None
        self.phase = CONNECTING
        self.accept_key = ""
        self.extensions: str | None = None
        self.close_received = False  # the client's close frame arrived: it will send nothing more
        self.sent_close: int | None = None  # code of the close frame the server sent
        self.shutdown_code: int | None = None
        self.drain_waiters: list[asyncio.Future[None]] = []
        self.read_paused = False
        self.write_paused = False
        self.pending = b""  # bytes received before the app accepted
        # One deadline for the server's sweep: the sooner of the timer (`deadline_kind` at `timer_at`:
        # ping, pong or close) and `send_deadline` (a send waiting on back-pressure, --timeout-send).
        self.deadline = INF
        self.deadline_kind = _NONE
        self.timer_at = INF
        self.send_deadline = INF
        self.ping_payload: bytes | None = None
        self.ping_sent = 0.0
        self.pings = 0
        self.cycle = WebSocketCycle(self, state, scope)

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
        cycle = self.cycle
        try:
            self.accept_key, self.extensions = self.engine.handshake(self.target, cycle.scope["headers"])
        except HandshakeError as exc:
            logger.debug("Invalid WebSocket handshake: %s", exc.message)
            cycle.http_error(exc.status, f"Invalid WebSocket handshake: {exc.message}", exc.headers)
            return
        if state.draining or state.at_capacity():  # --limit-concurrency: requests + WebSocket sessions
            cycle.http_error(503, "Service Unavailable")
            return
        task = state.context.run(self.loop.create_task, cycle.run(state.app))
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
                self.pause_reading()
        # RESPONSE / DONE: input is discarded

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost reports the disconnect

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        state.connections.discard(self)
        if self.cycle.accepted and state.metrics is not None:
            state.metrics.ws_closed()
        self.phase = DONE
        self.deadline = self.timer_at = self.send_deadline = INF
        self.cycle.disconnect(self.sent_close or 1006, "")
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
        cycle = self.cycle
        for event in events:
            kind = event[0]
            if kind == DATA:
                if not cycle.on_data(event[1], event[2], event[3]):
                    # too big or bad UTF-8: fail the connection; the engine's output is moot
                    self._fail(cycle.close_code, cycle.close_reason)
                    return
            elif kind == PONG:
                if event[1] == self.ping_payload:
                    self.ping_payload = None
                    interval = self.settings.ping_interval
                    if self.deadline_kind == _PONG and interval is not None:
                        self._set_deadline(_PING, self.ping_sent + interval - self.loop.time())
            elif kind == CLOSE:
                self.close_received = True
                cycle.disconnect(event[1], event[2])
            elif kind == FAIL:
                cycle.disconnect(event[1], event[2])
        if out:
            self._write(out)

    # The cycle's side of the seam (cycle.Connection)

    def is_closing(self) -> bool:
        return bool(self.transport.is_closing())

    def write_http(self, data: bytes) -> None:
        self.transport.write(data)

    def send_message(self, data: bytes | str) -> None:
        self._write(self.engine.send_text(data) if isinstance(data, str) else self.engine.send_bytes(data))

    def opened(self) -> None:
        """The 101 is out: frames flow. Bytes that arrived early are fed now; a shutdown that
        began during the handshake closes at once."""
        self.phase = OPEN
        if self.state.metrics is not None:
            self.state.metrics.ws_opened()  # ws_closed() in connection_lost
        self._start_pings()
        pending = self.pending
        self.pending = b""
        self.resume_reading()
        if pending:
            self._feed(pending)
        if self.shutdown_code is not None and self.phase == OPEN and not self.cycle.disconnected:
            self.shutdown()

    def responding(self) -> None:
        self.phase = RESPONSE

    def close_transport(self) -> None:
        self.transport.close()

    async def drain_send(self) -> bool:
        """WriteFlow's `drain()`, bounded by --timeout-send (a client that stops reading is aborted
        by the deadline sweep); False if the connection was lost instead of drained."""
        if not self.write_paused or self.phase == DONE or self.transport.is_closing():
            return True
        timeout = self.settings.send_timeout
        if timeout is None or self.send_deadline != INF:  # no limit, or another send set it already
            await self.drain()
            return not self.write_paused
        at = self.loop.time() + timeout
        self.send_deadline = at
        if at < self.deadline:
            self.deadline = at
        try:
            await self.drain()
        finally:
            # Cleared when writing resumed or the connection is gone; kept if another send still
            # waits (this one was cancelled). An earlier `deadline` left behind is re-aimed by the sweep.
            if not self.write_paused or not any(not w.done() for w in self.drain_waiters):
                self.send_deadline = INF
        return not self.write_paused

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
            self.end()

    def end(self) -> None:
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

    def start_close(self, code: int, reason: str) -> None:
        """Start the closing handshake from the server side."""
        if len(reason) > 30:  # a close frame holds 123 bytes of reason: cut at a character boundary
            reason = reason.encode("utf-8")[:123].decode("utf-8", "ignore")
        self.sent_close = code
        self.phase = CLOSING
        self._write(self.engine.send_close(code, reason))
        if self.phase == CLOSING:
            self._set_deadline(_CLOSE, CLOSE_TIMEOUT)
            self.resume_reading()  # the client's close frame must get through a full queue

    def _fail(self, code: int, reason: str) -> None:
        self.sent_close = code
        self.cycle.disconnect(code, reason)
        self._write(self.engine.fail(code, reason))
        self.end()

    # Read flow control

    def pause_reading(self) -> None:
        if not self.read_paused and not self.transport.is_closing():
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.transport.is_closing():
            self.read_paused = False
            self.transport.resume_reading()

    # Deadlines (the server's sweep), shutdown

    def _set_deadline(self, kind: int, timeout: float) -> None:
        self.deadline_kind = kind
        at = self.timer_at = self.loop.time() + timeout
        send_deadline = self.send_deadline
        self.deadline = at if at < send_deadline else send_deadline

    def _start_pings(self) -> None:
        interval = self.settings.ping_interval
        if interval is not None:
            self._set_deadline(_PING, interval)

    def check_deadline(self, now: float) -> None:
        if now < self.deadline:
            return
        settings = self.settings
        if now >= self.send_deadline:
            self.deadline = self.timer_at = self.send_deadline = INF
            logger.info(
                "WebSocket client read nothing for %gs while the app was sending; closing",
                settings.send_timeout,
            )
            self.cycle.disconnect(1006, "")  # the app's send raises, receive reports the disconnect
            self.transport.abort()  # it does not read: a close frame would never get through
            return
        if now < self.timer_at:  # the send deadline this wake-up was for has been cleared
            self.deadline = min(self.timer_at, self.send_deadline)
            return
        kind = self.deadline_kind
        self.deadline = self.send_deadline
        self.timer_at = INF
        self.deadline_kind = _NONE
        if kind == _PING:
            if self.phase != OPEN or self.cycle.disconnected:
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
        elif self.phase == OPEN and not self.cycle.disconnected:
            self.start_close(code, "Server restart" if restarting else "Server shutdown")
