"""HTTP/2 attacks played frame by frame against a real `palfrey --http2` on a real socket: the
HPACK bomb and header-list limit, floods of frames that carry no request (CVE-2019-9512/9515/9518
and kin), resets the client makes the server send ("MadeYouReset", CVE-2025-8671) and resets with
a body in flight. Each ends in the GOAWAY the attack earns while other connections are served, and
legitimate clients (h2load, httpx, a browser-like request pattern) are never cut off.

The attacker writes raw frames (hyperframe and one HPACK encoder, no client state machine that
would refuse to send them); budgets are in palfrey/http2/floods.py and docs/http2.md."""

from __future__ import annotations

import socket
import struct
import subprocess
import tracemalloc
from collections.abc import Iterable, Iterator
from typing import Any

import h2.errors
import h2.exceptions
import hpack
import httpx
import pytest
from hpack.hpack import encode_integer
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from palfrey.http2.negotiate import prepare_http2
from palfrey.http2.wire.machine import REQUEST, TOO_LARGE, ServerMachine
from tests.h2_client import FrameReader, get_json
from tests.support import ServerProcess, run_server

APP = "tests.apps.http2_apps:app"
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
BASE = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"t")]
CALM = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
MAX_STREAMS = 4  # --http2-max-concurrent-streams of the server here: a reset budget of 8 per 10 s


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with run_server(
        APP, "--http2", "--http2-max-concurrent-streams", str(MAX_STREAMS), "--limit-request-body", "100"
    ) as process:
        yield process


class Raw:
    """An attacker's connection: the client preface, then frames exactly as given."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.encoder = hpack.Encoder()
        self.reader = FrameReader(self.sock)
        self.sock.sendall(PREFACE + SettingsFrame(0).serialize())

    def send(self, *frames: Frame | bytes) -> bool:
        """Write the frames in one call; False once the server has closed the connection."""
        data = b"".join(f if isinstance(f, bytes) else f.serialize() for f in frames)
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        return True

    def headers(
        self, stream_id: int, fields: Iterable[tuple[bytes, bytes]] = BASE, *, end_stream: bool = True
    ) -> HeadersFrame:
        frame = HeadersFrame(stream_id)
        frame.data = self.encoder.encode(list(fields))
        frame.flags.add("END_HEADERS")
        if end_stream:
            frame.flags.add("END_STREAM")
        return frame

    def frames(self, timeout: float = 10.0) -> list[Any]:
        """Every frame the server writes until it closes the connection."""
        frames = []
        while (frame := self.reader.next(timeout)) is not None:
            frames.append(frame)
        return frames

    def close(self) -> None:
        self.sock.close()


def one_at_a_time(raw: Raw, streams: int, frames_of: Any) -> list[Any]:
    """Open `streams` streams one after the other, each after the server reset the one before
    (so the concurrency limit never binds, as in MadeYouReset); every frame read until the server
    closes the connection."""
    seen: list[Any] = []
    for i in range(streams):
        stream_id = 1 + 2 * i
        if not raw.send(*frames_of(stream_id)):
            break
        while (f := raw.reader.next()) is not None:
            seen.append(f)
            if isinstance(f, GoAwayFrame) or (isinstance(f, RstStreamFrame) and f.stream_id == stream_id):
                break
        if f is None or isinstance(f, GoAwayFrame):
            break
    return seen + raw.frames()


def goaway(frames: list[Any]) -> Any:
    return next((f for f in frames if isinstance(f, GoAwayFrame)), None)


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """Any frame, also of a type hyperframe does not know."""
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream_id) + payload


def data(stream_id: int, payload: bytes, *, end_stream: bool = False) -> DataFrame:
    f = DataFrame(stream_id)
    f.data = payload
    if end_stream:
        f.flags.add("END_STREAM")
    return f


def started(port: int) -> int:
    return int(get_json(port, "/started"))


def served(port: int) -> bool:
    """Another connection is answered (the attack cost its own connection only)."""
    with httpx.Client(http1=False, http2=True, timeout=5.0) as client:
        return client.get(f"http://127.0.0.1:{port}/").text == "ok"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


# HPACK bomb and the header-list limit


def bomb_block(raw: Raw, references: int) -> bytes:
    """A request whose 4 KB field enters the dynamic table, then is named again by index (one byte
    each): `references` bytes that decode to `references` times 4 KB."""
    field = (b"x-bomb", b"a" * 4000)
    block = raw.encoder.encode([*BASE, field])
    reference = raw.encoder.encode([field])
    assert len(reference) == 1
    return block + reference * references


@pytest.mark.parametrize("split", [False, True], ids=["one-frame", "continuations"])
def test_hpack_bomb_is_cut_off_at_the_header_list_limit(server: ServerProcess, split: bool) -> None:
    before = rss_kib(server.proc.pid)
    for _ in range(10):
        raw = Raw(server.port)
        if split:  # 48,000 references (~190 MB decoded) over four CONTINUATION frames
            block = bomb_block(raw, 48000)
            frames: list[Frame] = [HeadersFrame(1, data=block[:12000], flags=["END_STREAM"])]
            for offset in range(12000, len(block), 12000):
                frames.append(ContinuationFrame(1, data=block[offset : offset + 12000]))
            frames[-1].flags.add("END_HEADERS")
            raw.send(*frames)
        else:  # 12,000 references: ~48 MB decoded from a 16 KB frame
            raw.send(HeadersFrame(1, data=bomb_block(raw, 12000), flags=["END_HEADERS", "END_STREAM"]))
        answer = raw.frames()
        raw.close()
        assert goaway(answer) is not None and goaway(answer).error_code == CALM
        assert not any(isinstance(f, HeadersFrame) for f in answer)  # the request never reached the app
    assert served(server.port)
    # Decoding stopped at 64 KiB each time: ten bombs of 48-190 MB left the worker about as it was.
    assert rss_kib(server.proc.pid) - before < 32 * 1024


def test_hpack_bomb_decoding_stops_at_the_limit_in_process() -> None:
    """What the worker allocates for a bomb: palfrey's engine keeps no field past 64 KiB of header
    list, so the 16 KB block that names a 4 KB field 12,000 times costs well under 256 KiB, not the
    ~1.8 MB list (of shared values) or 48 MB (of copies) it expands to; the request is refused."""
    prepare_http2()  # the Huffman table is built at server start, not inside the measurement
    conn = ServerMachine()
    conn.initiate()
    raw = Raw.__new__(Raw)
    raw.encoder = hpack.Encoder()
    head = HeadersFrame(1, data=bomb_block(raw, 12000), flags=["END_HEADERS", "END_STREAM"])
    tracemalloc.start()
    try:
        events = conn.receive(PREFACE + SettingsFrame(0).serialize() + head.serialize())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [event[:2] for event in events if event[0] in (REQUEST, TOO_LARGE)] == [(TOO_LARGE, 1)]
    assert peak < 256 * 1024


def test_table_size_update_above_the_advertised_size_is_a_compression_error(server: ServerProcess) -> None:
    raw = Raw(server.port)
    update = encode_integer(1 << 20, 5)  # a 1 MiB dynamic table; we advertise HPACK's 4,096 bytes
    update[0] |= 0x20
    head = HeadersFrame(1, data=bytes(update) + raw.encoder.encode(BASE), flags=["END_HEADERS", "END_STREAM"])
    raw.send(head)
    answer = raw.frames()
    raw.close()
    assert goaway(answer) is not None
    assert goaway(answer).error_code == h2.errors.ErrorCodes.COMPRESSION_ERROR
    # An update within the advertised size is fine.
    raw = Raw(server.port)
    update = encode_integer(256, 5)
    update[0] |= 0x20
    head = HeadersFrame(1, data=bytes(update) + raw.encoder.encode(BASE), flags=["END_HEADERS", "END_STREAM"])
    raw.send(head)
    while (f := raw.reader.next()) is not None and not isinstance(f, HeadersFrame):
        assert not isinstance(f, GoAwayFrame)
    assert f is not None and f.fields[b":status"] == b"200"
    raw.close()


def test_header_list_over_the_advertised_size_is_refused() -> None:
    """--limit-request-fields times --limit-request-field-size below 64 KiB is what the decoder enforces."""
    args = ("--limit-request-fields", "8", "--limit-request-field-size", "1000")
    with run_server(APP, "--http2", *args) as process:
        raw = Raw(process.port)
        settings = raw.reader.next()
        assert isinstance(settings, SettingsFrame)
        assert settings.settings[SettingsFrame.MAX_HEADER_LIST_SIZE] == 8000
        raw.send(raw.headers(1, [*BASE, (b"x-a", b"a" * 3000)]))  # 3 KB: within the limit
        while (f := raw.reader.next()) is not None and not isinstance(f, HeadersFrame):
            pass
        assert f is not None and f.fields[b":status"] == b"200"
        big = [(b"x-%d" % i, b"a" * 3000) for i in range(3)]  # 9 KB decoded: over 8,000
        raw.send(raw.headers(3, [*BASE, *big]))
        answer = raw.frames()
        raw.close()
        assert goaway(answer) is not None and goaway(answer).error_code == CALM
        assert served(process.port)


# Floods of frames that carry no request


def _open_echo(raw: Raw) -> list[Frame | bytes]:
    return [raw.headers(1, [(b":method", b"POST"), *BASE[1:]], end_stream=False)]


FLOODS: dict[str, Any] = {
    "empty-data": lambda raw: _open_echo(raw) + [data(1, b"")] * 1500,
    "tiny-data": lambda raw: _open_echo(raw) + [data(1, b"x")] * 1500,
    "window-update": lambda raw: [WindowUpdateFrame(0, window_increment=1)] * 1500,
    "priority": lambda raw: [PriorityFrame(3 + 2 * i, depends_on=0) for i in range(1500)],
    "unknown-type": lambda raw: [frame(0x77, 0, 0)] * 1500,
    "rst-on-closed": lambda raw: [raw.headers(1), *[RstStreamFrame(1, error_code=8)] * 1500],
    "data-on-reset": lambda raw: [
        raw.headers(1, end_stream=False),
        RstStreamFrame(1, error_code=8),
        *[data(1, b"x" * 100)] * 1500,
    ],
}


@pytest.mark.parametrize("kind", sorted(FLOODS))
def test_useless_frame_flood_is_cut_off(server: ServerProcess, kind: str) -> None:
    raw = Raw(server.port)
    frames = FLOODS[kind](raw)
    for offset in range(0, len(frames), 100):  # in writes of 100 frames, as fast as the server reads
        if not raw.send(*frames[offset : offset + 100]):
            break
    answer = raw.frames()
    raw.close()
    assert goaway(answer) is not None and goaway(answer).error_code == CALM
    # The server's answers to the flood (RST_STREAM for each frame on a reset stream) stop with it.
    assert sum(isinstance(f, RstStreamFrame) for f in answer) <= 1001
    assert served(server.port)


def test_empty_header_blocks_are_resets_and_cut_off(server: ServerProcess) -> None:
    """An empty header block is a malformed request: a reset each, counted as rapid resets."""
    raw = Raw(server.port)
    answer = one_at_a_time(
        raw, 100, lambda i: [HeadersFrame(i, data=b"", flags=["END_HEADERS", "END_STREAM"])]
    )
    raw.close()
    assert goaway(answer) is not None and goaway(answer).error_code == CALM
    assert sum(isinstance(f, RstStreamFrame) for f in answer) <= 2 * MAX_STREAMS + 1


def test_empty_continuation_flood_is_a_protocol_error(server: ServerProcess) -> None:
    """Empty CONTINUATION frames never end a header block: h2 takes 64 per block, then the
    connection gets GOAWAY PROTOCOL_ERROR."""
    raw = Raw(server.port)
    raw.send(HeadersFrame(1, data=b""), *[ContinuationFrame(1, data=b"")] * 100)
    answer = raw.frames()
    raw.close()
    assert goaway(answer) is not None and goaway(answer).error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
    assert served(server.port)


def test_legitimate_clients_are_not_cut_off(server: ServerProcess) -> None:
    """Many requests, big downloads (their WINDOW_UPDATE frames) and a browser's PRIORITY and
    WINDOW_UPDATE frames around each request stay within the budget they earn."""
    with httpx.Client(http1=False, http2=True, timeout=10.0) as client:
        for _ in range(20):  # 20 MiB on one connection: hundreds of WINDOW_UPDATE frames back
            assert len(client.get(f"http://127.0.0.1:{server.port}/big").content) == 32 * 32768
        for _ in range(300):
            assert client.get(f"http://127.0.0.1:{server.port}/").text == "ok"
    raw = Raw(server.port)
    for batch in range(60):  # 1,500 requests, each with a PRIORITY and a WINDOW_UPDATE: 3,000 frames
        frames: list[Frame | bytes] = []
        for i in range(25):
            stream_id = 1 + 2 * (batch * 25 + i)
            frames += [PriorityFrame(stream_id, depends_on=0), WindowUpdateFrame(0, window_increment=1)]
            frames.append(raw.headers(stream_id))
        raw.send(*frames[: 3 * MAX_STREAMS])  # no more streams at once than the server allows
        answered = 0
        pending = frames[3 * MAX_STREAMS :]
        while answered < 25:
            f = raw.reader.next()
            assert f is not None and not isinstance(f, (GoAwayFrame, RstStreamFrame)), f
            if isinstance(f, DataFrame) and "END_STREAM" in f.flags:
                answered += 1
                if pending:
                    raw.send(*pending[:3])
                    pending = pending[3:]
    raw.close()


def test_h2load_many_requests_and_downloads_on_one_connection(server: ServerProcess) -> None:
    url = f"http://127.0.0.1:{server.port}"
    for args in (["-n", "20000", "-m", str(MAX_STREAMS), url + "/"], ["-n", "40", "-m", "2", url + "/big"]):
        out = subprocess.run(["h2load", "-c", "1", *args], capture_output=True, text=True, timeout=120).stdout
        total = args[1]
        assert f"{total} succeeded, 0 failed, 0 errored" in out, out


# Resets: by the client with a body in flight, and by the server for the client's fault


POST = [(b":method", b"POST"), *BASE[1:]]


def _made_you_reset(raw: Raw, stream_id: int, kind: str) -> list[Frame | bytes]:
    """One stream the server must reset because of what the client sent on it."""
    sleep = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/sleep?1"), (b":authority", b"t")]
    if kind == "window-overflow":  # a stream's send window past 2^31-1: FLOW_CONTROL_ERROR
        return [raw.headers(stream_id, sleep), WindowUpdateFrame(stream_id, window_increment=2**31 - 1)]
    if kind == "data-on-half-closed":  # DATA after END_STREAM: STREAM_CLOSED
        return [raw.headers(stream_id, sleep), data(stream_id, b"x")]
    if kind == "content-length":  # a body longer than its content-length: PROTOCOL_ERROR
        head = raw.headers(stream_id, [*POST, (b"content-length", b"1")], end_stream=False)
        return [head, data(stream_id, b"xx", end_stream=True)]
    if kind == "body-over-limit":  # past --limit-request-body: 413, then RST_STREAM
        return [raw.headers(stream_id, POST, end_stream=False), data(stream_id, b"x" * 200)]
    assert kind == "malformed-head"  # a connection-specific field: PROTOCOL_ERROR
    return [raw.headers(stream_id, [*BASE, (b"connection", b"close")])]


@pytest.mark.parametrize(
    "kind", ["window-overflow", "data-on-half-closed", "content-length", "body-over-limit", "malformed-head"]
)
def test_resets_the_client_makes_the_server_send_count_as_rapid_resets(
    server: ServerProcess, kind: str
) -> None:
    """MadeYouReset (CVE-2025-8671): each stream is reset by the server, not the client, so the
    client's concurrency limit never binds; the same reset budget cuts the connection off."""
    before = started(server.port)
    raw = Raw(server.port)
    answer = one_at_a_time(raw, 100, lambda stream_id: _made_you_reset(raw, stream_id, kind))
    raw.close()
    assert goaway(answer) is not None and goaway(answer).error_code == CALM
    assert sum(isinstance(f, RstStreamFrame) for f in answer) <= 2 * MAX_STREAMS + 1
    # App work stays bounded by the budget (plus the streams that may run at once).
    assert started(server.port) - before <= 3 * MAX_STREAMS + 1
    assert served(server.port)


def test_reset_with_a_body_in_flight(server: ServerProcess) -> None:
    """HEADERS, part of a body and RST_STREAM in a loop: no app sees a complete body, and the
    connection is cut off as a rapid reset."""
    before = get_json(server.port, "/counters")
    raw = Raw(server.port)
    for i in range(200):
        stream_id = 1 + 2 * i
        head = raw.headers(stream_id, [*POST, (b"content-length", b"80")], end_stream=False)
        if not raw.send(head, data(stream_id, b"x" * 40), RstStreamFrame(stream_id, error_code=8)):
            break
    answer = raw.frames()
    raw.close()
    assert goaway(answer) is not None and goaway(answer).error_code == CALM
    assert get_json(server.port, "/counters")["echoed"] == before["echoed"]
    assert served(server.port)
