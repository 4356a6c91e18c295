"""One HTTP/2 stream: the `CycleConnection` a `RequestCycle` runs on, and the cycle's HTTP/2 encoding.

The request cycle is the same object HTTP/1.1 uses (`palfrey.http.cycle.RequestCycle`): receive,
send, response validation, the access log, metrics, app failures. Only two things differ and are
overridden in `H2Cycle`: how the response head is encoded (a HEADERS frame from status + fields,
not an HTTP/1.1 head) and how the 500 for a failed app is written. The stream is also the cycle's
`transport`: `write()` queues DATA for this stream, sent as the stream's and the connection's
flow-control windows allow.

Flow control, per stream:
- in: request DATA is acknowledged (WINDOW_UPDATE) as the app reads it; when the app holds more
  than the cycle's high-water mark, this stream's credit is held back, so a client can have at
  most one window (64 KiB) plus that mark buffered per stream. Other streams are not affected.
- out: response bytes the peer's window does not admit wait in `out`; past `OUT_HIGH` bytes the
  stream sets `write_paused`, and the app's `send()` awaits `drain()` for this stream only.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from palfrey.http.cycle import RequestCycle
from palfrey.http2.deadlines import body_wait

if TYPE_CHECKING:
    from palfrey.http.contract import ResponseWriter
    from palfrey.http2.connection import H2Protocol
    from palfrey.server.state import ServerState

OUT_HIGH = 65536  # response bytes queued on one stream before its sender waits
_NO_BODY_STATUS = frozenset((204, 304))
# RFC 9113 §8.2.2: fields that only mean something to one HTTP/1.1 hop; never sent on a stream.
CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"http2-settings")
)


class H2Stream:
    """What a cycle may ask of its carrier (contract.CycleConnection), for one HTTP/2 stream."""

    __slots__ = (
        "blocked_since",
        "body_mark",
        "body_since",
        "body_wait_at",
        "conn",
        "cycle",
        "drain_waiters",
        "end_queued",
        "ended",
        "expected",
        "loop",
        "out",
        "read_paused",
        "reset",
        "state",
        "stream_id",
        "transport",
        "unacked",
        "write_paused",
    )

    def __init__(self, conn: H2Protocol, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.state: ServerState = conn.state
        self.loop = conn.loop
        self.transport: ResponseWriter = self  # the cycle's ResponseWriter: writes become DATA frames
        self.cycle: H2Cycle | None = None
        self.write_paused = False
        self.drain_waiters: list[asyncio.Future[None]] = []
        self.out = bytearray()  # response body not yet admitted by the flow-control windows
        self.end_queued = False  # END_STREAM follows once `out` is sent
        self.ended = False  # END_STREAM (or RST_STREAM) sent: nothing more goes out
        self.reset = False  # reset by either side, or the connection is gone
        self.read_paused = False  # the app holds enough unread body: credit is held back
        self.unacked = 0  # flow-controlled request bytes not yet given back
        self.expected = -1  # the request's content-length (-1: none), checked as DATA comes in
        self.blocked_since = 0.0  # when queued output last waited for window (deadlines.py)
        self.body_mark = -1  # the body-rate floor (deadlines.py): `received` when first waited for
        self.body_since = 0.0  # ... and when
        self.body_wait_at = 0.0  # when the app began its current wait for body

    # ResponseWriter

    def write(self, data: bytes) -> None:
        if self.reset or self.ended:
            return
        self.out += data
        self.conn.push(self)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def is_closing(self) -> bool:
        return self.reset or self.conn.transport.is_closing()

    # CycleConnection

    async def drain(self) -> None:
        """Wait until this stream's queued output fits the windows again, or the stream is gone."""
        while self.write_paused and not self.is_closing():
            waiter = self.loop.create_future()
            self.drain_waiters.append(waiter)
            await waiter

    def release(self) -> None:
        for waiter in self.drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.drain_waiters.clear()

    def pause_reading(self) -> None:
        self.read_paused = True

    def wait_for_body(self, cycle: RequestCycle) -> None:
        if self.read_paused:
            self.read_paused = False
            self.conn.acknowledge(self)
        body_wait(self.conn, self, cycle)  # the body deadline and rate floor run while it waits

    def body_consumed(self, cycle: RequestCycle) -> None:
        self.conn.waiting.pop(self.stream_id, None)
        self.read_paused = False
        if self.unacked:
            self.conn.acknowledge(self)

    def cycle_done(self, cycle: RequestCycle) -> None:
        if not self.end_queued and not self.reset:
            self.end_queued = True
            self.conn.push(self)
        self.conn.stream_done(self)

    def close_after_response(self) -> None:
        """Nothing to do: on HTTP/2 a failed response ends its stream, never the connection."""

    def abort_response(self) -> None:
        """The response broke off after it began: what was sent stays, the stream is reset."""
        self.conn.reset_stream(self)
        self.conn.stream_done(self)

    # The response head, from H2Cycle.

    def send_head(self, status: int, fields: list[tuple[bytes, bytes]], body: bytes, end: bool) -> None:
        if self.reset:
            return
        if body:
            self.out += body
        self.end_queued = end
        self.conn.send_head(self, status, fields, end and not body)


class H2Cycle(RequestCycle):
    """A request cycle whose response goes out as HEADERS + DATA frames on one stream."""

    __slots__ = ("started",)

    protocol: H2Stream

    async def run(self, app: Any) -> None:
        self.started = True  # a stream reset before this point cancels the task: the app never runs
        await super().run(app)

    def _write_head(self, body: bytes, more_body: bool) -> None:
        status = self.status
        if type(status) is not int or not 100 <= status <= 999:
            raise RuntimeError(f"Invalid HTTP status code {status!r} in response")
        stream = self.protocol
        content_length: int | None = None
        has_server = has_date = False
        fields: list[tuple[bytes, bytes]] = []
        for name, value in self.response_headers:
            name = name.lower()
            if name in CONNECTION_SPECIFIC:
                continue  # framing and connection management are the server's job on HTTP/2
            if b"\n" in name or b"\r" in name or b"\n" in value or b"\r" in value:
                raise RuntimeError("Invalid response header: line breaks are not allowed in names or values")
            if name == b"content-length":
                try:
                    content_length = int(value)
                except ValueError:
                    raise RuntimeError(f"Invalid Content-Length {value!r} in response") from None
            elif name == b"server":
                has_server = True
            elif name == b"date":
                has_date = True
            fields.append((name, value))
        if status < 200 or status in _NO_BODY_STATUS or self.is_head:
            self.body_allowed = False
        if content_length is not None:
            if self.body_allowed:
                self.expected_length = content_length
        elif not more_body and (body or not self.is_head) and status not in _NO_BODY_STATUS:
            fields.append((b"content-length", b"%d" % len(body)))
        fields = stream.conn.default_fields(has_server, has_date) + fields
        self.head_written = True
        if not self.body_allowed:
            body = b""
        elif body:
            self.sent = len(body)
            if self.expected_length is not None and self.sent > self.expected_length:
                stream.send_head(status, fields, b"", False)
                self._too_long()
        stream.send_head(status, fields, body, not more_body)

    def _write_error(self, status: int = 500, reason: str = "Internal Server Error") -> None:
        body = reason.encode()
        fields = [
            *self.protocol.conn.default_fields(False, False),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
        ]
        self.protocol.send_head(status, fields, body, True)
