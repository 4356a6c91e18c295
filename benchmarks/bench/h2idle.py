"""Open N keep-alive connections that each made one request, then hold them idle (memory rows).

    python -m benchmarks.bench.h2idle --port P --connections 1000 --proto h2 --hold 60
    python -m benchmarks.bench.h2idle --port P --connections 1000 --proto http/1.1 --hold 60

An idle connection is measured as a client really leaves one: after a request and its response,
not straight after the handshake (servers allocate some state lazily, on the first request). Over
HTTP/2 that is the cleartext preface, SETTINGS (acknowledged both ways) and one GET on stream 1;
over HTTP/1.1 one keep-alive GET. The frames are written by hand (a static-table HPACK block), so the
client needs nothing but asyncio. It prints one JSON line once every connection is open (or failed)
and holds them until stdin closes, like `wsclient idle`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re

from benchmarks.bench.wsclient import _stdin_closed

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, HEADERS, DATA = 0x4, 0x1, 0x0
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def _literal(index: int, value: bytes) -> bytes:
    """HPACK literal without indexing, name from the static table (value shorter than 127 bytes)."""
    return bytes([index]) + bytes([len(value)]) + value


def h2_request(authority: bytes, path: bytes) -> bytes:
    """Preface, empty SETTINGS, and `GET path` on stream 1 with END_STREAM."""
    # static table: 2 = :method GET, 6 = :scheme http, 1 = :authority, 4 = :path
    block = b"\x82\x86" + _literal(0x01, authority) + _literal(0x04, path)
    return PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, END_STREAM | END_HEADERS, 1, block)


class Idle(asyncio.Protocol):
    """One connection: sends its request, resolves `answered` once the response has fully arrived."""

    def __init__(self, request: bytes, h2: bool) -> None:
        self.request, self.h2 = request, h2
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_exception(ConnectionError(f"closed before the response: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.h2:
            self._frames()
        else:
            head, found, body = bytes(self.buffer).partition(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            if found and length and len(body) >= int(length.group(1)):
                self._done()

    def _frames(self) -> None:
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            if len(self.buffer) < 9 + length:
                return
            kind, flags = self.buffer[3], self.buffer[4]
            stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            del self.buffer[: 9 + length]
            if kind == SETTINGS and not flags & ACK:
                self.transport.write(frame(SETTINGS, ACK, 0))  # type: ignore[union-attr]
            elif kind in (HEADERS, DATA) and stream == 1 and flags & END_STREAM:
                self._done()

    def _done(self) -> None:
        self.buffer.clear()
        if not self.answered.done():
            self.answered.set_result(None)


async def hold(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    h2 = args.proto == "h2"
    authority = f"{args.host}:{args.port}".encode()
    request = (
        h2_request(authority, args.path.encode())
        if h2
        else b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (args.path.encode(), authority)
    )
    gate = asyncio.Semaphore(100)  # a burst of thousands would measure the accept backlog instead

    async def one() -> Idle:
        async with gate:
            transport, conn = await asyncio.wait_for(
                loop.create_connection(lambda: Idle(request, h2), args.host, args.port), 10
            )
            try:
                await asyncio.wait_for(conn.answered, 10)
            except BaseException:
                transport.close()
                raise
            return conn

    outcomes = await asyncio.gather(*(one() for _ in range(args.connections)), return_exceptions=True)
    opened = [c for c in outcomes if isinstance(c, Idle)]
    failures = [f"{type(c).__name__}: {c}" for c in outcomes if not isinstance(c, Idle)]
    line = {"opened": len(opened), "failed": len(failures), "first_error": failures[0] if failures else None}
    print(json.dumps(line), flush=True)
    await _stdin_closed(args.hold)
    for conn in opened:
        if conn.transport is not None:
            conn.transport.close()
    await asyncio.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/plaintext")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--proto", choices=["h2", "http/1.1"], default="h2")
    parser.add_argument("--hold", type=float, default=60.0, help="longest hold, seconds")
    asyncio.run(hold(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
