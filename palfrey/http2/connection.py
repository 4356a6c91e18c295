"""The HTTP/2 connection: frames in and out with palfrey's own engine (wire/), one request cycle per stream.

It takes a transport over from the HTTP/1.1 protocol once the connection is known to speak HTTP/2
(negotiate.py decides that) and owns everything that is about the connection: the HTTP/2 state
machine (`wire.machine.ServerMachine`, kept as `self.h2`), writing its output once per loop
iteration, the connection's flow-control window, the floods it refuses (counted by floods.py:
resets, useless frames), GOAWAY on a graceful shutdown. Each stream runs the same `RequestCycle`
as HTTP/1.1 (stream.py).

Why an own engine and not h2 or zttp: docs/architecture.md has the measurement and the reasons.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Any

from palfrey.http.pathsend import EXTENSIONS
from palfrey.http.response import service_unavailable
from palfrey.http2 import closing, deadlines, refusals
from palfrey.http2.deadlines import IDLE, INF
from palfrey.http2.floods import EARN_PER_STREAM, SMALL_DATA, FloodGuard
from palfrey.http2.request import content_length, request_scope, split_pseudo_headers
from palfrey.http2.stream import CONNECTION_SPECIFIC, H2Cycle, H2Stream
from palfrey.http2.wire import machine as m
from palfrey.http2.wire.errors import INTERNAL_ERROR, REFUSED_STREAM, H2ConnectionError

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

logger = logging.getLogger("palfrey.error")

CONNECTION_WINDOW = 16 * 1024 * 1024
LENGTH_MISMATCH = "Request body length does not match content-length"
MAX_HEADER_LIST = 65536  # decoded header bytes per request at most, whatever the head limits
LINGER = 2.0  # seconds input is read and dropped after a GOAWAY before closing (as HTTP/1.1 lingers)


class H2Protocol(asyncio.Protocol):
    """One HTTP/2 connection (after ALPN, the cleartext preface or an h2c upgrade)."""

    def __init__(
        self,
        state: ServerState,
        transport: Any,
        *,
        client: tuple[str, int] | None,
        server: tuple[str, int | None] | None,
        scheme: str,
        max_streams: int,
    ) -> None:
        self.state = state
        self.loop = state.loop
        self.transport = transport
        self.client = client
        self.server = server
        self.scheme = scheme
        self.metrics = state.metrics
        # One deadline for the server's sweep (deadlines.py): the first request's head, then
        # keep-alive or stalls; no timer per stream.
        self.deadline = self.loop.time() + state.timeout_request_header
        self.deadline_kind = IDLE
        self.paused_at = INF  # when the transport's buffer filled (the client stopped reading)
        # scope["extensions"]: pathsend and zerocopysend, plus `tls` over TLS (h2c.switch_to_h2 sets it
        # from the TLS protocol it takes over); one dict per connection, as on HTTP/1.1.
        self.extensions: dict[str, Any] = EXTENSIONS
        self.body_limit = state.slow.body_limit  # --limit-request-body
        self.streams: dict[int, H2Stream] = {}
        self.blocked: dict[int, H2Stream] = {}  # streams with output waiting for window
        self.waiting: dict[int, H2Stream] = {}  # streams whose app waits for request body
        self.write_paused = False
        self.flush_handle: asyncio.Handle | None = None
        self.goaway = False
        self.drain_by = INF  # draining with streams in flight: GOAWAY when idle, or by then (closing.py)
        self.discard_input = False  # a connection error was answered with GOAWAY: input is ignored
        self.last_stream_id = 0
        self.floods = FloodGuard(self.loop.time(), max_streams)
        self.deferred: H2Stream | None = None  # h2c: stream 1 starts once the client's preface is in
        self._defaults_src = b""
        self._defaults: list[tuple[bytes, bytes]] = []
        limits = state.limits
        self.h2 = m.ServerMachine(
            max_concurrent_streams=max_streams,
            connection_window=CONNECTION_WINDOW,
            max_header_list_size=min(limits.fields * limits.field_size, MAX_HEADER_LIST),
        )

    # Starting

    def start(self, data: bytes) -> None:
        """Prior knowledge or ALPN: send our preface, then read the client's from `data` on."""
        self.h2.initiate()
        self._register()
        if data:
            self.data_received(data)
        else:
            self.flush()

    def start_upgraded(
        self, settings: bytes, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        """h2c upgrade (RFC 7540 §3.2): the HTTP/1.1 request that asked becomes stream 1."""
        self.transport.write(
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
        )
        self.h2.initiate()
        try:  # HTTP2-Settings is base64url without padding (RFC 7540 §3.2.1)
            self.h2.upgrade(base64.urlsafe_b64decode(settings + b"=" * (-len(settings) % 4)))
        except (binascii.Error, H2ConnectionError):
            logger.debug("Unreadable HTTP2-Settings from %s: ignored", self.client)
        self._register()
        authority = b""
        fields = []
        for name, value in headers:
            if name == b"host":
                authority = value
            if name not in CONNECTION_SPECIFIC and name != b"te":
                fields.append((name, value))
        # The app starts once the client's preface arrives: a client (curl) that reads the 101 and
        # the frames after it in one buffer cannot take a large response there.
        stream = self._open(1, method, b"http", target, authority, fields, ended=True, start=False)
        if stream is not None and stream.cycle is not None:
            cycle = stream.cycle
            if body:
                cycle.feed_body(body)
            cycle.end_body()
            self.deferred = stream
        self.flush()

    def _register(self) -> None:
        state = self.state
        state.connections.add(self)
        if state.draining:
            self.shutdown()

    # asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        if self.metrics is not None:
            self.metrics.bytes_in += len(data)
        if self.discard_input:
            return
        try:
            events = self.h2.receive(data)
        except H2ConnectionError as exc:
            closing.protocol_error(self, exc)
            return
        deferred = self.deferred
        if deferred is not None:
            self.deferred = None
            if not deferred.reset:
                self._run(deferred)
        for kind, stream_id, value, end in events:
            if kind == m.REQUEST:
                self._request(stream_id, value, end)
            elif kind == m.BODY:
                self._data(stream_id, value, end)
            elif kind == m.WINDOW:
                self._window_updated(stream_id)
                if value:
                    closing.control_frame(self)  # paid for by the DATA frames we send (floods.py)
            elif kind == m.CONTROL:
                closing.control_frame(self)
            elif kind == m.RESET:
                closing.remote_reset(self, stream_id)
            elif kind == m.TRAILERS:
                self._data(stream_id, b"", True)
            elif kind == m.TOO_LARGE:
                # Over the header-list size we advertised: cut off as an HPACK bomb would be.
                closing.calm(self, "header list over the advertised size")
            elif kind == m.GOAWAY:
                closing.remote_goaway(self)
                return
            if self.discard_input or self.transport.is_closing():
                return
        self.flush()
        deadlines.rearm(self)

    def connection_lost(self, exc: Exception | None) -> None:
        state = self.state
        state.connections.discard(self)
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        for stream in self.streams.values():
            stream.reset = True
            if stream.cycle is not None:
                stream.cycle.disconnect()
            stream.release()
        self.blocked.clear()
        self.waiting.clear()
        if state.draining:
            state.check_idle()

    def pause_writing(self) -> None:
        self.write_paused = True
        self.paused_at = self.loop.time()
        deadlines.stalled(self, self.paused_at)
        for stream in self.streams.values():
            stream.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.paused_at = INF
        for stream in self.streams.values():
            if len(stream.out) <= 65536:
                stream.write_paused = False
                stream.release()

    # Requests

    def _request(self, stream_id: int, headers: list[tuple[bytes, bytes]], ended: bool) -> None:
        if self.goaway:
            self.h2.reset(stream_id, REFUSED_STREAM)
            return
        head = split_pseudo_headers(headers, self.scheme.encode())
        if head is None:
            self.last_stream_id = stream_id
            refusals.malformed(self, stream_id, "Malformed request head")
            return
        method, scheme, path, authority, fields = head
        length = content_length(fields)
        if length is not None and (length < 0 or (ended and length)):
            self.last_stream_id = stream_id
            refusals.malformed(self, stream_id, LENGTH_MISMATCH)
            return
        stream = self._open(stream_id, method, scheme, path, authority, fields, ended=ended)
        if stream is not None and length is not None:
            # Checked here, not by the machine (`expect_length`): the DATA that breaks it may be in
            # the same read as the HEADERS, decoded before this event is handled.
            stream.expected = length

    def _open(
        self,
        stream_id: int,
        method: bytes,
        scheme: bytes,
        target: bytes,
        authority: bytes,
        fields: list[tuple[bytes, bytes]],
        *,
        ended: bool,
        start: bool = True,
    ) -> H2Stream | None:
        """Build the scope and start the app for a new stream (None: the stream was refused)."""
        state = self.state
        self.last_stream_id = stream_id
        scope = request_scope(
            state, self.client, self.server, self.scheme, method, scheme, target, authority, fields
        )
        if scope is None:  # not an origin-form path, or CONNECT (no RFC 8441 tunnels)
            refusals.malformed(self, stream_id, "Invalid request target")
            return None
        scope["extensions"] = self.extensions
        stream = H2Stream(self, stream_id)
        self.floods.earned += EARN_PER_STREAM
        cycle = H2Cycle(
            stream,
            scope,
            keep_alive=True,
            expect_continue=False,
            more_body=not ended,
            is_head=method == b"HEAD",
            http10=False,
            start_time=perf_counter() if state.access_log is not None or self.metrics is not None else 0.0,
        )
        cycle.started = False
        stream.cycle = cycle
        if self.write_paused:
            stream.write_paused = True
        self.streams[stream_id] = stream
        limit = self.body_limit
        if limit is not None and not ended and refusals.content_length_over(fields, limit):
            refusals.refuse(self, stream, 413, "Request body over the limit")  # the app never runs
            return None
        if start:
            self._run(stream)
        return stream

    def _run(self, stream: H2Stream) -> None:
        """Start the app for the stream (or the 503 app, past --limit-concurrency)."""
        state = self.state
        cycle = stream.cycle
        assert cycle is not None
        app = state.app
        limit = state.limit_concurrency
        if limit is not None and len(state.tasks) >= limit:  # --limit-concurrency counts streams
            app = service_unavailable
            if self.metrics is not None:
                self.metrics.limited += 1
        task = state.context.run(self.loop.create_task, cycle.run(app))
        state.tasks.add(task)
        cycle.task = task

    def _data(self, stream_id: int, data: bytes, end: bool) -> None:
        stream = self.streams.get(stream_id)
        length = len(data)
        if 0 < length < SMALL_DATA and not end:
            closing.control_frame(self)  # a tiny DATA frame: mostly overhead (floods.py; empty: CONTROL)
        cycle = None if stream is None else stream.cycle
        if stream is not None and cycle is not None and stream.expected >= 0:
            total = cycle.received + length
            if total > stream.expected or (end and total != stream.expected):
                self._ack(stream_id, length)
                refusals.malformed(self, stream_id, LENGTH_MISMATCH)  # RFC 9113 §8.1.1
                return
        if stream is None or cycle is None or cycle.response_complete:
            self._ack(stream_id, length)  # nobody will read it: give the credit back now
            return
        if length:
            limit = self.body_limit
            if limit is not None and cycle.received + length > limit:
                self._ack(stream_id, length)
                refusals.refuse(self, stream, 413, "Request body over the limit")
                return
            cycle.feed_body(data)
            stream.unacked += length
            if not stream.read_paused:
                self.acknowledge(stream)
        if end:
            cycle.end_body()

    def acknowledge(self, stream: H2Stream) -> None:
        """Give the client back the credit for the body this stream's app has taken (or may buffer)."""
        length = stream.unacked
        if length:
            stream.unacked = 0
            self._ack(stream.stream_id, length)
            self.schedule_flush()

    def _ack(self, stream_id: int, length: int) -> None:
        if length:
            self.h2.consumed(stream_id, length)  # the connection's credit is the machine's to return

    # Responses

    def default_fields(self, has_server: bool, has_date: bool) -> list[tuple[bytes, bytes]]:
        """The server's own response fields (Date, Server, --header), parsed once per second."""
        source = self.state.default_headers(has_server, has_date)
        if source is not self._defaults_src or has_server or has_date:
            fields = [
                (name.strip(), value.strip())
                for name, _, value in (line.partition(b":") for line in source.split(b"\r\n") if line)
            ]
            if has_server or has_date:
                return fields
            self._defaults_src = source
            self._defaults = fields
        return list(self._defaults)

    def send_head(self, stream: H2Stream, status: int, fields: list[tuple[bytes, bytes]], end: bool) -> None:
        if stream.stream_id not in self.h2.streams:  # reset meanwhile (by the client or a refusal)
            stream.reset = True
            return
        self.h2.send_headers(stream.stream_id, [(b":status", b"%d" % status), *fields], end_stream=end)
        if end:
            stream.ended = True
            self.schedule_flush()
        else:
            self.push(stream)

    def push(self, stream: H2Stream) -> None:
        """Send what the windows admit of the stream's queued output (and END_STREAM after it)."""
        if stream.reset or stream.ended:
            return
        conn = self.h2
        stream_id = stream.stream_id
        out = stream.out
        queued = len(out)
        if stream_id not in conn.streams:
            stream.reset = True
            out.clear()
        else:
            window = conn.sendable(stream_id)
            if out and window > 0:
                size = min(window, len(out))
                chunk = bytes(out[:size])
                del out[:size]
                end = stream.end_queued and not out
                conn.send_data(stream_id, chunk, end)
                frame = conn.writer.max_frame_size
                self.floods.earned += (size + frame - 1) // frame  # the client's WINDOW_UPDATEs are paid for
                if end:
                    stream.ended = True
            if not out and stream.end_queued and not stream.ended:
                conn.send_data(stream_id, b"", True)
                stream.ended = True
        if out and not stream.reset:
            if len(out) < queued or stream_id not in self.blocked:  # (newly) waiting for window
                stream.blocked_since = now = self.loop.time()
                self.blocked[stream_id] = stream
                deadlines.stalled(self, now)
        else:
            self.blocked.pop(stream_id, None)
            if stream.ended and stream.cycle is not None and stream.cycle.response_complete:
                self.forget(stream)
        paused = len(out) > 65536 or self.write_paused
        if stream.write_paused != paused:
            stream.write_paused = paused
            if not paused:
                stream.release()
        self.schedule_flush()

    def _window_updated(self, stream_id: int) -> None:
        if stream_id:
            stream = self.blocked.get(stream_id)
            if stream is not None:
                self.push(stream)
            return
        for stream in list(self.blocked.values()):
            self.push(stream)

    def reset_stream(self, stream: H2Stream, code: int = INTERNAL_ERROR) -> None:
        if not stream.reset and not stream.ended:
            self.h2.reset(stream.stream_id, code)
            self.schedule_flush()
        stream.reset = True
        stream.out.clear()
        self.blocked.pop(stream.stream_id, None)

    def stream_done(self, stream: H2Stream) -> None:
        """The stream's response is complete (or broke off): forget it once its output is out."""
        if stream.ended or stream.reset:
            self.forget(stream)
        if self.goaway and not self.streams:
            self.flush()  # and linger: nothing is left to answer

    def forget(self, stream: H2Stream) -> None:
        """The stream is done with: drop it (closed streams must not pile up on a long connection)."""
        streams = self.streams
        self.waiting.pop(stream.stream_id, None)
        if streams.pop(stream.stream_id, None) is not None and not streams:
            deadlines.rearm(self)  # the keep-alive deadline starts

    def schedule_flush(self) -> None:
        if self.flush_handle is None:
            self.flush_handle = self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write the frames the machine has queued, in one call (once per loop iteration at most)."""
        handle = self.flush_handle
        if handle is not None:
            handle.cancel()
            self.flush_handle = None
        data = self.h2.data_to_send()
        if data and not self.discard_input and not self.transport.is_closing():
            self.transport.write(data)
        if self.goaway and not self.streams:
            self.linger()

    # Errors and shutdown (closing.py)

    def close_with(self, code: int) -> None:
        closing.close_with(self, code)

    def linger(self) -> None:
        """Close without losing the GOAWAY to a reset: closing with unread input sends RST, so the
        write side is shut first and input is discarded for LINGER seconds (as HTTP/1.1 does)."""
        if self.discard_input:
            return
        self.discard_input = True
        transport = self.transport
        if transport.is_closing():
            return
        if not transport.can_write_eof():  # TLS cannot half-close
            transport.close()
            return
        transport.write_eof()
        self.loop.call_later(LINGER, transport.close)

    def shutdown(self) -> None:
        closing.shutdown(self)

    def check_deadline(self, now: float) -> None:
        if now >= self.deadline:
            deadlines.check_deadline(self, now)

    def check_request_timeout(self, now: float, timeout: float) -> None:
        deadlines.check_request_timeout(self, now, timeout)
