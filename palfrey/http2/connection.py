"""The HTTP/2 connection: frames in and out with the `h2` library, one request cycle per stream.

It takes a transport over from the HTTP/1.1 protocol once the connection is known to speak HTTP/2
(negotiate.py decides that) and owns everything that is about the connection: the h2 state
machine, writing its output once per loop iteration, the connection's flow-control window, the
floods it refuses (counted by floods.py: resets, useless frames), GOAWAY on a graceful shutdown. Each
stream runs the same `RequestCycle` as HTTP/1.1 (stream.py).

Why h2 and not zttp: docs/architecture.md has the measurement and the reasons.
"""

from __future__ import annotations

import asyncio
import logging
from time import perf_counter
from typing import TYPE_CHECKING, Any

import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from palfrey.http.pathsend import EXTENSIONS
from palfrey.http.response import service_unavailable
from palfrey.http2 import closing, deadlines, refusals
from palfrey.http2.deadlines import IDLE, INF
from palfrey.http2.engine import MAX_HEADER_LIST, ServerConnection
from palfrey.http2.floods import EARN_PER_STREAM, SMALL_DATA, FloodGuard
from palfrey.http2.request import request_scope, split_pseudo_headers
from palfrey.http2.stream import CONNECTION_SPECIFIC, H2Cycle, H2Stream

if TYPE_CHECKING:
    from palfrey.server.state import ServerState

logger = logging.getLogger("palfrey.error")

CONNECTION_WINDOW = 16 * 1024 * 1024
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
        conn = self.h2 = ServerConnection()
        limits = state.limits
        conn.advertise(
            h2.settings.Settings(
                client=False,
                initial_values={
                    h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams,
                    h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: min(
                        limits.fields * limits.field_size, MAX_HEADER_LIST
                    ),
                    h2.settings.SettingCodes.ENABLE_PUSH: 0,
                },
            )
        )

    # Starting

    def start(self, data: bytes) -> None:
        """Prior knowledge or ALPN: send our preface, then read the client's from `data` on."""
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW)
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
        self.h2.initiate_upgrade_connection(settings)
        self.h2.increment_flow_control_window(CONNECTION_WINDOW)
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
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            closing.protocol_error(self, exc)
            return
        if self.h2.idle_frames:
            closing.control_frame(self, self.h2.idle_frames)
            self.h2.idle_frames = 0
            if self.discard_input:
                return
        deferred = self.deferred
        if deferred is not None:
            self.deferred = None
            if not deferred.reset:
                self._run(deferred)
        event: Any
        for event in events:
            kind = type(event)
            if kind is h2.events.RequestReceived:
                self._request(event)
            elif kind is h2.events.DataReceived:
                self._data(event)
            elif kind is h2.events.StreamEnded:
                if self.h2.length_errors:
                    self._check_length(event.stream_id)
                stream = self.streams.get(event.stream_id)
                if stream is not None and stream.cycle is not None:
                    stream.cycle.end_body()
            elif kind is h2.events.WindowUpdated:
                self._window_updated(event.stream_id)
                closing.control_frame(self)  # paid for by the DATA frames we send (floods.py)
            elif kind is h2.events.StreamReset:
                closing.remote_reset(self, event.stream_id)
            elif kind in closing.USELESS_EVENTS:
                closing.control_frame(self)
            elif kind is h2.events.ConnectionTerminated:
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

    def _request(self, event: Any) -> None:
        stream_id = event.stream_id
        if self.goaway:
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        head = split_pseudo_headers(event.headers, self.scheme.encode())
        if head is None:
            self.last_stream_id = stream_id
            refusals.malformed(self, stream_id, "Malformed request head")
            return
        method, scheme, path, authority, fields = head
        stream = self._open(
            stream_id, method, scheme, path, authority, fields, ended=event.stream_ended is not None
        )
        if stream is not None and self.h2.length_errors:
            self._check_length(stream_id)

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

    def _data(self, event: Any) -> None:
        stream = self.streams.get(event.stream_id)
        length = event.flow_controlled_length
        if len(event.data) < SMALL_DATA and event.stream_ended is None:
            closing.control_frame(self)  # an empty or tiny DATA frame: mostly overhead (floods.py)
        if self.h2.length_errors:
            self._check_length(event.stream_id)
            stream = self.streams.get(event.stream_id)
        if stream is None or stream.cycle is None or stream.cycle.response_complete:
            self._ack(event.stream_id, length)  # nobody will read it: give the credit back now
            return
        limit = self.body_limit
        if limit is not None and stream.cycle.received + len(event.data) > limit:
            self._ack(event.stream_id, length)
            refusals.refuse(self, stream, 413, "Request body over the limit")
            return
        stream.cycle.feed_body(event.data)
        stream.unacked += length
        if not stream.read_paused:
            self.acknowledge(stream)

    def acknowledge(self, stream: H2Stream) -> None:
        """Give the client back the credit for the body this stream's app has taken (or may buffer)."""
        length = stream.unacked
        if length:
            stream.unacked = 0
            self._ack(stream.stream_id, length)
            self.schedule_flush()

    def _check_length(self, stream_id: int) -> None:
        """engine.py found this stream's body at odds with its content-length: reset it alone."""
        if stream_id in self.h2.length_errors:
            refusals.malformed(self, stream_id, "Request body length does not match content-length")

    def _ack(self, stream_id: int, length: int) -> None:
        if length:
            try:
                self.h2.acknowledge_received_data(length, stream_id)
            except h2.exceptions.StreamClosedError:
                pass

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
        try:
            self.h2.send_headers(stream.stream_id, [(b":status", b"%d" % status), *fields], end_stream=end)
        except h2.exceptions.StreamClosedError:
            stream.reset = True
            return
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
        try:
            while out:
                window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = bytes(out[:window])
                del out[:window]
                end = stream.end_queued and not out
                conn.send_data(stream_id, chunk, end_stream=end)
                self.floods.earned += 1  # the client's WINDOW_UPDATE for it is paid for
                if end:
                    stream.ended = True
            if not out and stream.end_queued and not stream.ended:
                conn.end_stream(stream_id)
                stream.ended = True
        except (h2.exceptions.StreamClosedError, h2.exceptions.FlowControlError):
            stream.reset = True
            out.clear()
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

    def reset_stream(self, stream: H2Stream, code: int = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        if not stream.reset and not stream.ended:
            try:
                self.h2.reset_stream(stream.stream_id, code)
            except h2.exceptions.StreamClosedError:
                pass
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
        """Write the frames h2 has queued, in one call (once per loop iteration at most)."""
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
