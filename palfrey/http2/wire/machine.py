"""The server side of one HTTP/2 connection as a sans-IO state machine (RFC 9113 §5, §6.5, §6.9),
on top of the frame codec and HPACK of this package. First cut: not wired into the server yet.

Bytes in (`receive`) give a list of events, plain tuples `(kind, stream_id, value, end_stream)`:

- REQUEST: value = the decoded header fields (a new stream);
- BODY: value = the DATA payload (possibly b"" with end_stream); the app's reading it is reported
  back with `consumed()`, which is what returns the stream's receive credit: an app that does not
  read stops WINDOW_UPDATEs for its stream only. Connection credit is returned as DATA arrives
  (the per-stream windows already bound what can be buffered);
- TRAILERS: value = the fields of a trailing HEADERS (always end_stream);
- RESET: value = the error code; the stream is gone (the client reset it, or a stream error was
  found here and RST_STREAM is already queued);
- REFUSED: a stream over SETTINGS_MAX_CONCURRENT_STREAMS, already reset with REFUSED_STREAM (its
  header block was decoded: the HPACK state is the connection's);
- TOO_LARGE: a request whose header list is over SETTINGS_MAX_HEADER_LIST_SIZE; the stream exists
  so the caller can answer 431 (RFC 9113 §10.5.1) or reset it;
- WINDOW: the send window of stream `stream_id` (0: the connection's) grew: blocked output may go;
- GOAWAY: value = (last stream id, error code) from the client;
- CONTROL: value = the frame type of a frame that costs work but carries no request: PING,
  SETTINGS, PRIORITY, an unknown type, empty non-final DATA, DATA or HEADERS on a closed stream;
  for the caller's flood counters (floods.py). The machine has already answered it (PING ACK,
  SETTINGS ACK, RST_STREAM). WINDOW events and small DATA (BODY events) are the caller's to count
  too, as floods.py does today; RESET events cover both the client's resets and ours for its fault
  (CVE-2025-8671, "MadeYouReset").

Connection errors are raised (H2ConnectionError, HpackError): the caller calls `goaway(code)`,
sends `data_to_send()` and closes. Closed streams are not remembered: a stream id at or below the
highest seen that is not open is closed, so a long connection keeps no per-request state (h2 keeps
a table of closed ids for that). DATA on a closed stream is dropped with its connection credit
returned (it may have been in flight when we reset the stream, §5.4.2), HEADERS on one is a stream
error STREAM_CLOSED.
"""

from __future__ import annotations

from typing import Any

from palfrey.http2.wire import frames as f
from palfrey.http2.wire.errors import (
    FLOW_CONTROL_ERROR,
    NO_ERROR,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    STREAM_CLOSED,
    H2ConnectionError,
    H2StreamError,
    HeaderListTooLarge,
)
from palfrey.http2.wire.frames import ACK, DATA, HEADERS, PING, RST_STREAM, SETTINGS, WINDOW_UPDATE
from palfrey.http2.wire.hpack_decode import Decoder
from palfrey.http2.wire.hpack_encode import Encoder
from palfrey.http2.wire.writer import FrameWriter

REQUEST, BODY, TRAILERS, RESET, REFUSED, TOO_LARGE, WINDOW, GOAWAY, CONTROL = range(9)
Event = tuple[int, int, Any, bool]  # the value's type depends on the kind (module docstring)
DEFAULT_WINDOW = 65535
MAX_WINDOW = 2**31 - 1
MAX_CONTINUATIONS = 64  # per header block, as h2 allows (frames.py)


class Stream:
    """One open stream: its two windows and which sides have ended it."""

    __slots__ = ("expected_length", "received", "remote_closed", "send_window", "unacked", "window")

    def __init__(self, send_window: int, window: int, remote_closed: bool) -> None:
        self.send_window = send_window  # what we may send (the client's credit)
        self.window = window  # what the client may still send us
        self.unacked = 0  # bytes consumed by the app and not yet credited back
        self.remote_closed = remote_closed
        self.expected_length: int | None = None  # content-length, set by the caller
        self.received = 0


class ServerMachine:
    """One connection: streams, flow control both ways, settings, GOAWAY."""

    def __init__(
        self,
        *,
        max_concurrent_streams: int = 100,
        initial_window_size: int = DEFAULT_WINDOW,
        connection_window: int = 1 << 20,
        max_frame_size: int = f.DEFAULT_MAX_FRAME_SIZE,
        max_header_list_size: int = 65536,
        preface: bool = True,
    ) -> None:
        self.reader = f.FrameReader(max_frame_size, max_header_list_size + 16384, preface, MAX_CONTINUATIONS)
        self.decoder = Decoder(4096, max_header_list_size)
        self.encoder = Encoder()
        self.writer = FrameWriter()
        self.streams: dict[int, Stream] = {}
        self.highest_id = 0  # the highest stream id the client has opened
        self.max_streams = max_concurrent_streams
        self.initial_window = initial_window_size  # ours, for each new stream
        self.settings_acked = False  # until then a client may still use the default 65,535
        self.new_stream_window = max(initial_window_size, DEFAULT_WINDOW)  # ours once acknowledged
        self.connection_window = connection_window  # what we keep open for the whole connection
        self.window = DEFAULT_WINDOW  # what the client may still send on the connection
        self.unacked = 0  # connection credit not yet returned
        self.send_window = DEFAULT_WINDOW  # the client's credit for us, connection level
        self.peer_initial_window = DEFAULT_WINDOW
        self.goaway_last: int | None = None  # set once we sent GOAWAY
        self.settings = [
            (f.MAX_CONCURRENT_STREAMS, max_concurrent_streams),
            (f.INITIAL_WINDOW_SIZE, initial_window_size),
            (f.MAX_FRAME_SIZE, max_frame_size),
            (f.MAX_HEADER_LIST_SIZE, max_header_list_size),
        ]

    def initiate(self) -> None:
        """Queue our SETTINGS and open the connection window to `connection_window` (§3.4)."""
        self.writer.settings(self.settings)
        if self.connection_window > DEFAULT_WINDOW:
            self.writer.window_update(0, self.connection_window - DEFAULT_WINDOW)
            self.window = self.connection_window

    def upgrade(self, settings_payload: bytes) -> None:
        """Take over from an HTTP/1.1 `Upgrade: h2c` request (RFC 7540 §3.2), after `initiate()`:
        the request is stream 1, half-closed (remote) as its body was read over HTTP/1.1, and its
        HTTP2-Settings (base64url-decoded by the caller) apply without an ACK, the 101 being the
        acknowledgement (§3.2.1). The client still sends the preface, so keep `preface=True`."""
        self._settings(settings_payload, [], ack=False)
        self.highest_id = 1
        self.streams[1] = Stream(self.peer_initial_window, 0, True)

    def data_to_send(self) -> bytes:
        return self.writer.flush()

    # -- input ---------------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[Event]:
        """Feed received bytes; the events they complete (module docstring)."""
        reader = self.reader
        reader.feed(data)
        events: list[Event] = []
        while True:
            try:
                frame = reader.next()
            except H2StreamError as error:
                self._stream_error(error.stream_id, error.code, events)
                continue
            if frame is None:
                return events
            kind, flags, stream_id, payload, value = frame
            if kind == DATA:
                self._data(stream_id, payload, value, flags == 1, events)  # flags is END_STREAM or 0
            elif kind == HEADERS:
                self._headers(stream_id, payload, value, flags == 1, events)
            elif kind == WINDOW_UPDATE:
                self._window_update(stream_id, value, events)
            elif kind == RST_STREAM:
                if stream_id > self.highest_id or not stream_id & 1:  # even ids: we open none
                    raise H2ConnectionError(PROTOCOL_ERROR, "RST_STREAM on an idle stream")
                self.streams.pop(stream_id, None)
                events.append((RESET, stream_id, value, False))
            elif kind == SETTINGS:
                if flags & ACK:
                    self._settings_acked()
                else:
                    self._settings(payload, events)
                    events.append((CONTROL, 0, SETTINGS, False))
            elif kind == PING:
                if not flags & ACK:
                    self.writer.ping_ack(payload)
                events.append((CONTROL, 0, PING, False))
            elif kind == f.GOAWAY:
                events.append((GOAWAY, 0, (f.goaway_last_stream(payload), value), False))
            else:  # PRIORITY or an unknown type: nothing to do but count it
                events.append((CONTROL, 0, kind, False))

    def _settings_acked(self) -> None:
        """Our SETTINGS took effect: a smaller INITIAL_WINDOW_SIZE than the default now also
        shrinks the streams opened before, by the difference (§6.9.2)."""
        delta = self.initial_window - self.new_stream_window
        if delta and not self.settings_acked:
            for stream in self.streams.values():
                stream.window += delta
        self.settings_acked = True
        self.new_stream_window = self.initial_window

    def _stream_error(self, stream_id: int, code: int, events: list[Event]) -> None:
        """RST_STREAM for a stream error found here; the caller hears RESET if the stream was open."""
        self.writer.rst_stream(stream_id, code)
        if self.streams.pop(stream_id, None) is not None:
            events.append((RESET, stream_id, code, False))

    def _headers(
        self, stream_id: int, block: bytes, value: int, end_stream: bool, events: list[Event]
    ) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:  # trailers (§8.1): they must end the stream
            fields = self.decoder.decode(block)
            if stream.remote_closed:
                self._stream_error(stream_id, STREAM_CLOSED, events)
            elif not end_stream:
                self._stream_error(stream_id, PROTOCOL_ERROR, events)
            else:
                stream.remote_closed = True
                events.append((TRAILERS, stream_id, fields, True))
            return
        if not stream_id & 1:
            raise H2ConnectionError(PROTOCOL_ERROR, "a client opened an even-numbered stream")
        if stream_id <= self.highest_id:
            self.decoder.decode(block)
            self._stream_error(stream_id, STREAM_CLOSED, events)
            events.append((CONTROL, 0, HEADERS, False))  # costs work, carries no request: counted
            return
        self.highest_id = stream_id
        too_large = False
        try:
            fields = self.decoder.decode(block)
        except HeaderListTooLarge:
            fields, too_large = [], True
        if self.goaway_last is not None and stream_id > self.goaway_last:
            return  # §6.8: streams opened after our GOAWAY are ignored
        if value:  # the stream depends on itself (§5.3.1)
            self._stream_error(stream_id, value, events)
            return
        if len(self.streams) >= self.max_streams:
            self.writer.rst_stream(stream_id, REFUSED_STREAM)
            events.append((REFUSED, stream_id, None, False))
            return
        self.streams[stream_id] = Stream(self.peer_initial_window, self.new_stream_window, end_stream)
        if too_large:
            events.append((TOO_LARGE, stream_id, None, end_stream))
        else:
            events.append((REQUEST, stream_id, fields, end_stream))

    def _data(
        self, stream_id: int, payload: bytes, length: int, end_stream: bool, events: list[Event]
    ) -> None:
        self.window -= length
        if self.window < 0:
            raise H2ConnectionError(FLOW_CONTROL_ERROR, "DATA beyond the connection window")
        self.unacked += length
        if self.unacked >= self.connection_window >> 1:
            self.writer.window_update(0, self.unacked)
            self.window += self.unacked
            self.unacked = 0
        stream = self.streams.get(stream_id)
        if stream is None or stream.remote_closed:
            if stream_id > self.highest_id or not stream_id & 1:
                raise H2ConnectionError(PROTOCOL_ERROR, "DATA on an idle stream")
            if stream is not None:
                self._stream_error(stream_id, STREAM_CLOSED, events)
            else:
                events.append((CONTROL, 0, DATA, False))  # DATA on a forgotten stream: counted
            return
        stream.window -= length
        if stream.window < 0:
            self._stream_error(stream_id, FLOW_CONTROL_ERROR, events)
            return
        stream.unacked += length - len(payload)  # padding is never consumed by the app
        stream.received += len(payload)
        expected = stream.expected_length
        if expected is not None and (
            stream.received > expected or (end_stream and stream.received != expected)
        ):
            self._stream_error(stream_id, PROTOCOL_ERROR, events)  # §8.1.1: malformed
            return
        if end_stream:
            stream.remote_closed = True
        elif not payload:
            events.append((CONTROL, 0, f.DATA, False))
        events.append((BODY, stream_id, payload, end_stream))

    def _window_update(self, stream_id: int, increment: int, events: list[Event]) -> None:
        if not stream_id:
            self.send_window += increment
            if self.send_window > MAX_WINDOW:
                raise H2ConnectionError(FLOW_CONTROL_ERROR, "connection send window above 2**31-1")
            events.append((WINDOW, 0, increment, False))
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self.highest_id or not stream_id & 1:
                raise H2ConnectionError(PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
            return  # a closed stream: allowed, ignored
        stream.send_window += increment
        if stream.send_window > MAX_WINDOW:
            self._stream_error(stream_id, FLOW_CONTROL_ERROR, events)
            return
        events.append((WINDOW, stream_id, increment, False))

    def _settings(self, payload: bytes, events: list[Event], ack: bool = True) -> None:
        """Apply the client's settings at once and acknowledge them (§6.5.3)."""
        for identifier, value in f.decode_settings(payload):
            if identifier == f.HEADER_TABLE_SIZE:
                self.encoder.set_peer_table_size(value)
            elif identifier == f.INITIAL_WINDOW_SIZE:
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream in self.streams.values():  # §6.9.2: open streams' windows move too
                    stream.send_window += delta
                    if stream.send_window > MAX_WINDOW:
                        raise H2ConnectionError(FLOW_CONTROL_ERROR, "a stream window above 2**31-1")
                if delta > 0:
                    events.append((WINDOW, 0, 0, False))
            elif identifier == f.MAX_FRAME_SIZE:
                self.writer.max_frame_size = value
        if ack:
            self.writer.settings_ack()

    # -- output --------------------------------------------------------------------------------

    def consumed(self, stream_id: int, count: int) -> None:
        """The app read `count` body bytes of the stream: return that credit, batched to half the
        stream window so a slow reader costs one WINDOW_UPDATE per half window."""
        stream = self.streams.get(stream_id)
        if stream is None or stream.remote_closed:
            return
        stream.unacked += count
        if stream.unacked >= self.initial_window >> 1:
            self.writer.window_update(stream_id, stream.unacked)
            stream.window += stream.unacked
            stream.unacked = 0

    def expect_length(self, stream_id: int, length: int) -> None:
        """The request's content-length: a body longer or shorter resets the stream (§8.1.1)."""
        self.streams[stream_id].expected_length = length

    def send_headers(
        self, stream_id: int, fields: list[tuple[bytes, bytes]], end_stream: bool = False
    ) -> None:
        """A response head (or trailers, with end_stream): encoded, framed, queued. The stream
        must be open: after a RESET event for it the caller sends nothing more."""
        self.writer.headers(stream_id, self.encoder.encode(fields), end_stream)
        if end_stream:
            self._local_close(stream_id)

    def respond(self, stream_id: int, fields: list[tuple[bytes, bytes]], body: bytes) -> bool:
        """A whole response (HEADERS, then the body with END_STREAM) in one call, the common small
        response's fast path. False, with nothing queued, when the windows cannot take the body
        yet: then use `send_headers` and `send_data` as the window opens."""
        stream = self.streams.get(stream_id)
        length = len(body)
        if stream is None or length > stream.send_window or length > self.send_window:
            return False
        stream.send_window -= length
        self.send_window -= length
        writer = self.writer
        writer.headers(stream_id, self.encoder.encode(fields))
        writer.data(stream_id, body, True)
        del self.streams[stream_id]
        if not stream.remote_closed:
            writer.rst_stream(stream_id, NO_ERROR)  # see _local_close
        return True

    def sendable(self, stream_id: int) -> int:
        """How many body bytes the windows let the stream send now."""
        stream = self.streams.get(stream_id)
        return 0 if stream is None else max(0, min(stream.send_window, self.send_window))

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """Queue body bytes the caller took from `sendable()`; a larger payload is a bug there."""
        stream = self.streams[stream_id]
        length = len(data)
        if length > stream.send_window or length > self.send_window:
            raise ValueError(f"{length} bytes exceed the send window")
        stream.send_window -= length
        self.send_window -= length
        self.writer.data(stream_id, data, end_stream)
        if end_stream:
            del self.streams[stream_id]  # both sides done: forgotten (module docstring)
            if not stream.remote_closed:
                self.writer.rst_stream(stream_id, NO_ERROR)  # see _local_close

    def _local_close(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None and stream.remote_closed:
            del self.streams[stream_id]  # both sides done: forgotten (module docstring)
        elif stream is not None:
            # §8.1: a response may end before the request body does; ask the client to stop
            self.writer.rst_stream(stream_id, NO_ERROR)
            del self.streams[stream_id]

    def reset(self, stream_id: int, code: int) -> None:
        """End a stream from our side with RST_STREAM."""
        if self.streams.pop(stream_id, None) is not None:
            self.writer.rst_stream(stream_id, code)

    def goaway(self, code: int = NO_ERROR, debug: bytes = b"") -> None:
        """GOAWAY with the highest stream taken: later streams will not be processed (§6.8)."""
        self.goaway_last = self.highest_id
        self.writer.goaway(self.highest_id, code, debug)
