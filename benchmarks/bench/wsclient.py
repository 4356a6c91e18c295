"""A small asyncio WebSocket load client (run as its own process, pinned to the client core).

It speaks just enough RFC 6455 to load a server without becoming the bottleneck: the handshake,
one pre-masked frame sent again and again, and a frame parser for what comes back. A Python client
built on a full WebSocket library would spend more CPU than the server under test.

    python -m benchmarks.bench.wsclient echo --port P --connections 64 --duration 5 --warmup 1
    python -m benchmarks.bench.wsclient idle --port P --connections 2000 [--deflate] --hold 60

`echo` prints one JSON object (messages/s, round-trip percentiles). `idle` opens the connections,
prints one JSON line once they are all open (or failed), then holds them until stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_MASK = b"\x37\xfa\x21\x3d"


def masked_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final client frame (clients must mask) carrying `payload`."""
    length = len(payload)
    if length < 126:
        head = bytes([0x80 | opcode, 0x80 | length])
    elif length < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    body = bytes(b ^ _MASK[i % 4] for i, b in enumerate(payload))
    return head + _MASK + body


def split_frames(buffer: bytearray) -> list[tuple[bool, int, bytes]]:
    """Remove every complete frame from `buffer`; return (fin, opcode, payload) for each."""
    frames = []
    while len(buffer) >= 2:
        length = buffer[1] & 0x7F
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                break
            length, offset = int.from_bytes(buffer[2:4], "big"), 4
        elif length == 127:
            if len(buffer) < 10:
                break
            length, offset = int.from_bytes(buffer[2:10], "big"), 10
        mask = b""
        if buffer[1] & 0x80:  # servers must not mask, but decode it if one does
            if len(buffer) < offset + 4:
                break
            mask, offset = bytes(buffer[offset : offset + 4]), offset + 4
        if len(buffer) < offset + length:
            break
        payload = bytes(buffer[offset : offset + length])
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        frames.append((bool(buffer[0] & 0x80), buffer[0] & 0x0F, payload))
        del buffer[: offset + length]
    return frames


def handshake_request(host: str, port: int, path: str, deflate: bool) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if deflate:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Stats:
    measuring: bool = False
    running: bool = True
    messages: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deflate: int = 0  # handshakes in which the server accepted permessage-deflate


class Connection(asyncio.Protocol):
    """One WebSocket connection; in echo mode it keeps exactly one message in flight."""

    def __init__(self, request: bytes, frame: bytes | None, stats: Stats) -> None:
        self.request = request
        self.frame = frame
        self.stats = stats
        self.buffer = bytearray()
        self.opened: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during handshake: {exc!r}"))
        elif self.stats.running and self.frame is not None:
            self.stats.errors.append(f"connection lost: {exc!r}")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.opened.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1")
            status_line = head.split("\r\n", 1)[0]
            del self.buffer[: end + 4]
            if " 101 " not in status_line + " ":
                self.opened.set_exception(ConnectionError(f"handshake answered {status_line!r}"))
                self.transport.close()  # type: ignore[union-attr]
                return
            if "permessage-deflate" in head.lower():
                self.stats.deflate += 1
            self.opened.set_result(True)
        for fin, opcode, payload in split_frames(self.buffer):
            if opcode == 0x9:  # ping: answer so the server keeps us
                self.transport.write(masked_frame(payload, 0xA))  # type: ignore[union-attr]
            elif opcode == 0x8:
                self.transport.close()  # type: ignore[union-attr]
            elif fin and opcode in (0x0, 0x1, 0x2):
                self._echoed()

    def _echoed(self) -> None:
        if self.stats.measuring:
            self.stats.messages += 1
            self.stats.latencies.append(time.perf_counter() - self.sent_at)
        if self.stats.running:
            self.send()

    def send(self) -> None:
        self.sent_at = time.perf_counter()
        self.transport.write(self.frame)  # type: ignore[arg-type,union-attr]

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"\x88\x82" + _MASK + bytes(b ^ _MASK[i] for i, b in enumerate(b"\x03\xe8")))
            self.transport.close()


async def open_connections(
    args: argparse.Namespace, frame: bytes | None, stats: Stats
) -> tuple[list[Connection], list[str]]:
    """Open `args.connections` connections, at most 100 handshakes at a time (a burst of thousands
    would overflow the server's accept backlog and measure that instead)."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(100)
    factory: Callable[[], Connection] = lambda: Connection(  # noqa: E731
        handshake_request(args.host, args.port, args.path, args.deflate), frame, stats
    )

    async def one() -> Connection:
        async with gate:
            transport, conn = await asyncio.wait_for(
                loop.create_connection(factory, args.host, args.port), 10
            )
            try:
                await asyncio.wait_for(conn.opened, 10)
            except BaseException:
                transport.close()
                raise
            return conn

    outcomes = await asyncio.gather(*(one() for _ in range(args.connections)), return_exceptions=True)
    opened = [c for c in outcomes if isinstance(c, Connection)]
    failures = [f"{type(c).__name__}: {c}" for c in outcomes if not isinstance(c, Connection)]
    return opened, failures


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def echo(args: argparse.Namespace) -> dict[str, object]:
    stats = Stats()
    connections, failures = await open_connections(args, masked_frame(b"m" * args.size), stats)
    if not connections:
        return {"error": failures[0] if failures else "no connection opened"}
    for conn in connections:
        conn.send()
    await asyncio.sleep(args.warmup)
    stats.measuring, started = True, time.perf_counter()
    await asyncio.sleep(args.duration)
    stats.measuring, elapsed = False, time.perf_counter() - started
    stats.running = False
    await asyncio.sleep(0.2)  # let the messages in flight come back before closing
    for conn in connections:
        conn.close()
    await asyncio.sleep(0.1)
    return {
        "connections": len(connections),
        "failed_connections": len(failures),
        "messages": stats.messages,
        "duration_s": elapsed,
        "messages_per_s": stats.messages / elapsed,
        "p50_s": percentile(stats.latencies, 50),
        "p99_s": percentile(stats.latencies, 99),
        "errors": len(stats.errors) + len(failures),
        "first_error": (failures + stats.errors)[0] if failures or stats.errors else None,
    }


async def idle(args: argparse.Namespace) -> None:
    stats = Stats()
    connections, failures = await open_connections(args, None, stats)
    line = {
        "opened": len(connections),
        "deflate": stats.deflate,
        "failed": len(failures),
        "first_error": failures[0] if failures else None,
    }
    print(json.dumps(line), flush=True)
    await _stdin_closed(args.hold)
    stats.running = False
    for conn in connections:
        conn.close()
    await asyncio.sleep(0.1)


async def _stdin_closed(limit: float) -> None:
    """Wait for EOF on stdin (the runner is done measuring), at most `limit` seconds."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    class Watch(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            if not done.done():
                done.set_result(None)

    transport, _ = await loop.connect_read_pipe(Watch, sys.stdin)
    try:
        await asyncio.wait_for(done, limit)
    except asyncio.TimeoutError:
        pass
    finally:
        transport.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["echo", "idle"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/ws")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=32, help="echo payload bytes")
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--hold", type=float, default=60.0, help="idle: longest hold, seconds")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    if args.mode == "idle":
        run(idle(args))
        return 0
    outcome = run(echo(args))
    print(json.dumps(outcome), flush=True)
    return 1 if "error" in outcome else 0


if __name__ == "__main__":
    raise SystemExit(main())
