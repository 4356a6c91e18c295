"""Instructions per HTTP/2 request for palfrey's own wire layer (palfrey/http2/wire/) against the
libraries it replaces, in process, server side only: for callgrind.

Per request: read the client's frames (h2load's HEADERS block, which nghttp2 sends as five bytes of
dynamic-table indexes after the first request; `post` adds a 4-byte DATA frame), decode the header
block, encode a typical response head and frame it with a 13-byte DATA (END_STREAM), and join the
output. Engines:

- `wire`: palfrey.http2.wire (FrameReader, hpack_decode.Decoder, hpack_encode.Encoder, FrameWriter);
- `machine`: palfrey.http2.wire.machine.ServerMachine, the codec plus stream states and flow
  control (what compares with `h2`);
- `hpack`: the same steps with `hyperframe` (frame objects) and `hpack` (the libraries h2 uses);
- `h2`: h2's whole H2Connection as palfrey runs it today (receive_data → events, send_headers,
  send_data, data_to_send): what the wire layer and the connection state machine replace together;
- `zttp`: uvicorn + zttp's engine (native), for scale (not a default engine: it is installed only
  in the bench peers' venv).

Run under callgrind with two request counts and divide the difference (fixed costs cancel out);
the client's cost (encoding the requests, engine `none`) is measured the same way and subtracted:

    .venv/bin/python -m benchmarks.h2_engine            # runs callgrind itself, prints the table
    .venv/bin/python -m benchmarks.h2_engine wire       # only these engines
    PYTHONPATH=. benchmarks/.venv-peers/bin/python -m benchmarks.h2_engine zttp   # zttp: peers' venv
    .venv/bin/python -m benchmarks.h2_engine 2000 wire get   # one run (what callgrind measures)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

H2LOAD_HEAD = [
    (b":path", b"/"),
    (b":scheme", b"http"),
    (b":authority", b"127.0.0.1:8000"),
    (b":method", b"GET"),
    (b"user-agent", b"h2load nghttp2/1.52.0"),
]
RESPONSE_HEAD = [
    (b":status", b"200"),
    (b"server", b"palfrey"),
    (b"date", b"Thu, 03 Dec 2026 15:21:00 GMT"),
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", b"13"),
]
BODY = b"Hello, world!"


def client_chunks(count: int, kind: str) -> list[bytes]:
    """The bytes a client sends for `count` requests, one chunk per request (preface and
    SETTINGS in front of the first), header blocks encoded with indexing as nghttp2 does."""
    import hpack
    from hyperframe.frame import DataFrame, HeadersFrame, SettingsFrame, WindowUpdateFrame

    encoder = hpack.Encoder()
    head = H2LOAD_HEAD if kind == "get" else [*H2LOAD_HEAD[:3], (b":method", b"POST"), *H2LOAD_HEAD[4:]]
    chunks = []
    for i in range(count):
        stream_id = 1 + 2 * i
        flags = {"END_HEADERS", "END_STREAM"} if kind == "get" else {"END_HEADERS"}
        chunk = HeadersFrame(stream_id, encoder.encode(head), flags=flags).serialize()
        if kind == "post":
            chunk += DataFrame(stream_id, b"ping", flags={"END_STREAM"}).serialize()
        chunks.append(chunk)
    settings = SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 2**31 - 1}).serialize()
    window = WindowUpdateFrame(0, window_increment=2**30).serialize()
    chunks[0] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings + window + chunks[0]
    return chunks


def run_wire(chunks: list[bytes]) -> int:
    from palfrey.http2.wire.frames import DATA, END_STREAM, HEADERS, FrameReader
    from palfrey.http2.wire.hpack_decode import Decoder
    from palfrey.http2.wire.hpack_encode import Encoder
    from palfrey.http2.wire.writer import FrameWriter

    reader, decoder, encoder, writer = FrameReader(), Decoder(), Encoder(), FrameWriter()
    sent = 0
    for chunk in chunks:
        reader.feed(chunk)
        while (frame := reader.next()) is not None:
            kind, flags, stream_id, payload, _ = frame
            if kind == HEADERS:
                fields = decoder.decode(payload)
                assert fields[0][0] == b":path"
            elif kind != DATA:
                continue
            if flags & END_STREAM:
                writer.headers(stream_id, encoder.encode(RESPONSE_HEAD))
                writer.data(stream_id, BODY, end_stream=True)
        sent += len(writer.flush())
    return sent


def run_machine(chunks: list[bytes]) -> int:
    from palfrey.http2.wire import machine

    conn = machine.ServerMachine(initial_window_size=2**20)
    conn.initiate()
    conn.data_to_send()
    request, body = machine.REQUEST, machine.BODY
    sent = 0
    for chunk in chunks:
        for kind, stream_id, value, end_stream in conn.receive(chunk):
            if kind == request:
                assert value[0][0] == b":path"
            elif kind == body:
                conn.consumed(stream_id, len(value))
            else:
                continue
            if end_stream:
                conn.respond(stream_id, RESPONSE_HEAD, BODY)
        sent += len(conn.data_to_send())
    return sent


def run_hpack(chunks: list[bytes]) -> int:
    import hpack
    from hyperframe.frame import DataFrame, Frame, HeadersFrame

    decoder, encoder = hpack.Decoder(), hpack.Encoder()
    sent = 0
    for chunk in chunks:
        view = memoryview(chunk)
        if view[:3] == b"PRI":
            view = view[24:]
        out = []
        while view:
            frame, length = Frame.parse_frame_header(view[:9])
            frame.parse_body(view[9 : 9 + length])
            view = view[9 + length :]
            if isinstance(frame, HeadersFrame):
                fields = decoder.decode(frame.data, raw=True)
                assert fields[0][0] == b":path"
            elif not isinstance(frame, DataFrame):
                continue
            if "END_STREAM" in frame.flags:
                block = encoder.encode(RESPONSE_HEAD)
                out.append(HeadersFrame(frame.stream_id, block, flags={"END_HEADERS"}).serialize())
                out.append(DataFrame(frame.stream_id, BODY, flags={"END_STREAM"}).serialize())
        sent += len(b"".join(out))
    return sent


def run_h2(chunks: list[bytes]) -> int:
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    conn.initiate_connection()
    sent = 0
    for chunk in chunks:
        for event in conn.receive_data(chunk):
            if type(event) is h2.events.DataReceived:
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif type(event) is h2.events.StreamEnded:
                stream_id = event.stream_id
                conn.send_headers(stream_id, RESPONSE_HEAD)
                conn.send_data(stream_id, BODY, end_stream=True)
        sent += len(conn.data_to_send())
    return sent


def run_zttp(chunks: list[bytes]) -> int:
    """uvicorn's `--http zttp` engine (Zig core), only in the bench peers' venv (the numbers
    then include its native code)."""
    import zttp  # type: ignore[import-not-found]

    conn = zttp.Connection(zttp.SERVER, zttp.HTTP2)
    conn.initiate_connection()
    conn.data_to_send()
    end, need, request = zttp.EndOfMessage, zttp.NEED_DATA, zttp.Request
    sent = 0
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if event is need:
                break
            if type(event) is request:
                assert event.headers is not None
            elif type(event) is end:
                stream = conn.stream(event.stream_id)
                stream.send_response(200, RESPONSE_HEAD[1:])
                stream.send_data(BODY)
                stream.end_message()
        sent += len(conn.data_to_send())
    return sent


def run_none(chunks: list[bytes]) -> int:
    """Only the client side (building the chunks): subtracted from every engine's count."""
    return sum(map(len, chunks))


ENGINES: dict[str, Callable[[list[bytes]], int]] = {
    "none": run_none,
    "wire": run_wire,
    "machine": run_machine,
    "hpack": run_hpack,
    "h2": run_h2,
    "zttp": run_zttp,
}


def callgrind(count: int, engine: str, kind: str) -> int:
    """Instructions callgrind counts for one run (PYTHONHASHSEED=0 for reproducible dict layouts)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += ["-m", "benchmarks.h2_engine", str(count), engine, kind]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    line = next(line for line in result.stderr.splitlines() if "Collected" in line)
    return int(line.split()[-1])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1].isdigit():
        count, engine, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        chunks = client_chunks(count, kind)
        ENGINES[engine](chunks)
        return
    low, high = 200, 2200
    engines = sys.argv[1:] or [engine for engine in ENGINES if engine not in ("none", "zttp")]
    print(f"instructions per request (callgrind, ({high} - {low} requests) / {high - low}), server side only")
    for kind in ("get", "post"):
        client = callgrind(high, "none", kind) - callgrind(low, "none", kind)
        for engine in engines:
            per_request = (callgrind(high, engine, kind) - callgrind(low, engine, kind) - client) // (
                high - low
            )
            print(f"{kind:5} {engine:6} {per_request:>9,}", flush=True)


if __name__ == "__main__":
    main()
