"""The HTTP/2 error codes (RFC 9113 §7) and the two kinds of error the wire layer raises.

RFC 9113 §5.4 distinguishes connection errors (GOAWAY, the connection ends) from stream errors
(RST_STREAM on that stream only, the others carry on); the caller needs to know which one a
violation is, so they are two exception types rather than one with a flag.
"""

from __future__ import annotations

NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
SETTINGS_TIMEOUT = 0x4
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
CONNECT_ERROR = 0xA
ENHANCE_YOUR_CALM = 0xB
INADEQUATE_SECURITY = 0xC
HTTP_1_1_REQUIRED = 0xD


class H2ConnectionError(Exception):
    """A connection error: the connection must send GOAWAY with `code` and close."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class H2StreamError(Exception):
    """A stream error: RST_STREAM with `code` on `stream_id`; the connection carries on.

    Raised only after the offending frame has been consumed, so the reader stays in step."""

    def __init__(self, stream_id: int, code: int, reason: str) -> None:
        super().__init__(reason)
        self.stream_id = stream_id
        self.code = code
        self.reason = reason


class HpackError(H2ConnectionError):
    """The header block could not be decoded: the shared HPACK state is lost, so this is a
    connection error of type COMPRESSION_ERROR (RFC 9113 §4.3)."""

    def __init__(self, reason: str) -> None:
        super().__init__(COMPRESSION_ERROR, reason)


class HeaderListTooLarge(Exception):
    """The decoded header list is over the advertised SETTINGS_MAX_HEADER_LIST_SIZE.

    The block was still decoded to its end (the dynamic table stays in step with the peer's), so
    only this request is refused (431 or RST_STREAM), not the connection."""
