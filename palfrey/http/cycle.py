"""One ASGI HTTP request/response cycle, shared by both parser adapters.

The cycle owns the `receive`/`send` pair given to the app: it hands out request body data as the
parser delivers it (asking the connection to pause reading when the app falls behind), and encodes
the response: head from prepared bytes, coalesced with the first body chunk into one write,
Content-Length / chunked / close-delimited framing decided once, and the length the app promised
enforced. It records the finished request (access log, metrics) and handles an app that fails.
It asks its connection only what `contract.CycleConnection` offers, and the connection changes the
cycle only through its methods (`feed_body`, `end_body`, `disconnect`, `abort_body`, `fail`).
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Any

from palfrey.http.pathsend import FILE_MESSAGES, send_file_message
from palfrey.http.response import STATUS_LINES, error_response, status_line

if TYPE_CHECKING:
    from palfrey.http.contract import CycleConnection

logger = logging.getLogger("palfrey.error")

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
HIGH_WATER = 65536  # buffered request body bytes before reading pauses
COPY_LIMIT = 16384  # a larger body is handed to the transport beside the head, not copied after it
FLUSH_AT = 65536  # pending response bytes that are written at once rather than at the iteration's end
_NO_BODY_STATUS = frozenset((204, 304))
_CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _SERVER, _DATE = range(5)
# Response fields the server acts on; any other field costs one dict lookup.
_SPECIAL_FIELDS = {
    b"content-length": _CONTENT_LENGTH,
    b"transfer-encoding": _TRANSFER_ENCODING,
    b"connection": _CONNECTION,
    b"server": _SERVER,
    b"date": _DATE,
}


class RequestCycle:
    """State of one request: body in, response out."""

    __slots__ = (
        "body",
        "body_allowed",
        "body_delivered",
        "chunked",
        "consumed",
        "disconnected",
        "expect_continue",
        "expected_length",
        "expires",
        "flush_handle",
        "head_written",
        "http10",
        "is_head",
        "keep_alive",
        "more_body",
        "pending",
        "pending_size",
        "protocol",
        "received",
        "response_complete",
        "response_headers",
        "response_started",
        "scope",
        "sent",
        "start_time",
        "status",
        "task",
        "transport",
        "waiter",
    )

    expires: float  # --timeout-request: unset until the deadline sweep first sees the request

    def __init__(
        self,
        protocol: CycleConnection,
        scope: dict[str, Any],
        *,
        keep_alive: bool,
        expect_continue: bool,
        more_body: bool,
        is_head: bool,
        http10: bool,
        start_time: float,
    ) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.scope = scope
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        self.more_body = more_body
        self.is_head = is_head
        self.http10 = http10
        self.start_time = start_time
        self.body: list[bytes] = []
        self.received = 0  # request body bytes received so far (the connection's rate floor reads it)
        self.consumed = 0  # `received` when the app last took the buffer
        self.waiter: asyncio.Future[None] | None = None
        self.disconnected = False
        self.response_started = False
        self.response_complete = False
        self.head_written = False
        self.status = 0
        self.response_headers: Any = ()
        self.chunked = False
        self.expected_length: int | None = None
        self.sent = 0
        self.body_allowed = True
        self.body_delivered = False  # the app has had the last body message
        self.pending: list[bytes] = []  # response bytes not yet written (coalesced per iteration)
        self.pending_size = 0
        self.flush_handle: asyncio.Handle | None = None
        self.task: asyncio.Task[None] | None = None  # set by the protocol; leaves state.tasks at the end
        # `expires` (--timeout-request) is left unset here: the deadline sweep stamps it the first
        # time it sees the request (see `cycle_limits.check_timeout`), so a request costs nothing for it.

    # Fed by the connection.

    def feed_body(self, data: bytes) -> None:
        if self.response_complete:
            return  # the app answered without reading: the rest of the body is discarded
        self.body.append(data)
        self.received += len(data)
        if self.received - self.consumed > HIGH_WATER:
            self.protocol.pause_reading()
        self.wake()

    def end_body(self) -> None:
        self.more_body = False
        waiter = self.waiter  # wake(), inlined: this runs once per request
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def disconnect(self) -> None:
        """The client is gone: a waiting `receive()` returns `http.disconnect`, sends are dropped."""
        if not self.disconnected:
            self.disconnected = True
            self.wake()

    def server_draining(self) -> None:
        """The server drains: an app streaming its response while it waits in `receive()` for the
        end is woken, and `receive()` returns `http.disconnect` (its sends still go out)."""
        if self.response_started and self.body_delivered:
            self.wake()

    def abort_body(self) -> bool:
        """The request body broke off (a framing error, a deadline): the request ends here.

        The app gets `http.disconnect`. Returns whether the response had begun on the wire: then
        the connection can only close; otherwise the cycle is finished and the connection's error
        response answers the request.
        """
        self.more_body = False
        self.disconnect()
        if self.head_written:
            return True
        self.response_complete = True
        return False

    # The ASGI callables.

    async def receive(self) -> dict[str, Any]:
        if self.expect_continue:
            self.expect_continue = False
            if not self.response_started and not self.disconnected:
                self.transport.write(CONTINUE)
        # Wait for body data; once the whole body was delivered, wait for the end of the cycle
        # (the client leaving, or the response sent) and report it as a disconnect.
        while not self.body and not self.disconnected and not self.response_complete:
            if self.more_body:
                self.protocol.wait_for_body(self)
            elif not self.body_delivered:
                break
            elif self.response_started and self.protocol.state.draining:
                # A drain (TERM, HUP, recycling): a long-lived response (SSE, streaming) waiting
                # here for the end is told to end now, instead of being cut at the graceful timeout.
                return {"type": "http.disconnect"}
            self.waiter = self.protocol.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.disconnected or self.response_complete:
            return {"type": "http.disconnect"}
        chunks = self.body
        if chunks:
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self.consumed = self.received
            self.protocol.body_consumed(self)
        else:
            body = b""
        if not self.more_body:
            self.body_delivered = True
        return {"type": "http.request", "body": body, "more_body": self.more_body}

    async def send(self, message: dict[str, Any]) -> None:
        message_type = message["type"]
        if self.disconnected:
            return  # the client is gone; like uvicorn, later sends are dropped quietly
        if not self.response_started:
            if message_type != "http.response.start":
                raise RuntimeError(f"Expected ASGI message 'http.response.start', but got '{message_type}'.")
            self.response_started = True
            if self.expect_continue:
                self.expect_continue = False
                if self.more_body:
                    # The client waits for 100 Continue before it sends the body and will not get
                    # it: nobody knows whether the body will follow, so the connection is not reused.
                    self.keep_alive = False
            self.status = message["status"]
            self.response_headers = message.get("headers", ())
            return
        if self.response_complete:
            raise RuntimeError(
                f"Unexpected ASGI message '{message_type}' sent, after response already completed."
            )
        if message_type != "http.response.body":
            if message_type in FILE_MESSAGES:  # the extensions: never reached by an ordinary body
                await send_file_message(self, message)
                return
            raise RuntimeError(f"Expected ASGI message 'http.response.body', but got '{message_type}'.")
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        if not self.head_written:
            self._write_head(body, more_body)
        elif body and self.body_allowed:
            self._write_body(body)
        if not more_body:
            self._finish()
        elif self.protocol.write_paused:
            self.flush()
            await self.protocol.drain()

    # Response encoding.

    def _write_head(self, body: bytes, more_body: bool) -> None:
        status = self.status
        line = STATUS_LINES.get(status) or status_line(status)
        protocol = self.protocol
        content_length: int | None = None
        has_server = has_date = has_connection = False
        parts: list[bytes] = []
        for name, value in self.response_headers:
            kind = _SPECIAL_FIELDS.get(name.lower())
            if kind is not None:
                if kind == _CONTENT_LENGTH:
                    try:
                        content_length = int(value)
                    except ValueError:
                        raise RuntimeError(f"Invalid Content-Length {value!r} in response") from None
                elif kind == _TRANSFER_ENCODING:
                    continue  # framing is the server's job; it adds its own header below
                elif kind == _CONNECTION:
                    has_connection = True
                    if value.lower().find(b"close") != -1:
                        self.keep_alive = False
                elif kind == _SERVER:
                    has_server = True
                else:
                    has_date = True
            parts.append(b"%s: %s\r\n" % (name, value))
        app_head = b"".join(parts)
        if app_head.count(b"\n") != len(parts) or app_head.count(b"\r") != len(parts):
            raise RuntimeError("Invalid response header: line breaks are not allowed in names or values")

        state = protocol.state
        if state.draining:
            self.keep_alive = False
        extra: list[bytes] = []
        if status < 200 or status in _NO_BODY_STATUS:
            self.body_allowed = False
        elif content_length is not None:
            self.expected_length = content_length
        elif not more_body:
            if body or not self.is_head:
                extra.append(b"content-length: %d\r\n" % len(body))
        elif self.is_head:
            pass  # no body follows, so no framing header: the app gave no length to report
        elif not self.http10:
            self.chunked = True
            extra.append(b"transfer-encoding: chunked\r\n")
        else:
            self.keep_alive = False  # HTTP/1.0 has no chunked coding: the end of the body is the close
        if self.is_head:
            self.body_allowed = False
        if not has_connection:
            if not self.keep_alive:
                extra.append(b"connection: close\r\n")
            elif self.http10:
                extra.append(b"connection: keep-alive\r\n")

        defaults = (
            state.defaults if not (has_server or has_date) else state.default_headers(has_server, has_date)
        )
        head = b"".join((line, defaults, app_head, *extra, b"\r\n"))
        self.head_written = True
        if body and self.body_allowed:
            self.sent = len(body)
            if self.chunked:
                head = b"%s%x\r\n%s\r\n" % (head, len(body), body)
            elif self.expected_length is not None and self.sent > self.expected_length:
                self.transport.write(head)
                self._too_long()
            elif not more_body and self.sent > COPY_LIMIT:
                self.transport.writelines((head, body))  # no copy of a large body (writev on uvloop)
                return
            else:
                head += body
        if more_body:
            self._queue(head)  # more follows: written with the next chunks, once per iteration
        else:
            self.transport.write(head)  # a whole small response: one write

    def _write_body(self, body: bytes) -> None:
        self.sent += len(body)
        if self.chunked:
            self._queue(b"%x\r\n" % len(body))
            self._queue(body)
            self._queue(b"\r\n")
            return
        if self.expected_length is not None and self.sent > self.expected_length:
            self.flush()
            self._too_long()
        self._queue(body)

    def _queue(self, data: bytes) -> None:
        """Hold response bytes until the app yields to the loop (or enough piled up).

        An app that sends many small chunks in a row then costs one write (one syscall) instead
        of one per chunk; a streaming app that awaits between chunks still has each chunk written
        in the next loop iteration.
        """
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size >= FLUSH_AT:
            self.flush()
        elif self.flush_handle is None:
            self.flush_handle = self.protocol.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is pending, in one call."""
        handle = self.flush_handle
        if handle is not None:
            handle.cancel()
            self.flush_handle = None
        pending = self.pending
        if not pending:
            return
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self.pending_size = 0
        if not self.transport.is_closing():
            self.transport.write(data)

    def _too_long(self) -> None:
        self.keep_alive = False
        self.protocol.close_after_response()
        raise RuntimeError("Response content longer than Content-Length")

    def _finish(self) -> None:
        if self.chunked:
            self._queue(b"0\r\n\r\n")
        elif self.expected_length is not None and self.body_allowed and self.sent < self.expected_length:
            logger.error(
                "Response content shorter than Content-Length (%d of %d bytes)",
                self.sent,
                self.expected_length,
            )
            self.keep_alive = False
        if self.pending:
            self.flush()
        self.response_complete = True
        waiter = self.waiter  # wake(), inlined: an app task waiting in receive() gets http.disconnect
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        # record(), inlined: once per request
        protocol = self.protocol
        state = protocol.state
        state.total_requests += 1
        if state.metrics is not None:
            state.metrics.record(self.scope["method"], self.status, self.sent, self.start_time)
        if state.access_log is not None:
            state.access_log.log(
                self.scope,
                self.status,
                self.response_headers,
                self.sent,
                int((perf_counter() - self.start_time) * 1e9),
            )
        if state.on_request_done is not None:
            state.on_request_done()
        protocol.cycle_done(self)

    def record(self) -> None:
        """Record the finished request (plain values only), then hand the connection back."""
        protocol = self.protocol
        state = protocol.state
        state.total_requests += 1
        metrics = state.metrics
        if metrics is not None:
            metrics.record(self.scope["method"], self.status, self.sent, self.start_time)
        if state.access_log is not None:
            state.access_log.log(
                self.scope,
                self.status,
                self.response_headers,
                self.sent,
                int((perf_counter() - self.start_time) * 1e9),
            )
        if state.on_request_done is not None:
            state.on_request_done()
        protocol.cycle_done(self)

    def fail(self, exc: BaseException | None) -> None:
        """The app raised (or returned without completing its response).

        What it sent stays on the wire; if its response had not begun, the client gets a 500.
        """
        protocol = self.protocol
        state = protocol.state
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            logger.error("Exception in ASGI application\n", exc_info=exc)
            if state.metrics is not None:
                state.metrics.app_exceptions += 1
        if self.response_complete:
            return
        if (self.response_started and self.head_written) or self.disconnected:
            self.flush()  # what the app sent before failing still reaches the client
            protocol.abort_response()
            return
        self.status = 500
        self.response_headers = ()
        self.keep_alive = False
        self.response_complete = True
        self._write_error()
        self.record()

    def _write_error(self, status: int = 500, reason: str = "Internal Server Error") -> None:
        """The response for an app that failed before its response began (500), or that the server
        answers in its place (504 from --timeout-request). An HTTP/2 stream overrides this: it
        answers with HEADERS + DATA, not HTTP/1.1 bytes."""
        if not self.transport.is_closing():
            self.transport.write(
                error_response(status, reason, self.protocol.state.default_headers(False, False))
            )

    # Running the app.

    async def run(self, app: Any) -> None:
        try:
            result = await app(self.scope, self.receive, self.send)
        except BaseException as exc:
            self.fail(exc)
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                raise
            return
        finally:
            # Here rather than in a done callback: that would cost one more loop callback per request.
            self.protocol.state.task_done(self.task)
        if result is not None:
            logger.error("ASGI callable should return None, but returned %r.", result)
        if not self.response_complete and not self.disconnected:
            if self.chunked and self.protocol.state.draining:
                self._finish()  # told to end by a drain (`server_draining`): a streamed response ends cleanly
                return
            if not self.response_started:
                logger.error("ASGI callable returned without starting response.")
            else:
                logger.error("ASGI callable returned without completing response.")
            self.fail(None)
