"""The `h2` state machine as palfrey runs it: request errors that RFC 9113 makes stream errors stay
stream errors.

h2 raises a `ProtocolError` for the whole connection (GOAWAY, every stream lost) when one request
is malformed: header fields it validates (uppercase names, connection-specific fields, a `te` other
than "trailers", missing or repeated pseudo-headers) and a body longer or shorter than its
content-length. RFC 9113 §8.1.1 says such a request is malformed and answered with RST_STREAM
PROTOCOL_ERROR on *its* stream; the other streams carry on. So:

- h2's inbound header validation is turned off and palfrey validates the request head itself
  (`request.split_pseudo_headers`), which it walks anyway to build the scope;
- h2's content-length tracking is kept but made to report instead of raise: a stream whose body
  does not match its content-length (or whose content-length is unreadable) is put in
  `length_errors`, and the connection resets that stream before the app sees the offending data;
- a stream opened past SETTINGS_MAX_CONCURRENT_STREAMS is refused alone with RST_STREAM
  REFUSED_STREAM (RFC 9113 §5.1.2: the client knows it was not processed and may retry it), where
  h2 raises a connection error. Its header block is still decoded: the HPACK state is shared by
  the whole connection.

The stream subclass reaches two h2 methods by name (`_initialize_content_length`,
`_track_content_length`, the stream's own), and the connection `_begin_new_stream`,
`_receive_headers_frame`, `_receive_frame`, `_closed_streams` and `_decode_headers`, and sets the
HPACK decoder's `max_header_list_size` to what we advertise: h2 4.x has no public hook for
any of these. tests/test_http2_life.py plays each case against a real server, so an h2
release that renames them fails there, not in production silently (the connection error returns).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.exceptions
import h2.settings
import h2.stream
import hpack
from hyperframe.frame import HeadersFrame, RstStreamFrame

from palfrey.http2.compact import CompactSettings

CLOSED_STREAMS_KEPT = 1024  # ten times the default --http2-max-concurrent-streams
MAX_HEADER_LIST = 65536  # decoded header bytes per request at most (h2's default), whatever the head limits


class _LengthCheckedStream(h2.stream.H2Stream):
    """An h2 stream that reports a content-length mismatch to its connection instead of raising."""

    length_errors: set[int]

    def _initialize_content_length(self, headers: Iterable[Any]) -> None:
        try:
            super()._initialize_content_length(headers)
        except h2.exceptions.ProtocolError:  # unreadable or conflicting content-length values
            self._expected_content_length = None
            self.length_errors.add(self.stream_id)

    def _track_content_length(self, length: int, end_stream: bool) -> None:
        try:
            super()._track_content_length(length, end_stream)
        except h2.exceptions.InvalidBodyLengthError:
            self._expected_content_length = None  # reported once; the stream is reset for it
            self.length_errors.add(self.stream_id)


class ServerConnection(CompactSettings, h2.connection.H2Connection):
    """h2's server connection with stream-level request errors (see the module docstring), and
    SETTINGS values and HPACK tables that take less memory per connection (compact.py)."""

    def __init__(self) -> None:
        # How many closed streams h2 remembers (to tell a late frame on a reset stream from a
        # protocol error): h2's 65,536 let a long-lived connection grow by ~137 bytes a request (~9 MB).
        self.MAX_CLOSED_STREAMS = CLOSED_STREAMS_KEPT
        super().__init__(
            h2.config.H2Configuration(client_side=False, header_encoding=None, validate_inbound_headers=False)
        )
        self.length_errors: set[int] = set()  # streams whose body broke its content-length
        # Frames h2 took without an event (DATA or RST_STREAM on a closed stream, unknown types):
        # the connection counts them as useless frames (floods.py).
        self.idle_frames = 0
        # What we advertise is what the decoder enforces: h2 only applies a MAX_HEADER_LIST_SIZE
        # changed after the client acknowledged it, never the initial value we advertise.
        self.decoder.max_header_list_size = MAX_HEADER_LIST

    def advertise(self, settings: h2.settings.Settings) -> None:
        """Our SETTINGS (sent by initiate_connection); the HPACK decoder stops where they say."""
        self.local_settings = settings
        limit = settings.max_header_list_size
        if limit is not None:
            self.decoder.max_header_list_size = limit

    def _receive_frame(self, frame: Any) -> list[Any]:
        events: list[Any] = super()._receive_frame(frame)
        if not events:
            self.idle_frames += 1
        return events

    def _begin_new_stream(self, stream_id: int, allowed_ids: Any) -> h2.stream.H2Stream:
        stream = super()._begin_new_stream(stream_id, allowed_ids)
        stream.__class__ = _LengthCheckedStream
        stream.length_errors = self.length_errors  # type: ignore[attr-defined]
        return stream

    def _receive_headers_frame(self, frame: HeadersFrame) -> tuple[list[Any], list[Any]]:
        try:
            return super()._receive_headers_frame(frame)
        except h2.exceptions.TooManyStreamsError:
            stream_id = frame.stream_id
            if stream_id % 2 == 0 or stream_id <= self.highest_inbound_stream_id:
                raise  # not a new client stream: a connection error as h2 says
        except h2.exceptions.ProtocolError as exc:
            _compression_error(exc)  # (here, not in a wrapper method: no extra call per request)
            raise
        try:
            h2.connection._decode_headers(self.decoder, frame.data)  # keep the shared HPACK state
        except h2.exceptions.ProtocolError as exc:
            _compression_error(exc)
            raise
        self.highest_inbound_stream_id = stream_id
        # Remembered as reset by us: its DATA frames are then answered (and their connection
        # credit given back) by h2 as on any reset stream, not taken for a protocol error.
        self._closed_streams[stream_id] = h2.stream.StreamClosedBy.SEND_RST_STREAM
        refused = RstStreamFrame(stream_id)
        refused.error_code = h2.errors.ErrorCodes.REFUSED_STREAM
        return [refused], []

    def header_block_open(self) -> bool:
        """A HEADERS frame whose block is not complete yet (CONTINUATION frames still owed).

        Read from h2's frame buffer: while a block is open no other frame may arrive on the
        connection (RFC 9113 §6.10), so a client that stalls there holds the whole connection.
        """
        return bool(getattr(self.incoming_buffer, "_headers_buffer", None))


def _compression_error(exc: h2.exceptions.ProtocolError) -> None:
    """A header block HPACK cannot decode is a COMPRESSION_ERROR (RFC 9113 §4.3; h2 says PROTOCOL_ERROR).
    Set before h2's `receive_data` answers the exception with its GOAWAY."""
    if type(exc) is h2.exceptions.ProtocolError and isinstance(exc.__cause__, hpack.HPACKError):
        exc.error_code = h2.errors.ErrorCodes.COMPRESSION_ERROR
