"""palfrey's own HTTP/2 frame codec (palfrey/http2/wire/frames.py, writer.py) against RFC 9113 and
the `hyperframe` library as a peer: frames it serializes parse to the same fields here, frames
written here parse in hyperframe, and every framing error the RFC requires is raised with its
code and its kind (connection or stream error)."""

from __future__ import annotations

import random

import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    ExtensionFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from palfrey.http2.wire import frames as f
from palfrey.http2.wire.errors import H2ConnectionError, H2StreamError
from palfrey.http2.wire.writer import FrameWriter, frame_head

SETTINGS0 = SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 65535}).serialize()


def reader_after_handshake(**kwargs: int) -> f.FrameReader:
    reader = f.FrameReader(**kwargs)
    reader.feed(f.PREFACE + SETTINGS0)
    assert reader.next() == (f.SETTINGS, 0, 0, SETTINGS0[9:], 0)
    return reader


def read_all(reader: f.FrameReader, data: bytes) -> list[f.Frame]:
    reader.feed(data)
    out = []
    while (frame := reader.next()) is not None:
        out.append(frame)
    return out


def parse_with_hyperframe(data: bytes) -> list[Frame]:
    frames = []
    view = memoryview(data)
    while view:
        frame, length = Frame.parse_frame_header(view[:9])
        frame.parse_body(view[9 : 9 + length])
        frames.append(frame)
        view = view[9 + length :]
    return frames


def test_reference_frames_parse_to_their_fields() -> None:
    data_frame = DataFrame(1, b"hello", flags={"END_STREAM", "PADDED"})
    data_frame.pad_length = 10
    headers = HeadersFrame(3, b"\x82\x86", flags={"END_HEADERS", "END_STREAM", "PADDED", "PRIORITY"})
    headers.pad_length, headers.depends_on, headers.stream_weight = 3, 1, 15
    sequence = [
        data_frame,
        headers,
        WindowUpdateFrame(0, window_increment=1000),
        WindowUpdateFrame(5, window_increment=1),
        RstStreamFrame(7, error_code=8),
        PingFrame(0, opaque_data=b"12345678"),
        PingFrame(0, opaque_data=b"abcdefgh", flags={"ACK"}),
        SettingsFrame(0, flags={"ACK"}),
        GoAwayFrame(0, last_stream_id=9, error_code=2, additional_data=b"bye"),
        PriorityFrame(11, depends_on=1),  # returned bare (RFC 9113 deprecates priority): counted
        ExtensionFrame(0xFA, 0, flag_byte=0, body=b"ignored"),  # unknown type: returned bare
    ]
    got = read_all(reader_after_handshake(), b"".join(frame.serialize() for frame in sequence))
    goaway_payload = (9).to_bytes(4, "big") + (2).to_bytes(4, "big") + b"bye"
    assert got == [
        (f.DATA, f.END_STREAM, 1, b"hello", 1 + 5 + 10),
        (f.HEADERS, f.END_STREAM, 3, b"\x82\x86", 0),
        (f.WINDOW_UPDATE, 0, 0, b"", 1000),
        (f.WINDOW_UPDATE, 0, 5, b"", 1),
        (f.RST_STREAM, 0, 7, b"", 8),
        (f.PING, 0, 0, b"12345678", 0),
        (f.PING, f.ACK, 0, b"abcdefgh", 0),
        (f.SETTINGS, f.ACK, 0, b"", 0),
        (f.GOAWAY, 0, 0, goaway_payload, 2),
        (f.PRIORITY, 0, 11, b"", 0),
        (0xFA, 0, 0, b"", 0),
    ]
    assert f.goaway_last_stream(goaway_payload) == 9


def test_split_header_block_is_joined_and_frames_may_arrive_byte_by_byte() -> None:
    block = bytes(range(200))
    wire = (
        HeadersFrame(1, block[:50]).serialize()
        + ContinuationFrame(1, block[50:120]).serialize()
        + ContinuationFrame(1, block[120:], flags={"END_HEADERS"}).serialize()
        + DataFrame(1, b"x", flags={"END_STREAM"}).serialize()
    )
    reader = f.FrameReader()
    got = []
    for byte in f.PREFACE + SETTINGS0 + wire:
        got.extend(read_all(reader, bytes([byte])))
    assert got[1:] == [(f.HEADERS, 0, 1, block, 0), (f.DATA, f.END_STREAM, 1, b"x", 1)]


def test_settings_values() -> None:
    payload = SettingsFrame(
        0, settings={1: 0, 2: 0, 3: 100, 4: 2**31 - 1, 5: 2**24 - 1, 6: 8192, 8: 1, 99: 7}
    ).serialize()[9:]
    assert dict(f.decode_settings(payload)) == {
        1: 0,
        2: 0,
        3: 100,
        4: 2**31 - 1,
        5: 2**24 - 1,
        6: 8192,
        8: 1,
        99: 7,
    }
    for identifier, value, code in [
        (2, 2, 0x1),
        (4, 2**31, 0x3),
        (5, 16383, 0x1),
        (5, 2**24, 0x1),
        (8, 2, 0x1),
    ]:
        with pytest.raises(H2ConnectionError) as error:
            f.decode_settings(identifier.to_bytes(2, "big") + value.to_bytes(4, "big"))
        assert error.value.code == code


def raw(length: int, kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return frame_head(length, kind, flags, stream_id) + payload


CONNECTION_ERRORS = [
    ("DATA on stream 0", raw(1, f.DATA, 0, 0, b"x"), 0x1),
    ("HEADERS on stream 0", raw(1, f.HEADERS, f.END_HEADERS, 0, b"\x82"), 0x1),
    ("DATA padding = payload", raw(3, f.DATA, f.PADDED, 1, b"\x03ab"), 0x1),
    ("DATA padding > payload", raw(3, f.DATA, f.PADDED, 1, b"\x09ab"), 0x1),
    ("DATA padded, empty", raw(0, f.DATA, f.PADDED, 1), 0x6),
    (
        "HEADERS padding past block",
        raw(7, f.HEADERS, f.PADDED | f.PRIORITY_FLAG | f.END_HEADERS, 1, b"\x02\x00\x00\x00\x00\x10\x82"),
        0x1,
    ),
    (
        "HEADERS priority too short",
        raw(3, f.HEADERS, f.PRIORITY_FLAG | f.END_HEADERS, 1, b"\x00\x00\x00"),
        0x6,
    ),
    ("frame over SETTINGS_MAX_FRAME_SIZE", raw(16385, f.DATA, 0, 1, b"x" * 16385), 0x6),
    ("RST_STREAM on stream 0", raw(4, f.RST_STREAM, 0, 0, b"\x00" * 4), 0x1),
    ("RST_STREAM length 3", raw(3, f.RST_STREAM, 0, 1, b"\x00" * 3), 0x6),
    ("SETTINGS on a stream", raw(0, f.SETTINGS, 0, 1), 0x1),
    ("SETTINGS length 5", raw(5, f.SETTINGS, 0, 0, b"\x00" * 5), 0x6),
    ("SETTINGS ACK with payload", raw(6, f.SETTINGS, f.ACK, 0, b"\x00\x04\x00\x00\x00\x01"), 0x6),
    ("PUSH_PROMISE from a client", raw(4, f.PUSH_PROMISE, f.END_HEADERS, 1, b"\x00\x00\x00\x02"), 0x1),
    ("PING on a stream", raw(8, f.PING, 0, 1, b"\x00" * 8), 0x1),
    ("PING length 7", raw(7, f.PING, 0, 0, b"\x00" * 7), 0x6),
    ("GOAWAY on a stream", raw(8, f.GOAWAY, 0, 1, b"\x00" * 8), 0x1),
    ("GOAWAY length 7", raw(7, f.GOAWAY, 0, 0, b"\x00" * 7), 0x6),
    ("WINDOW_UPDATE length 3", raw(3, f.WINDOW_UPDATE, 0, 0, b"\x00" * 3), 0x6),
    ("WINDOW_UPDATE of 0 on the connection", raw(4, f.WINDOW_UPDATE, 0, 0, b"\x80\x00\x00\x00"), 0x1),
    ("PRIORITY on stream 0", raw(5, f.PRIORITY, 0, 0, b"\x00" * 5), 0x1),
    ("CONTINUATION without HEADERS", raw(1, f.CONTINUATION, f.END_HEADERS, 1, b"\x82"), 0x1),
    ("DATA inside a header block", raw(1, f.HEADERS, 0, 1, b"\x82") + raw(1, f.DATA, 0, 1, b"x"), 0x1),
    (
        "CONTINUATION of another stream",
        raw(1, f.HEADERS, 0, 1, b"\x82") + raw(1, f.CONTINUATION, f.END_HEADERS, 3, b"\x84"),
        0x1,
    ),
    ("unknown frame inside a header block", raw(1, f.HEADERS, 0, 1, b"\x82") + raw(0, 0xFA, 0, 0), 0x1),
]


@pytest.mark.parametrize(
    ("case", "wire", "code"), CONNECTION_ERRORS, ids=[case[0] for case in CONNECTION_ERRORS]
)
def test_connection_errors(case: str, wire: bytes, code: int) -> None:
    reader = reader_after_handshake()
    with pytest.raises(H2ConnectionError) as error:
        read_all(reader, wire)
    assert error.value.code == code, error.value.reason


STREAM_ERRORS = [
    ("WINDOW_UPDATE of 0 on a stream", raw(4, f.WINDOW_UPDATE, 0, 3, b"\x00\x00\x00\x00"), 0x1),
    ("PRIORITY length 4", raw(4, f.PRIORITY, 0, 3, b"\x00" * 4), 0x6),
    ("PRIORITY on itself", raw(5, f.PRIORITY, 0, 3, b"\x00\x00\x00\x03\x10"), 0x1),
]


@pytest.mark.parametrize(("case", "wire", "code"), STREAM_ERRORS, ids=[case[0] for case in STREAM_ERRORS])
def test_stream_errors_leave_the_reader_in_step(case: str, wire: bytes, code: int) -> None:
    reader = reader_after_handshake()
    reader.feed(wire + PingFrame(0, opaque_data=b"afterwar").serialize())
    with pytest.raises(H2StreamError) as error:
        reader.next()
    assert (error.value.stream_id, error.value.code) == (3, code)
    assert reader.next() == (f.PING, 0, 0, b"afterwar", 0)


def test_headers_depending_on_itself_is_reported_with_the_block() -> None:
    wire = raw(6, f.HEADERS, f.PRIORITY_FLAG | f.END_HEADERS, 5, b"\x00\x00\x00\x05\x10\x82")
    assert read_all(reader_after_handshake(), wire) == [(f.HEADERS, 0, 5, b"\x82", 0x1)]


def test_reserved_bits_are_ignored() -> None:
    wire = raw(1, f.DATA, 0, 1 | 1 << 31, b"x") + raw(4, f.WINDOW_UPDATE, 0, 0, b"\x80\x00\x00\x05")
    assert read_all(reader_after_handshake(), wire) == [
        (f.DATA, 0, 1, b"x", 1),
        (f.WINDOW_UPDATE, 0, 0, b"", 5),
    ]


def test_preface_and_first_frame() -> None:
    with pytest.raises(H2ConnectionError, match="preface"):
        read_all(f.FrameReader(), b"GET / HTTP/1.1\r\n")
    assert read_all(f.FrameReader(), f.PREFACE[:10]) == []  # a partial preface waits
    with pytest.raises(H2ConnectionError, match="first frame"):
        read_all(f.FrameReader(), f.PREFACE + PingFrame(0, opaque_data=b"12345678").serialize())
    with pytest.raises(H2ConnectionError, match="first frame"):
        read_all(f.FrameReader(), f.PREFACE + SettingsFrame(0, flags={"ACK"}).serialize())
    assert read_all(f.FrameReader(preface=False), SETTINGS0)[0][0] == f.SETTINGS  # after an h2c upgrade


def test_continuation_flood_is_cut_off() -> None:
    """CVE-2024-27316: endless CONTINUATION frames (here empty ones) never grow the buffer past the cap."""
    reader = reader_after_handshake(max_header_block=4096)
    reader.feed(raw(1, f.HEADERS, 0, 1, b"\x82"))
    assert reader.next() is None
    with pytest.raises(H2ConnectionError) as error:
        for _ in range(1000):
            read_all(reader, raw(0, f.CONTINUATION, 0, 1))
    assert error.value.code == 0xB
    assert reader.block_size <= 4096 + 9


def test_larger_max_frame_size() -> None:
    reader = reader_after_handshake(max_frame_size=65536)
    assert read_all(reader, raw(40000, f.DATA, 0, 1, b"y" * 40000)) == [(f.DATA, 0, 1, b"y" * 40000, 40000)]


def test_writer_frames_parse_in_hyperframe() -> None:
    writer = FrameWriter()
    block = bytes(random.Random(1).randbytes(40000))
    body = b"b" * 50000
    writer.headers(1, b"\x88", end_stream=False)
    writer.headers(3, block, end_stream=True)
    writer.data(1, body, end_stream=True)
    writer.data(5, b"", end_stream=True)
    writer.settings([(3, 100), (4, 1 << 20)])
    writer.settings_ack()
    writer.ping_ack(b"12345678")
    writer.window_update(0, 2**31 - 1)
    writer.rst_stream(7, 8)
    writer.goaway(9, 0, b"debug")
    frames = parse_with_hyperframe(writer.flush())
    assert writer.flush() == b""
    kinds = [type(frame).__name__ for frame in frames]
    assert kinds == ["HeadersFrame", "HeadersFrame", "ContinuationFrame", "ContinuationFrame"] + [
        "DataFrame"
    ] * 5 + [
        "SettingsFrame",
        "SettingsFrame",
        "PingFrame",
        "WindowUpdateFrame",
        "RstStreamFrame",
        "GoAwayFrame",
    ]
    assert frames[0].flags == {"END_HEADERS"} and frames[0].data == b"\x88"
    assert frames[1].flags == {"END_STREAM"} and frames[3].flags == {"END_HEADERS"}
    assert b"".join(frame.data for frame in frames[1:4]) == block
    assert all(len(frame.data) <= 16384 for frame in frames[:9])
    assert b"".join(frame.data for frame in frames[4:8]) == body
    assert [frame.flags for frame in frames[4:9]] == [set(), set(), set(), {"END_STREAM"}, {"END_STREAM"}]
    assert frames[9].settings == {3: 100, 4: 1 << 20} and frames[10].flags == {"ACK"}
    assert frames[11].opaque_data == b"12345678" and frames[11].flags == {"ACK"}
    assert frames[12].window_increment == 2**31 - 1
    assert (frames[13].stream_id, frames[13].error_code) == (7, 8)
    assert (frames[14].last_stream_id, frames[14].error_code, frames[14].additional_data) == (9, 0, b"debug")


def test_writer_round_trips_through_the_reader() -> None:
    writer = FrameWriter(max_frame_size=16384)
    writer.headers(1, b"h" * 20000)
    writer.data(1, b"d" * 40000, end_stream=True)
    got = read_all(reader_after_handshake(), writer.flush())
    assert got[0] == (f.HEADERS, 0, 1, b"h" * 20000, 0)
    assert b"".join(frame[3] for frame in got[1:]) == b"d" * 40000
    assert [frame[1] for frame in got[1:]] == [0, 0, f.END_STREAM]
