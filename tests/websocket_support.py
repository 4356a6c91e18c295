"""The raw WebSocket test client and the helpers every `test_websocket*` module shares.

`RawWebSocket` (a raw socket, exact frames) is for where a client must misbehave: bad frames, bad
handshakes, frames sent ahead of the 101; `client()` is the real `websockets` asyncio client with
bounded waits; `run()` runs one asyncio client scenario, bounded.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import connect

from tests.support import ServerProcess, read_response

APP = "tests.apps.ws_apps:app"
COMBOS = [(http, ws) for http in ("httptools", "h11") for ws in ("websockets", "wsproto")]
MAX_SIZE = 65536
TIMEOUT = 10.0  # bound on every wait
KEY = base64.b64encode(b"0123456789abcdef").decode()
TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


# ----------------------------------------------------------------------------------------------------
# Clients
# ----------------------------------------------------------------------------------------------------


def run(scenario: Callable[[], Awaitable[Any]], timeout: float = TIMEOUT) -> Any:
    """Run one asyncio client scenario, bounded."""

    async def bounded() -> Any:
        return await asyncio.wait_for(scenario(), timeout)

    return asyncio.run(bounded())


def client(url: str, **kwargs: Any) -> connect:
    """The websockets client with bounded waits, never through a proxy from the environment."""
    kwargs.setdefault("open_timeout", TIMEOUT)
    kwargs.setdefault("close_timeout", TIMEOUT)
    return connect(url, proxy=None, **kwargs)


def ws_url(server: ServerProcess, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def handshake_request(path: str, extra: str = "", key: str = KEY) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    mask: bool = True,
    rsv1: bool = False,
    zero_key: bool = False,
) -> bytes:
    """One client frame (masked unless told otherwise; a zero masking key leaves bulk payloads as they are)."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        head += bytes([bit | length])
    elif length < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return head + payload
    if zero_key:
        return head + bytes(4) + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawWebSocket:
    """A WebSocket client on a raw socket: exact bytes out, server frames parsed in."""

    def __init__(self, port: int, timeout: float = TIMEOUT, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the TCP window never grows past it
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""

    def __enter__(self) -> RawWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def handshake(self, path: str = "/echo", extra: str = "", after: bytes = b"") -> dict[str, str]:
        """Send the upgrade request (plus `after` in the same write); expect 101; return its headers."""
        self.send(handshake_request(path, extra) + after)
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1.1 101 "), head
        return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed by the server; buffered {self.buffer[:200]!r}")
        self.buffer += chunk

    def _take(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def recv_frame(self) -> tuple[int, bool, bytes]:
        """(opcode, fin, payload) of the next server frame (server frames are never masked)."""
        first, second = self._take(2)
        assert not second & 0x80, "server frames must not be masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
        return first & 0x0F, bool(first & 0x80), self._take(length)

    def recv_data(self, answer_pings: bool = True) -> tuple[int, bytes]:
        """The next data or close frame; pings are answered (or ignored) on the way."""
        while True:
            opcode, _, payload = self.recv_frame()
            if opcode == PING:
                if answer_pings:
                    self.send(frame(PONG, payload))
                continue
            if opcode != PONG:
                return opcode, payload

    def recv_close(self) -> tuple[int, str]:
        opcode, payload = self.recv_data()
        assert opcode == CLOSE, (opcode, payload[:100])
        code = struct.unpack("!H", payload[:2])[0] if payload else 1005
        return code, payload[2:].decode()

    def closed(self, timeout: float = TIMEOUT) -> bool:
        """True once the server closes the TCP connection (everything left is read and dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True
            except TimeoutError:
                continue
        return False


def raw_handshake(port: int, path: str, extra: str = "") -> tuple[int, dict[str, str], bytes]:
    """An upgrade request answered with something other than 101: status, headers, body (read to close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(handshake_request(path, extra))
        status, headers, body = read_response(sock, TIMEOUT)
        if "content-length" not in headers:
            assert headers.get("connection") == "close"
        return status, headers, body
