"""The app side of a WebSocket connection: one `WebSocketCycle` per connection, owned by its protocol.

The cycle is what the app talks to: the ASGI `receive`/`send` pair, the received-message queue and
message assembly, the handshake's answers (101, 403, 500, 503 and the `websocket.http.response`
extension) and running the app. Everything about the socket (transport, engine, flow control,
deadlines, the closing handshake) belongs to the connection, `protocol.WebSocketProtocol`.

The two talk through a small explicit seam, as HTTP's RequestCycle and HttpProtocol do:

- the cycle asks the connection only what `Connection` below declares;
- the connection calls the cycle's `on_data`, `disconnect`, `http_error` and `run`, and reads its
  `accepted`, `disconnected`, `close_code` and `close_reason`.

This module imports nothing from `protocol.py`, so the dependency runs one way.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any, Protocol

from palfrey.http.response import error_response
from palfrey.websocket.handshake import response_head, switching_protocols

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

logger = logging.getLogger("palfrey.error")

# Phases of a connection (the connection's `phase`; the cycle reads it and moves it through the
# connection's methods only).
CONNECTING, RESPONSE, OPEN, CLOSING, DONE = range(5)
_VALID_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


class ClientDisconnected(OSError):
    """`websocket.send` on a connection the client has closed (ASGI: an OSError subclass)."""


class Connection(Protocol):
    """What a WebSocket cycle may ask of its connection (implemented by `WebSocketProtocol`)."""

    phase: int
    read_paused: bool
    write_paused: bool
    sent_close: int | None  # code of the close frame the server sent, None before
    accept_key: str  # from the engine's handshake validation
    extensions: str | None

    def is_closing(self) -> bool:
        """The transport is going away: nothing written now would arrive."""
        ...

    def write_http(self, data: bytes) -> None:
        """Write HTTP bytes (the 101 head, a response given instead of the upgrade)."""
        ...

    def send_message(self, data: bytes | str) -> None:
        """Frame one WebSocket message (str: text) and write it."""
        ...

    async def drain_send(self) -> bool:
        """Wait while writing is paused (at most --timeout-send); False if the connection was lost
        (or timed out) instead."""
        ...

    def opened(self) -> None:
        """The 101 is written: frames flow from now on."""
        ...

    def responding(self) -> None:
        """An HTTP response replaces the upgrade: input is discarded from now on."""
        ...

    def start_close(self, code: int, reason: str) -> None:
        """Start the closing handshake with this code."""
        ...

    def end(self) -> None:
        """The server is done with the connection (the HTTP answer is written)."""
        ...

    def close_transport(self) -> None:
        """Close at once: a response that began cannot report its failure any other way."""
        ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class WebSocketCycle:
    """One WebSocket connection as the app sees it, from `websocket.connect` to the disconnect."""

    __slots__ = (
        "accepted",
        "app_closed",
        "close_code",
        "close_reason",
        "conn",
        "connect_sent",
        "disconnected",
        "loop",
        "max_queue",
        "max_size",
        "message",
        "message_size",
        "message_text",
        "queue",
        "response_head_pending",
        "response_headers",
        "response_sent",
        "response_status",
        "scope",
        "start_time",
        "state",
        "waiter",
    )

    def __init__(self, conn: Connection, state: ServerState, scope: dict[str, Any]) -> None:
        settings = state.ws
        assert settings is not None
        self.conn = conn
        self.state = state
        self.loop = state.loop
        self.scope = scope
        self.max_queue = settings.max_queue
        self.max_size = settings.max_size
        self.accepted = False
        self.connect_sent = False
        self.disconnected = False
        self.close_code = 1006  # what websocket.disconnect reports
        self.close_reason = ""
        self.app_closed = False
        self.queue: deque[dict[str, Any]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.message: list[Any] = []  # pieces of a fragmented message
        self.message_size = 0
        self.message_text = False
        self.response_head_pending = False
        self.response_status = 0
        self.response_headers: Any = ()
        self.response_sent = 0
        self.start_time = perf_counter()

    # Called by the connection

    def on_data(self, payload: Any, is_text: bool | None, fin: bool) -> bool:
        """A piece of a message; False if the message is too big or bad UTF-8 (the caller fails
        the connection with `close_code`/`close_reason` already set)."""
        size = len(payload) if type(payload) is not str or payload.isascii() else len(payload.encode())
        parts = self.message
        if not parts:
            self.message_size = 0
            if is_text is not None:
                self.message_text = is_text
        self.message_size += size
        if self.message_size > self.max_size:
            self.disconnect(1009, "Message too big")
            return False
        if not fin:
            parts.append(payload)
            return True
        if parts:
            parts.append(payload)
            payload = "".join(parts) if type(payload) is str else b"".join(parts)
            self.message = []
        if self.message_text:
            if type(payload) is not str:
                try:
                    payload = payload.decode("utf-8")
                except UnicodeDecodeError:
                    self.disconnect(1007, "Invalid UTF-8 in text message")
                    return False
            message = {"type": "websocket.receive", "text": payload}
        else:
            message = {"type": "websocket.receive", "bytes": bytes(payload)}
        queue = self.queue
        queue.append(message)
        if len(queue) >= self.max_queue and self.conn.phase == OPEN:
            self.conn.pause_reading()  # the app is behind: TCP holds the rest
        self._wake()
        return True

    def disconnect(self, code: int, reason: str) -> None:
        """The connection is closed or closing: `receive` reports this once the queue is empty."""
        if not self.disconnected:
            self.disconnected = True
            self.close_code = code
            self.close_reason = reason
            self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def http_error(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """Answer the handshake with an HTTP error instead of the upgrade, and end the connection."""
        self.response_status = status
        response = error_response(status, message, self.state.default_headers(False, False))
        if headers:
            head, _, body = response.partition(b"\r\n")
            response = head + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in headers) + body
        self._log(status, len(message))
        conn = self.conn
        if not conn.is_closing():
            conn.write_http(response)
        conn.end()

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
            conn = self.conn
            if conn.read_paused and len(queue) < self.max_queue and conn.phase != CONNECTING:
                conn.resume_reading()
            return message
        return {"type": "websocket.disconnect", "code": self.close_code, "reason": self.close_reason}

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        conn = self.conn
        phase = conn.phase
        if phase == CONNECTING:
            if self.disconnected:  # the client left before the handshake was answered
                if kind == "websocket.send":
                    raise ClientDisconnected("The WebSocket client has disconnected")
                return  # dropped quietly, as HTTP sends after a disconnect are
            if kind == "websocket.accept":
                self._accept(message)
            elif kind == "websocket.close":
                self.http_error(403, "Forbidden")
            elif kind == "websocket.http.response.start":
                self.response_head_pending = True  # the head is written with the first body message
                self.response_status = message["status"]
                self.response_headers = message.get("headers", ())
                conn.responding()
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
            if self.disconnected or conn.sent_close is not None:
                raise ClientDisconnected("The WebSocket connection is closed")
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
                if data is None:
                    raise RuntimeError("'websocket.send' needs 'bytes' or 'text'.")
            conn.send_message(data)
            if conn.write_paused and not await conn.drain_send():
                raise ClientDisconnected("The WebSocket connection was lost while sending")
        elif kind == "websocket.close":
            if not self.disconnected and conn.sent_close is None:  # else: already closing, nothing to do
                code = message.get("code") or 1000
                if code not in _VALID_CODES and not 3000 <= code <= 4999:
                    raise RuntimeError(f"Invalid WebSocket close code {code!r}")
                self.app_closed = True
                conn.start_close(code, message.get("reason") or "")
        else:
            raise RuntimeError(f"Unexpected ASGI message '{kind}' after 'websocket.accept'.")

    def _accept(self, message: dict[str, Any]) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and subprotocol not in self.scope["subprotocols"]:
            raise RuntimeError(f"Subprotocol {subprotocol!r} was not offered by the client")
        conn = self.conn
        head = switching_protocols(
            self.state, conn.accept_key, conn.extensions, subprotocol, message.get("headers") or ()
        )
        conn.write_http(head)
        self.accepted = True
        self._log(101, 0)
        conn.opened()

    async def _response_body(self, message: dict[str, Any]) -> None:
        if self.disconnected:
            return
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        conn = self.conn
        if self.response_head_pending:
            self.response_head_pending = False  # the head goes out with the first body message
            length = None if more_body else len(body)
            conn.write_http(
                response_head(self.state, self.response_status, self.response_headers, length) + body
            )
        elif body:
            conn.write_http(body)
        self.response_sent += len(body)
        if not more_body:
            self._log(self.response_status, self.response_sent)
            conn.end()
        elif conn.write_paused:
            await conn.drain_send()

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
        conn = self.conn
        phase = conn.phase
        if phase == CONNECTING and not self.disconnected:
            self.http_error(403, "Forbidden")  # returned without accepting: the handshake is refused
        elif phase == RESPONSE:
            logger.error("ASGI callable returned without completing response.")
            conn.close_transport()
        elif phase == OPEN and not self.disconnected:
            conn.start_close(1000, "")

    def _app_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, asyncio.CancelledError):
            logger.error("Exception in ASGI application\n", exc_info=exc)
        conn = self.conn
        phase = conn.phase
        if conn.is_closing():
            return
        if phase == CONNECTING or (phase == RESPONSE and self.response_head_pending):
            if not self.disconnected:
                self.response_headers = ()
                self.http_error(500, "Internal Server Error")
        elif phase == RESPONSE:
            conn.close_transport()  # the response began: closing is the only way to say it failed
        elif phase == OPEN and not self.disconnected:
            conn.start_close(1011, "")
