"""The HTTP/1.1 connection: one asyncio.Protocol for both parsers.

It owns everything that is about the connection rather than the bytes: keep-alive, pipelining
(requests answered strictly in order), read and write flow control, the header/body/keep-alive
deadlines (checked by the server's once-per-tick sweep, so no timer is scheduled per request),
error responses for bad input, and graceful shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from palfrey.http.cycle import RequestCycle
from palfrey.http.flow import WriteFlow
from palfrey.http.head import BODY_NONE, Framing, ParseError, split_target
from palfrey.http.response import error_response

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

logger = logging.getLogger("palfrey.error")

INF = float("inf")
LINGER = 2.0  # seconds to keep reading (and discarding) after the last response, before closing
_NONE, _HEADER, _BODY, _KEEP_ALIVE, _LINGER, _DRAIN = range(6)
_FRESH_GRACE = 1.0  # seconds a never-used connection gets to send its request during a drain
_ASGI = {"version": "3.0", "spec_version": "2.4"}
_REASONS = {
    400: "Invalid HTTP request received.",
    408: "Request timeout.",
    414: "Request line too long.",
    431: "Request header fields too large.",
    501: "Method not implemented.",
}


class HttpProtocol(WriteFlow, asyncio.Protocol):
    """One client connection."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.loop = state.loop
        self.parser = state.new_parser(self)
        self.transport: Any = None
        self.cycle: RequestCycle | None = None  # the request being answered
        self.parsing: RequestCycle | None = None  # the request the parser is delivering body for
        self.pipeline: deque[RequestCycle] = deque()
        self.read_paused = False
        self.write_paused = False
        self.drain_waiters: list[asyncio.Future[None]] = []
        self.deadline = INF
        self.deadline_kind = _NONE
        self.closing = False
        self.discard_input = False  # the parser failed or the last response is out: ignore bytes
        self.pending_error: ParseError | None = None
        self.client: tuple[str, int] | None = None
        self.server: tuple[str, int | None] | None = None
        self.scheme = "http"
        self.root_path = state.root_path
        self.requests = 0
        self.metrics = state.metrics  # --metrics recorder, None when off (one attribute test per event)
        self.upgrade: Any = None  # the WebSocket protocol taking over after an upgrade head

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        state = self.state
        state.connections.add(self)
        if self.metrics is not None:
            self.metrics.connections += 1
        self.client = _address(transport.get_extra_info("peername"))
        self.server = _server_address(transport.get_extra_info("sockname"))
        if transport.get_extra_info("sslcontext") is not None:
            self.scheme = "https"
        self._set_deadline(_HEADER, state.timeout_request_header)
        if state.draining:
            self.close_after_response()

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        state.connections.discard(self)
        if state.draining:
            state.check_idle()
        self.closing = True
        self.deadline = INF
        for cycle in (self.cycle, self.parsing, *self.pipeline):
            if cycle is not None and not cycle.disconnected:
                cycle.disconnected = True
                cycle.wake()
        self.release_drain_waiters()

    def data_received(self, data: bytes) -> None:
        if self.metrics is not None:
            self.metrics.bytes_in += len(data)
        if self.discard_input:
            return
        if self.deadline_kind == _KEEP_ALIVE:
            self.deadline_kind = _NONE
            self.deadline = INF
        try:
            self.parser.feed(data)
        except ParseError as exc:
            self._reject(exc)
            return
        if self.parser.in_head:
            if self.deadline_kind != _HEADER and self.deadline_kind != _DRAIN:
                self._set_deadline(_HEADER, self.state.timeout_request_header)
        elif self.deadline_kind == _HEADER:
            self.deadline_kind = _NONE
            self.deadline = INF

    def eof_received(self) -> bool | None:
        return None  # close the transport: a half-closed client gets no more responses

    # Parser sink

    def on_head(
        self,
        method: bytes,
        target: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
        framing: Framing,
    ) -> None:
        state = self.state
        self.requests += 1
        if self.deadline_kind == _DRAIN:
            self.deadline_kind = _NONE  # the request is served (with Connection: close)
            self.deadline = INF
        if target[:1] == b"/":  # origin form, nearly every request: no call
            raw_path, _, query_string = target.partition(b"?")
        else:
            raw_path, query_string = split_target(target)
        try:
            path_str = raw_path.decode("ascii")
        except UnicodeDecodeError:
            raise ParseError(400, "Invalid request target") from None
        if 37 in raw_path:  # "%": an int membership test is ~10x faster than b"%" in ...
            path_str = unquote(path_str)
        root_path = self.root_path
        if (
            framing.upgrade is not None
            and state.ws is not None
            and self._start_websocket(method, version, headers, framing, path_str, raw_path, query_string)
        ):
            return
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": version,
            "server": self.server,
            "client": self.client,
            "scheme": self.scheme,
            "method": method.decode("ascii"),
            "root_path": root_path,
            "path": root_path + path_str if root_path else path_str,
            "raw_path": root_path.encode("ascii") + raw_path if root_path else raw_path,
            "query_string": query_string,
            "headers": headers,
            "state": state.lifespan_state.copy(),
        }
        if framing.forwarded and state.proxy is not None:
            state.proxy.apply(scope)
        cycle = RequestCycle(
            self,
            scope,
            keep_alive=framing.keep_alive and not self.closing,
            expect_continue=framing.expect_continue,
            more_body=framing.body != BODY_NONE,
            is_head=method == b"HEAD",
            http10=version == "1.0",
            start_time=perf_counter() if state.access_log is not None or self.metrics is not None else 0.0,
        )
        self.parsing = cycle
        if self.cycle is None:
            self._start(cycle)
        else:
            self.pipeline.append(cycle)
            self.pause_reading()  # one request ahead is enough; TCP holds the rest

    def on_body(self, data: bytes) -> None:
        cycle = self.parsing
        if cycle is not None:
            cycle.feed_body(data)
            if self.deadline_kind == _BODY:
                self._set_deadline(_BODY, self.state.timeout_request_body)

    def on_message_complete(self) -> None:
        cycle = self.parsing
        if cycle is not None:
            cycle.end_body()
            if self.deadline_kind == _BODY:
                self.deadline_kind = _NONE
                self.deadline = INF

    def on_upgrade(self, rest: bytes) -> None:
        """The parser stopped after an upgrade head; `rest` is what it received past the head."""
        websocket = self.upgrade
        if websocket is not None:
            self.upgrade = None
            self.deadline = INF
            self.state.connections.discard(self)  # the WebSocket protocol counts itself instead
            websocket.take_over(self.transport, rest, self.write_paused)

    def _start_websocket(
        self,
        method: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
        framing: Framing,
        path: str,
        raw_path: bytes,
        query_string: bytes,
    ) -> bool:
        """A WebSocket handshake: prepare the protocol that takes the connection over in on_upgrade."""
        from palfrey.websocket.upgrade import websocket_for

        websocket = websocket_for(self, method, version, headers, framing, path, raw_path, query_string)
        if websocket is None:
            return False  # not a WebSocket upgrade (or not now): served as plain HTTP, then closed
        self.upgrade = websocket
        self.parsing = None
        return True

    # Cycles

    def _start(self, cycle: RequestCycle) -> None:
        state = self.state
        self.cycle = cycle
        app = state.app
        limit = state.limit_concurrency
        if limit is not None and (len(state.connections) > limit or len(state.tasks) >= limit):
            app = _service_unavailable
            if self.metrics is not None:
                self.metrics.limited += 1
        # The task copies state.context, never the current one: a pipelined request started from
        # inside the previous request's task must not inherit its context variables.
        task = state.context.run(self.loop.create_task, cycle.run(app))
        state.tasks.add(task)
        cycle.task = task

    def response_complete(self, cycle: RequestCycle) -> None:
        """The app finished its response: log it, then move on to the next request or close."""
        state = self.state
        state.total_requests += 1
        if self.metrics is not None:
            self.metrics.response(cycle)
        if state.access_log is not None:
            state.access_log.log(
                cycle.scope,
                cycle.status,
                cycle.response_headers,
                cycle.sent,
                int((perf_counter() - cycle.start_time) * 1e9),
            )
        if state.on_request_done is not None:
            state.on_request_done()
        if self.transport.is_closing():
            return
        if cycle.more_body and cycle is self.parsing:
            # The app answered without reading the whole body: rather than wait for the rest to
            # frame the next request, close; lingering keeps the unread bytes from resetting the
            # connection before the client has read the response.
            self.linger()
            return
        if not cycle.keep_alive or self.closing:
            if self.pipeline:
                self.linger()  # requests the client sent after this one stay unanswered
            else:
                self.closing = True
                self.transport.close()
            return
        self.cycle = None
        if self.pipeline:
            self._start(self.pipeline.popleft())
            if not self.pipeline:
                self.resume_reading()
            return
        if self.pending_error is not None:
            self._reject(self.pending_error)
            return
        if self.read_paused:
            self.resume_reading()
        if not self.parser.in_head:  # _set_deadline, inlined: once per keep-alive request
            self.deadline_kind = _KEEP_ALIVE
            self.deadline = self.loop.time() + state.timeout_keep_alive

    def app_failed(self, cycle: RequestCycle, exc: BaseException | None) -> None:
        if exc is not None and not isinstance(exc, asyncio.CancelledError):
            logger.error("Exception in ASGI application\n", exc_info=exc)
            if self.metrics is not None:
                self.metrics.app_exceptions += 1
        if cycle.response_complete:
            return
        if (cycle.response_started and cycle.head_written) or cycle.disconnected:
            cycle.flush()  # what the app sent before failing still reaches the client
            self.closing = True
            if self.transport is not None:
                self.transport.close()
            return
        cycle.status = 500
        cycle.response_headers = ()
        cycle.keep_alive = False
        cycle.response_complete = True
        if not self.transport.is_closing():
            self.transport.write(
                error_response(500, "Internal Server Error", self.state.default_headers(False, False))
            )
        self.response_complete(cycle)

    # Flow control

    def pause_reading(self) -> None:
        if not self.read_paused and not self.closing:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.closing and self.pending_error is None:
            self.read_paused = False
            self.transport.resume_reading()

    def wait_for_body(self, cycle: RequestCycle) -> None:
        """The app waits for body data: let it in, and start the body deadline."""
        if cycle is self.parsing and not self.pipeline:
            self.resume_reading()
        self._set_deadline(_BODY, self.state.timeout_request_body)

    def body_consumed(self, cycle: RequestCycle) -> None:
        if self.deadline_kind == _BODY:
            self.deadline_kind = _NONE
            self.deadline = INF
        if self.read_paused and not self.pipeline and cycle is self.parsing:
            self.resume_reading()

    async def drain(self) -> None:
        if self.write_paused and not self.closing:
            waiter = self.loop.create_future()
            self.drain_waiters.append(waiter)
            await waiter

    # Deadlines, errors, shutdown

    def _set_deadline(self, kind: int, timeout: float) -> None:
        self.deadline_kind = kind
        self.deadline = self.loop.time() + timeout

    def check_deadline(self, now: float) -> None:
        """Called by the server's sweep; acts when this connection's deadline has passed."""
        if now < self.deadline:
            return
        kind = self.deadline_kind
        self.deadline = INF
        self.deadline_kind = _NONE
        if kind == _HEADER:
            if self.cycle is not None:
                self.close_after_response()  # a pipelined head is trickling in: no more requests
            elif self.parser.in_head:
                logger.debug("Request head not received in time; closing the connection")
                self._reject(ParseError(408, "Request head timeout"), log=False)
            else:
                self.closing = True  # not one byte of a request: nothing to answer
                self.transport.close()
        elif kind == _BODY:
            cycle = self.parsing
            if cycle is not None and cycle.more_body:
                logger.warning("Request body not received in time; closing the connection")
                self._reject(ParseError(408, "Request body timeout"), log=False)
        else:  # keep-alive or linger
            self.closing = True
            self.transport.close()

    def _reject(self, exc: ParseError, *, log: bool = True) -> None:
        """Answer a request the app must not see (or whose body broke off), then close.

        An error inside a request's body ends that request: the app waiting for it gets
        `http.disconnect`, and the error is the response unless the app's response has begun.
        An error in a later pipelined request waits until the requests before it are answered.
        """
        if self.metrics is not None and exc is not self.pending_error:  # a deferred error is counted once
            self.metrics.protocol_error(exc.status, exc.reason)
        broken = self.parsing
        scope = None
        if broken is not None and broken.more_body:
            scope = broken.scope
            self.parsing = None
            broken.more_body = False
            if broken is not self.cycle:
                self.pipeline.remove(broken)  # queued, never started: the error answers it
            else:
                broken.disconnected = True
                broken.wake()
                if broken.head_written:
                    logger.warning(
                        "%s (%s) from %s",
                        _REASONS.get(exc.status, _REASONS[400]),
                        exc.reason,
                        _client_text(self.client),
                    )
                    self.closing = True
                    self.discard_input = True
                    self.transport.close()
                    return
                broken.response_complete = True
                self.cycle = None
        self.discard_input = True
        if self.cycle is not None:
            self.pending_error = exc
            self.pause_reading()
            return
        message = _REASONS.get(exc.status, _REASONS[400])
        if log:
            logger.warning("%s (%s) from %s", message, exc.reason, _client_text(self.client))
        if not self.transport.is_closing():
            response = error_response(exc.status, message, self.state.default_headers(False, False))
            self.transport.write(response)
            access_log = self.state.access_log
            if access_log is not None:  # in the access log like any response, request line or not
                access_log.log(scope or self._unparsed_scope(), exc.status, [], len(response), 0)
            self.linger()

    def _unparsed_scope(self) -> dict[str, Any]:
        """What the access log needs for a request refused before its head was understood."""
        return {"type": "http", "client": self.client, "method": "-", "raw_path": b"-", "headers": []}

    def linger(self) -> None:
        """Close after what was written, without losing it to a reset.

        Closing a socket with unread input makes the kernel send RST, and a client still sending
        (an upload the app did not read, a rejected head) may then lose the response. So the write
        side is shut first and input is read and discarded until the client closes or LINGER passes.
        """
        self.closing = True
        self.discard_input = True
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
        self._set_deadline(_LINGER, LINGER)

    def close_after_response(self) -> None:
        self.closing = True

    def shutdown(self) -> None:
        """Graceful shutdown: idle connections close now, busy ones after their response.

        A connection that has not sent a single byte may have been accepted an instant ago by a
        client that is sending its first request right now; it gets a short grace (answered with
        `Connection: close`) instead of a reset that would lose that request.
        """
        self.closing = True
        if self.cycle is None or self.cycle.response_complete:
            if not self.requests and not self.parser.in_head:
                self._set_deadline(_DRAIN, min(_FRESH_GRACE, self.state.timeout_request_header))
                return
            self.transport.close()
        elif self.cycle is not None:
            self.cycle.keep_alive = False


def _client_text(client: tuple[str, int] | None) -> str:
    from palfrey.logging.access import format_client_addr  # error path only

    return format_client_addr(client)


def _address(address: Any) -> tuple[str, int] | None:
    if isinstance(address, tuple) and len(address) >= 2:
        return (str(address[0]), int(address[1]))
    return None


def _server_address(address: Any) -> tuple[str, int | None] | None:
    """The scope's `server`: (host, port) for TCP, [path, None] for a unix socket as the ASGI spec says."""
    if isinstance(address, str) and address:
        return (address, None)
    return _address(address)


async def _service_unavailable(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": b"Service Unavailable"})
