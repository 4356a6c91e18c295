"""A raw HTTP/2 client for the frame-level tests: h2's client state machine on a blocking socket,
every wait bounded. Shared by the HTTP/2 test modules (test modules
never import each other)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
from hyperframe.frame import Frame


class Client:
    """A raw HTTP/2 client: h2's state machine on a blocking socket, every wait bounded."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.h2.initiate_connection()
        self.events: list[Any] = []
        self.closed = False
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: str, *, body: bytes | None = None, end: bool = True, flush: bool = True) -> int:
        stream_id = self.h2.get_next_available_stream_id()
        headers = [(b":method", b"POST" if body is not None else b"GET"), (b":scheme", b"http")]
        headers += [(b":path", path.encode()), (b":authority", b"test")]
        self.h2.send_headers(stream_id, headers, end_stream=body is None and end)
        if body is not None:
            self.h2.send_data(stream_id, body, end_stream=end)
        if flush:
            self.flush()
        return stream_id

    def read_until(self, done: Callable[[], bool], timeout: float = 5.0, ack: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; events: {self.events[-10:]}")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                if done():
                    return
                raise AssertionError(f"connection closed; events: {self.events[-10:]}")
            for event in self.h2.receive_data(data):
                self.events.append(event)
                if ack and isinstance(event, h2.events.DataReceived):
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self.flush()

    def read_for(self, seconds: float, step: Callable[[], bool]) -> None:
        """Read (and run `step` after each read) for `seconds`, however much arrives."""
        deadline = time.monotonic() + seconds
        while not step() and (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return
            for event in self.h2.receive_data(data):
                self.events.append(event)
            self.flush()

    def body(self, stream_id: int) -> bytes:
        return b"".join(
            e.data for e in self.events if isinstance(e, h2.events.DataReceived) and e.stream_id == stream_id
        )

    def ended(self, stream_id: int) -> bool:
        return any(isinstance(e, h2.events.StreamEnded) and e.stream_id == stream_id for e in self.events)

    def goaway(self) -> Any:
        return next((e for e in self.events if isinstance(e, h2.events.ConnectionTerminated)), None)

    def close(self) -> None:
        self.sock.close()


def get_json(port: int, path: str) -> Any:
    """One GET on a fresh prior-knowledge connection; the JSON body."""
    client = Client(port)
    try:
        stream_id = client.request(path)
        client.read_until(lambda: client.ended(stream_id))
        return json.loads(client.body(stream_id))
    finally:
        client.close()


def raw_frames(sock: socket.socket, timeout: float = 10.0) -> list[Any]:
    """Every frame until the server closes the connection (h2's own client state machine refuses
    frames after a GOAWAY, even for streams the GOAWAY says will be completed)."""
    data = b""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    frames = []
    while len(data) >= 9:
        frame, length = Frame.parse_frame_header(memoryview(data[:9]))
        frame.parse_body(memoryview(data[9 : 9 + length]))
        frames.append(frame)
        data = data[9 + length :]
    return frames


class FrameReader:
    """Frames as they arrive, parsed without h2's client state machine (which drops the frames of
    streams a GOAWAY promises to finish): HEADERS are decoded with one HPACK decoder per connection."""

    def __init__(self, sock: socket.socket) -> None:
        import hpack

        self.sock = sock
        self.buffer = b""
        self.decoder = hpack.Decoder()
        self.closed = False

    def next(self, timeout: float = 5.0) -> Any:
        """The next frame (HEADERS with `.fields` decoded), or None once the server closed."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buffer) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
                if len(self.buffer) >= 9 + length:
                    frame.parse_body(memoryview(self.buffer[9 : 9 + length]))
                    self.buffer = self.buffer[9 + length :]
                    if frame.type == 0x1:  # HEADERS (the server sends no CONTINUATION for small heads)
                        frame.fields = dict(self.decoder.decode(frame.data, raw=True))
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out waiting for a frame")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                self.closed = True
                return None
            self.buffer += data


def h2c_upgrade(port: int, body_chunks: list[bytes]) -> tuple[bytes, Client]:
    """An `Upgrade: h2c` POST with a chunked body on a raw socket; returns the HTTP/1.1 head answered."""
    client = Client.__new__(Client)
    client.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.events, client.closed = [], False
    settings = client.h2.initiate_upgrade_connection()
    assert settings is not None
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in body_chunks) + b"0\r\n\r\n"
    client.sock.sendall(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: " + settings + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    )
    head = b""
    while b"\r\n\r\n" not in head:
        data = client.sock.recv(1)
        assert data, head
        head += data
    return head, client
