"""The HTTP/1.1 connection: one asyncio.Protocol for both parsers.

It owns everything that is about the connection rather than the bytes: keep-alive, pipelining
(requests answered strictly in order), read and write flow control, the header/body/keep-alive/send
deadlines and the request-body rate floor (checked by the server's once-per-tick sweep, so no timer
is scheduled per request), error responses for bad input, and graceful shutdown. It implements
`contract.CycleConnection` for the request cycles it runs, and changes a cycle only through the
cycle's methods.

Two facts are kept apart: `last_request` (no further request will be read on this connection:
keep-alive is off, the server drains, a deadline or an error ended it) and the transport closing
(`transport.is_closing()`). Flow control reads only the second, so read pausing, write
back-pressure and drain waiters work the same on a connection that is serving its last request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from palfrey.http.cycle import RequestCycle
from palfrey.http.cycle_limits import limit_body, raised_by_sink
from palfrey.http.deadlines import (
    _BODY,
    _DRAIN,
    _HEADER,
    _KEEP_ALIVE,
    _LINGER,
    _NONE,
    INF,
    DeadlineSweep,
)
from palfrey.http.flow import WriteFlow
from palfrey.http.head import BODY_NONE, Framing, ParseError, split_target
from palfrey.http.pathsend import EXTENSIONS
from palfrey.http.response import error_response, service_unavailable

if TYPE_CHECKING:
    from palfrey.http2.h2c import Http2Options
    from palfrey.server.state import ServerState

logger = logging.getLogger("palfrey.error")

LINGER = 2.0  # seconds to keep reading (and discarding) after the last response, before closing
_FRESH_GRACE = 1.0  # seconds a never-used connection gets to send its request during a drain
_ASGI = {"version": "3.0", "spec_version": "2.4"}
_REASONS = {
    400: "Invalid HTTP request received.",
    408: "Request timeout.",
    413: "Request body too large.",
    414: "Request line too long.",
    431: "Request header fields too large.",
    501: "Method not implemented.",
}


class HttpProtocol(DeadlineSweep, WriteFlow, asyncio.Protocol):
    """One client connection."""

    # With --http2, the negotiator (http2/negotiate.py) sets this per connection: an `Upgrade: h2c`
    # request then switches the connection to HTTP/2. A class attribute, so without --http2 no
    # instance carries it.
    h2c: Http2Options | None = None

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
        self.send_deadline = INF  # set while the transport's buffer is full (the client not reading)
        self.body_since = 0.0  # the request-body rate floor: when the measurement (re)started
        self.body_mark = 0  # the measured cycle's `received` then
        self.body_gap = INF  # when the body deadline's gap since the last chunk runs out
        self.body_cycle: RequestCycle | None = None  # the request whose body is being measured
        self.last_request = False  # no further request on this connection (not: the transport closes)
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
        self.last_request = True
        self.deadline = self.send_deadline = INF
        self.deadline_kind = _NONE
        for cycle in (self.cycle, self.parsing, *self.pipeline):
            if cycle is not None:
                cycle.disconnect()
        self.release_drain_waiters()

    def data_received(self, data: bytes) -> None:
        if self.metrics is not None:
            self.metrics.bytes_in += len(data)
        if self.discard_input:
            return
        if self.deadline_kind == _KEEP_ALIVE:
            self.deadline_kind = _NONE
            self.deadline = INF
            if self.write_paused:
                self._clear_deadline()
        try:
            self.parser.feed(data)
        except ParseError as exc:
            self._reject(raised_by_sink(exc))
            return
        if self.parser.in_head:
            if self.deadline_kind != _HEADER and self.deadline_kind != _DRAIN:
                self._set_deadline(_HEADER, self.state.timeout_request_header)
        elif self.deadline_kind == _HEADER:
            self._clear_deadline()

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
            self._clear_deadline()  # the request is served (with Connection: close)
        if framing.ignored_upgrade and self.h2c is not None:
            from palfrey.http2.h2c import take_h2c

            if take_h2c(self, method, target, headers):
                return  # read on; the request becomes HTTP/2 stream 1 once its body is in
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
            "extensions": EXTENSIONS,  # pathsend and zerocopysend: one shared dict, no cost per request
        }
        if framing.forwarded and state.proxy is not None:
            state.proxy.apply(scope)
        cycle = RequestCycle(
            self,
            scope,
            keep_alive=framing.keep_alive and not self.last_request,
            expect_continue=framing.expect_continue,
            more_body=framing.body != BODY_NONE,
            is_head=method == b"HEAD",
            http10=version == "1.0",
            start_time=perf_counter() if state.access_log is not None or self.metrics is not None else 0.0,
        )
        if cycle.more_body and state.slow.body_limit is not None:  # nothing more for a bodiless request
            cycle = limit_body(cycle, framing, state.slow.body_limit)
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
                self._body_deadline()

    def on_message_complete(self) -> None:
        cycle = self.parsing
        if cycle is not None:
            cycle.end_body()
            if self.deadline_kind == _BODY:
                self._clear_deadline()

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

    def _start(self, cycle: RequestCycle, finishing: int = 0) -> None:
        """Run the app for `cycle` (`finishing`: request tasks about to end, not counted as work)."""
        state = self.state
        self.cycle = cycle
        app = state.app
        limit = state.limit_concurrency
        # --limit-concurrency counts work: request tasks and WebSocket sessions (both in
        # state.tasks), never idle keep-alive connections. See ServerState.at_capacity.
        if limit is not None and len(state.tasks) - finishing >= limit:
            app = service_unavailable
            if self.metrics is not None:
                self.metrics.limited += 1
        # The task copies state.context, never the current one: a pipelined request started from
        # inside the previous request's task must not inherit its context variables.
        task = state.context.run(self.loop.create_task, cycle.run(app))
        state.tasks.add(task)
        cycle.task = task

    def cycle_done(self, cycle: RequestCycle) -> None:
        """The cycle finished (and recorded) its response: next request, or close."""
        if self.transport.is_closing():
            return
        if cycle.more_body and cycle is self.parsing:
            # The app answered without reading the whole body: rather than wait for the rest to
            # frame the next request, close; lingering keeps the unread bytes from resetting the
            # connection before the client has read the response.
            self.linger()
            return
        if not cycle.keep_alive or self.last_request:
            if self.pipeline:
                self.linger()  # requests the client sent after this one stay unanswered
            else:
                self._close()
            return
        self.cycle = None
        if self.pipeline:
            self._start(self.pipeline.popleft(), 1)  # this cycle's task is still ending
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
            self.deadline = self.loop.time() + self.state.timeout_keep_alive

    def abort_response(self) -> None:
        """The response broke off (the app failed after it began): close after what was written."""
        self._close()

    # Flow control

    # Flow control reads whether the transport is closing, never `last_request`: a connection
    # serving its last request (a drain) still needs read pausing and write back-pressure.

    def pause_reading(self) -> None:
        if not self.read_paused and not self.transport.is_closing():
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and self.pending_error is None and not self.transport.is_closing():
            self.read_paused = False
            self.transport.resume_reading()

    def wait_for_body(self, cycle: RequestCycle) -> None:
        """The app waits for body data: let it in, and start the body deadline and rate floor."""
        if cycle is self.parsing and not self.pipeline:
            self.resume_reading()
        if cycle is not self.body_cycle:
            self.body_cycle = cycle
            self._restart_body_rate(cycle)
        self.deadline_kind = _BODY
        self._body_deadline()

    def body_consumed(self, cycle: RequestCycle) -> None:
        if self.deadline_kind == _BODY:
            self._clear_deadline()
        if self.read_paused and not self.pipeline and cycle is self.parsing:
            self.resume_reading()
            # The app held the client back: the rate floor measures the client, so it starts over.
            self._restart_body_rate(cycle)

    # Deadlines, errors, shutdown

    def _close(self) -> None:
        """No more requests, and close the transport once what was written is out."""
        self.last_request = True
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
            began = broken.abort_body()
            if broken is not self.cycle:
                self.pipeline.remove(broken)  # queued, never started: the error answers it
            else:
                if began:
                    logger.warning(
                        "%s (%s) from %s",
                        _REASONS.get(exc.status, _REASONS[400]),
                        exc.reason,
                        _client_text(self.client),
                    )
                    self.discard_input = True
                    self._close()
                    return
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
        self.last_request = True
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
        self.last_request = True

    def shutdown(self) -> None:
        """Graceful shutdown: idle connections close now, busy ones after their response.

        A connection that has not sent a single byte may have been accepted an instant ago by a
        client that is sending its first request right now; it gets a short grace (answered with
        `Connection: close`) instead of a reset that would lose that request.
        """
        self.last_request = True  # the response in progress (if any) is this connection's last
        if self.cycle is not None:
            self.cycle.server_draining()  # a streaming app waiting in receive() gets http.disconnect
        if self.cycle is None or self.cycle.response_complete:
            if not self.requests and not self.parser.in_head:
                self._set_deadline(_DRAIN, min(_FRESH_GRACE, self.state.timeout_request_header))
                return
            self.transport.close()


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
