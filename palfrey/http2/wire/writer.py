"""Serializing the frames a server sends (RFC 9113 §6), into one buffer joined once per flush.

Each method appends the 9-byte frame header and the payload to `parts`; a payload larger than the
peer's SETTINGS_MAX_FRAME_SIZE is split into `memoryview` slices (no copy) and `flush()` copies
everything once with `b"".join`. Flow control is not the writer's business: `data()` sends what
it is given, the caller has already taken it from both windows.
"""

from __future__ import annotations

from palfrey.http2.wire.frames import (
    ACK,
    CONTINUATION,
    DATA,
    DEFAULT_MAX_FRAME_SIZE,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEAD,
    HEADERS,
    PING,
    RST_STREAM,
    SETTINGS,
    STREAM_MASK,
    WINDOW_UPDATE,
)

Buffer = bytes | memoryview
_pack = HEAD.pack


def frame_head(length: int, kind: int, flags: int, stream_id: int) -> bytes:
    """The 9-byte frame header (§4.1)."""
    return _pack(length >> 16, length & 0xFFFF, kind, flags, stream_id)


class FrameWriter:
    """One connection's outbound frames, waiting for `flush()`."""

    __slots__ = ("max_frame_size", "parts")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.parts: list[Buffer] = []
        self.max_frame_size = max_frame_size  # the peer's SETTINGS_MAX_FRAME_SIZE

    def flush(self) -> bytes:
        """Everything written so far as one bytes object (b"" when nothing is pending)."""
        if not self.parts:
            return b""
        data = b"".join(self.parts)
        self.parts.clear()
        return data

    def headers(self, stream_id: int, block: bytes, end_stream: bool = False) -> None:
        """HEADERS, and CONTINUATION frames for a block larger than one frame (§6.2, §6.10)."""
        parts = self.parts
        size = self.max_frame_size
        flags = END_STREAM if end_stream else 0
        if len(block) <= size:
            parts.append(
                _pack(len(block) >> 16, len(block) & 0xFFFF, HEADERS, flags | END_HEADERS, stream_id)
            )
            parts.append(block)
            return
        view = memoryview(block)
        parts.append(frame_head(size, HEADERS, flags, stream_id))
        parts.append(view[:size])
        for start in range(size, len(block), size):
            chunk = view[start : start + size]
            last = start + size >= len(block)
            parts.append(frame_head(len(chunk), CONTINUATION, END_HEADERS if last else 0, stream_id))
            parts.append(chunk)

    def data(self, stream_id: int, payload: Buffer, end_stream: bool = False) -> None:
        """DATA frames of at most the peer's frame size; END_STREAM on the last (§6.1)."""
        parts = self.parts
        size = self.max_frame_size
        length = len(payload)
        if length <= size:
            parts.append(
                _pack(length >> 16, length & 0xFFFF, DATA, END_STREAM if end_stream else 0, stream_id)
            )
            if length:
                parts.append(payload)
            return
        view = memoryview(payload)
        for start in range(0, length, size):
            chunk = view[start : start + size]
            last = end_stream and start + size >= length
            parts.append(frame_head(len(chunk), DATA, END_STREAM if last else 0, stream_id))
            parts.append(chunk)

    def settings(self, pairs: list[tuple[int, int]]) -> None:
        """SETTINGS with these (identifier, value) pairs (§6.5)."""
        payload = b"".join(
            identifier.to_bytes(2, "big") + value.to_bytes(4, "big") for identifier, value in pairs
        )
        self.parts.append(frame_head(len(payload), SETTINGS, 0, 0) + payload)

    def settings_ack(self) -> None:
        self.parts.append(frame_head(0, SETTINGS, ACK, 0))

    def ping_ack(self, opaque: bytes) -> None:
        """The answer to a PING: the same 8 bytes, ACK set (§6.7)."""
        self.parts.append(frame_head(8, PING, ACK, 0) + opaque)

    def window_update(self, stream_id: int, increment: int) -> None:
        """Credit for the peer (§6.9); stream 0 is the connection window."""
        self.parts.append(frame_head(4, WINDOW_UPDATE, 0, stream_id) + increment.to_bytes(4, "big"))

    def rst_stream(self, stream_id: int, code: int) -> None:
        self.parts.append(frame_head(4, RST_STREAM, 0, stream_id) + code.to_bytes(4, "big"))

    def goaway(self, last_stream_id: int, code: int, debug: bytes = b"") -> None:
        """GOAWAY (§6.8): streams above `last_stream_id` were not and will not be processed."""
        payload = (last_stream_id & STREAM_MASK).to_bytes(4, "big") + code.to_bytes(4, "big") + debug
        self.parts.append(frame_head(len(payload), GOAWAY, 0, 0) + payload)
