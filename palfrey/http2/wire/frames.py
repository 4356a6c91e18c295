"""Reading HTTP/2 frames (RFC 9113 §4, §6) from a client's byte stream, validated exactly.

`FrameReader.feed(data)` appends bytes; `next()` returns one frame at a time as a plain tuple
`(kind, flags, stream_id, payload, value)` (a tuple unpacks at C speed; a frame object per frame
costs an allocation and attribute lookups), or None when the buffer holds no complete frame:

- DATA: payload without padding; value = the flow-controlled length (the whole frame payload,
  padding included, §6.9.1);
- HEADERS: the complete header block (HEADERS and its CONTINUATION fragments joined, padding and
  priority fields removed), flags = END_STREAM only; value = 0, or PROTOCOL_ERROR when the stream
  depends on itself (a stream error, but the block must still be decoded: HPACK state is shared);
- SETTINGS: payload = the raw pairs (decode with `decode_settings`), value 0; ACK in flags;
- PING: payload = the 8 opaque bytes; RST_STREAM, GOAWAY: value = the error code (GOAWAY's
  payload is its last-stream-id and debug data: `goaway_last_stream`); WINDOW_UPDATE: value =
  the increment.

PRIORITY frames (deprecated by RFC 9113 §5.3.2) and unknown types (§5.5) carry nothing to act on
and are returned with an empty payload only so the caller can count them (floods); PUSH_PROMISE
from a client is a connection error. Violations raise H2ConnectionError or, for the
cases the RFC makes stream errors, H2StreamError after the frame is consumed, so `next()` can be
called again.

While a header block is open, only CONTINUATION frames of that stream may arrive (§6.10); the
block's size, counting 9 bytes per frame so empty CONTINUATIONs count too, is capped by
`max_header_block` (the CONTINUATION flood, CVE-2024-27316: ENHANCE_YOUR_CALM); with
`max_continuations`, more CONTINUATION frames than that in one block are a PROTOCOL_ERROR (the
server uses h2's 64: small frames cost work per frame well before the size cap is reached).
"""

from __future__ import annotations

import struct

from palfrey.http2.wire.errors import (
    ENHANCE_YOUR_CALM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    PROTOCOL_ERROR,
    H2ConnectionError,
    H2StreamError,
)

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    range(10)
)
END_STREAM = 0x1  # DATA, HEADERS
ACK = 0x1  # SETTINGS, PING
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEAD = struct.Struct(">BHBBL")  # 24-bit length as 8 + 16 bits, type, flags, R + stream id
DEFAULT_MAX_FRAME_SIZE = 16384
STREAM_MASK = 0x7FFFFFFF

# Setting identifiers (§6.5.2, RFC 8441 §3)
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE = 1, 2, 3, 4
MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE, ENABLE_CONNECT_PROTOCOL = 5, 6, 8

Frame = tuple[int, int, int, bytes, int]


def decode_settings(payload: bytes) -> list[tuple[int, int]]:
    """The (identifier, value) pairs of a SETTINGS payload, values checked (§6.5.2); unknown
    identifiers are kept for the caller to ignore."""
    pairs = []
    for offset in range(0, len(payload), 6):
        identifier, value = struct.unpack_from(">HL", payload, offset)
        if identifier == ENABLE_PUSH and value > 1:
            raise H2ConnectionError(PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH not 0 or 1")
        if identifier == INITIAL_WINDOW_SIZE and value > STREAM_MASK:
            raise H2ConnectionError(FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE above 2**31-1")
        if identifier == MAX_FRAME_SIZE and not DEFAULT_MAX_FRAME_SIZE <= value <= 0xFFFFFF:
            raise H2ConnectionError(PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range")
        if identifier == ENABLE_CONNECT_PROTOCOL and value > 1:
            raise H2ConnectionError(PROTOCOL_ERROR, "SETTINGS_ENABLE_CONNECT_PROTOCOL not 0 or 1")
        pairs.append((identifier, value))
    return pairs


def goaway_last_stream(payload: bytes) -> int:
    """The last-stream-id of a GOAWAY payload (the reserved bit ignored)."""
    return int.from_bytes(payload[:4], "big") & STREAM_MASK


def _strip_padding(payload: bytes, flags: int) -> bytes:
    """A DATA payload without its Pad Length field and padding (§6.1)."""
    if not flags & PADDED:
        return payload
    if not payload:
        raise H2ConnectionError(FRAME_SIZE_ERROR, "padded frame without a Pad Length field")
    pad = payload[0]
    if pad >= len(payload):  # padding as long as the payload or longer
        raise H2ConnectionError(PROTOCOL_ERROR, "padding exceeds the frame payload")
    return payload[1 : len(payload) - pad]


class FrameReader:
    """One connection's inbound framing state: the byte buffer, the preface, the open header block."""

    __slots__ = (
        "block_flags",
        "block_parts",
        "block_size",
        "block_stream",
        "block_value",
        "buffer",
        "max_continuations",
        "max_frame_size",
        "max_header_block",
        "position",
        "want_preface",
        "want_settings",
    )

    def __init__(
        self,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_header_block: int = 65536,
        preface: bool = True,
        max_continuations: int = 0,
    ) -> None:
        self.buffer = b""
        self.max_continuations = max_continuations  # CONTINUATION frames per block (0: no cap)
        self.position = 0
        self.max_frame_size = max_frame_size  # our SETTINGS_MAX_FRAME_SIZE
        self.max_header_block = max_header_block
        self.want_preface = preface  # the 24-byte client preface is still to come
        self.want_settings = True  # the first frame must be SETTINGS (§3.4): checked by `_start`
        self.block_stream = 0  # the stream of an open header block, 0 when none is open
        self.block_parts: list[bytes] = []
        self.block_size = 0
        self.block_flags = 0
        self.block_value = 0

    def feed(self, data: bytes) -> None:
        """Append received bytes (the unread rest is copied once, only when a frame was split)."""
        if self.position < len(self.buffer):
            self.buffer = self.buffer[self.position :] + data
        else:
            self.buffer = data
        self.position = 0

    def _start(self) -> bool:
        """Check the client preface (§3.4) and that the first frame is SETTINGS without ACK; False
        until enough bytes are there to tell."""
        buffer, position = self.buffer, self.position
        if self.want_preface:
            if len(buffer) - position < len(PREFACE):
                if not PREFACE.startswith(buffer[position:]):
                    raise H2ConnectionError(PROTOCOL_ERROR, "invalid connection preface")
                return False
            if buffer[position : position + len(PREFACE)] != PREFACE:
                raise H2ConnectionError(PROTOCOL_ERROR, "invalid connection preface")
            self.want_preface = False
            position = self.position = position + len(PREFACE)
        if len(buffer) - position < 9:
            return False
        if buffer[position + 3] != SETTINGS or buffer[position + 4] & ACK:
            raise H2ConnectionError(PROTOCOL_ERROR, "the first frame is not SETTINGS")
        self.want_settings = False
        return True

    def next(self) -> Frame | None:
        """The next complete frame, or None until more bytes are fed."""
        if self.want_settings and not self._start():
            return None
        while True:
            buffer, position = self.buffer, self.position
            if len(buffer) - position < 9:
                return None
            high, low, kind, flags, stream_id = HEAD.unpack_from(buffer, position)
            length = high << 16 | low
            if length > self.max_frame_size:
                raise H2ConnectionError(
                    FRAME_SIZE_ERROR, f"frame of {length} bytes over SETTINGS_MAX_FRAME_SIZE"
                )
            end = position + 9 + length
            if end > len(buffer):
                return None
            payload = buffer[position + 9 : end]
            self.position = end
            stream_id &= STREAM_MASK
            if self.block_stream:
                frame = self._continuation(kind, flags, stream_id, payload)
            elif kind == DATA:
                if not stream_id:
                    raise H2ConnectionError(PROTOCOL_ERROR, "DATA on stream 0")
                if flags & PADDED:
                    payload = _strip_padding(payload, flags)
                return (DATA, flags & END_STREAM, stream_id, payload, length)
            elif kind == HEADERS:
                frame = self._headers(flags, stream_id, payload)
            else:
                frame = self._control(kind, flags, stream_id, payload)
            if frame is not None:
                return frame

    def _headers(self, flags: int, stream_id: int, payload: bytes) -> Frame | None:
        if not stream_id:
            raise H2ConnectionError(PROTOCOL_ERROR, "HEADERS on stream 0")
        value = 0
        start, pad = 0, 0
        if flags & PADDED:
            if not payload:
                raise H2ConnectionError(FRAME_SIZE_ERROR, "padded frame without a Pad Length field")
            start, pad = 1, payload[0]
        if flags & PRIORITY_FLAG:
            if len(payload) < start + 5:
                raise H2ConnectionError(FRAME_SIZE_ERROR, "HEADERS too short for its priority fields")
            if int.from_bytes(payload[start : start + 4], "big") & STREAM_MASK == stream_id:
                value = PROTOCOL_ERROR  # §5.3.1: a stream depending on itself is a stream error
            start += 5
        if pad > len(payload) - start:  # §6.2: more padding than what is left for the block
            raise H2ConnectionError(PROTOCOL_ERROR, "padding exceeds the frame payload")
        block = payload[start : len(payload) - pad] if start or pad else payload
        if flags & END_HEADERS:
            return (HEADERS, flags & END_STREAM, stream_id, block, value)
        self.block_stream = stream_id
        self.block_parts = [block]
        self.block_size = 9 + len(block)
        self.block_flags = flags & END_STREAM
        self.block_value = value
        return None

    def _continuation(self, kind: int, flags: int, stream_id: int, payload: bytes) -> Frame | None:
        if kind != CONTINUATION or stream_id != self.block_stream:
            raise H2ConnectionError(PROTOCOL_ERROR, "expected CONTINUATION of the open header block")
        if self.max_continuations and len(self.block_parts) > self.max_continuations:
            raise H2ConnectionError(PROTOCOL_ERROR, "too many CONTINUATION frames in one header block")
        self.block_size += 9 + len(payload)
        if self.block_size > self.max_header_block:
            raise H2ConnectionError(ENHANCE_YOUR_CALM, "header block over the size limit")
        self.block_parts.append(payload)
        if not flags & END_HEADERS:
            return None
        block = b"".join(self.block_parts)
        self.block_parts = []
        self.block_stream = 0
        return (HEADERS, self.block_flags, stream_id, block, self.block_value)

    def _control(self, kind: int, flags: int, stream_id: int, payload: bytes) -> Frame | None:
        """Every frame type but DATA and HEADERS: check stream id and length rules (§6)."""
        length = len(payload)
        if kind == WINDOW_UPDATE:
            if length != 4:
                raise H2ConnectionError(FRAME_SIZE_ERROR, "WINDOW_UPDATE length is not 4")
            increment = int.from_bytes(payload, "big") & STREAM_MASK
            if not increment:
                if stream_id:
                    raise H2StreamError(stream_id, PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
                raise H2ConnectionError(PROTOCOL_ERROR, "WINDOW_UPDATE of 0")
            return (WINDOW_UPDATE, 0, stream_id, b"", increment)
        if kind == SETTINGS:
            if stream_id:
                raise H2ConnectionError(PROTOCOL_ERROR, "SETTINGS on a stream")
            if flags & ACK:
                if length:
                    raise H2ConnectionError(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
                return (SETTINGS, ACK, 0, b"", 0)
            if length % 6:
                raise H2ConnectionError(FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6")
            return (SETTINGS, 0, 0, payload, 0)
        if kind == RST_STREAM:
            if not stream_id:
                raise H2ConnectionError(PROTOCOL_ERROR, "RST_STREAM on stream 0")
            if length != 4:
                raise H2ConnectionError(FRAME_SIZE_ERROR, "RST_STREAM length is not 4")
            return (RST_STREAM, 0, stream_id, b"", int.from_bytes(payload, "big"))
        if kind == PING:
            if stream_id:
                raise H2ConnectionError(PROTOCOL_ERROR, "PING on a stream")
            if length != 8:
                raise H2ConnectionError(FRAME_SIZE_ERROR, "PING length is not 8")
            return (PING, flags & ACK, 0, payload, 0)
        if kind == GOAWAY:
            if stream_id:
                raise H2ConnectionError(PROTOCOL_ERROR, "GOAWAY on a stream")
            if length < 8:
                raise H2ConnectionError(FRAME_SIZE_ERROR, "GOAWAY shorter than 8 bytes")
            return (GOAWAY, 0, 0, payload, int.from_bytes(payload[4:8], "big"))
        if kind == PRIORITY:
            if not stream_id:
                raise H2ConnectionError(PROTOCOL_ERROR, "PRIORITY on stream 0")
            if length != 5:
                raise H2StreamError(stream_id, FRAME_SIZE_ERROR, "PRIORITY length is not 5")
            if int.from_bytes(payload[:4], "big") & STREAM_MASK == stream_id:
                raise H2StreamError(stream_id, PROTOCOL_ERROR, "stream depends on itself")
            return (PRIORITY, 0, stream_id, b"", 0)
        if kind == PUSH_PROMISE:
            raise H2ConnectionError(PROTOCOL_ERROR, "PUSH_PROMISE from a client")
        if kind == CONTINUATION:
            raise H2ConnectionError(PROTOCOL_ERROR, "CONTINUATION without an open header block")
        return (kind, flags, stream_id, b"", 0)  # §5.5: an unknown type, for the caller to ignore
