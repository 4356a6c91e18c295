"""Measure what an open WebSocket costs palfrey in resident memory, compression on and off.

    python -m docs_src.websockets.memory [--connections 2000] [--ws websockets wsproto]

For each engine and setting it starts `palfrey docs_src.websockets.echo:app`, opens N connections
from raw sockets (offering permessage-deflate when compression is on), reads the server's RSS, then
sends ~1.2 KiB JSON-like messages on every connection (compressed when negotiated) and reads
the echoes, enough of them that zlib's windows are really in use, and reads the RSS again. It prints the cost per connection in KiB,
which is what docs/websockets.md reports.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "off": ["--ws-per-message-deflate", "false"],
    "12-bit window, memLevel 5 (default)": [],
    "15-bit window, memLevel 5": ["--ws-deflate-window-bits", "15"],
    "15-bit window, memLevel 8 (zlib's defaults)": ["--ws-deflate-window-bits", "15", "MEMLEVEL8"],
}
# zlib's memLevel is not a setting; this variant patches the constant to show what it saves.
_PATCHED = (
    "import runpy, sys, palfrey.websocket.settings as s; s.DEFLATE_MEM_LEVEL = 8; "
    "sys.argv[0] = 'palfrey'; runpy.run_module('palfrey', run_name='__main__')"
)


def message(number: int) -> bytes:
    """A ~1.2 KiB JSON-like tick, different every time (as real traffic is)."""
    rnd = int.from_bytes(os.urandom(8), "big")
    bids = b",".join(b'{"p":%d.%d,"q":%d}' % (100 + i, (rnd >> i) % 100, (rnd * i) % 9973) for i in range(40))
    return b'{"type":"tick","n":%d,"symbol":"PALF","price":%d.%d,"bids":[%s]}' % (
        number,
        rnd % 1000,
        rnd % 97,
        bids,
    )


def rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    assert match is not None
    return int(match.group(1))


def start(ws: str, extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    patched = "MEMLEVEL8" in extra
    extra = [arg for arg in extra if arg != "MEMLEVEL8"]
    command = [sys.executable, "-c", _PATCHED] if patched else [sys.executable, "-m", "palfrey"]
    command += ["docs_src.websockets.echo:app", "--port", "0", "--ws", ws, "--lifespan", "off"]
    command += ["--no-access-log", "--ws-ping-interval", "86400", *extra]  # this client answers no pings
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(rb"Palfrey running on http://127.0.0.1:(\d+)", line)
        if match:  # keep reading the output: a full pipe would block the server
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, int(match.group(1))
    raise RuntimeError(f"palfrey did not start (exit code {proc.wait()})")


def handshake(port: int, compress: bool) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    extensions = (
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if compress else ""
    )
    sock.sendall(
        f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extensions}\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:100]
    assert (b"permessage-deflate" in head) == compress
    return sock


def exchange(sock: socket.socket, compress: bool, text: bytes) -> None:
    """One masked text frame (compressed when negotiated), then read the echo frame."""
    payload, first = text, 0x81
    if compress:
        deflater = zlib.compressobj(wbits=-9)
        payload = (deflater.compress(text) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
        first |= 0x40  # RSV1: compressed
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    length = len(payload)
    head = bytes([first, 0x80 | length]) if length < 126 else bytes([first, 0xFE]) + struct.pack("!H", length)
    sock.sendall(head + mask + masked)
    data = b""

    def need(count: int) -> None:
        nonlocal data
        while len(data) < count:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the echo")
            data += chunk

    need(2)
    size, offset = data[1] & 0x7F, 2
    if size == 126:
        need(4)
        size, offset = struct.unpack("!H", data[2:4])[0], 4
    need(offset + size)


def measure(ws: str, extra: list[str], connections: int, messages: int) -> tuple[float, float]:
    compress = "false" not in extra
    proc, port = start(ws, extra)
    try:
        warm = handshake(port, compress)
        exchange(warm, compress, message(0))
        base = rss_kib(proc.pid)
        socks = [handshake(port, compress) for _ in range(connections)]
        idle = rss_kib(proc.pid)
        for number in range(messages):  # enough traffic to cycle through a 32 KiB window
            for sock in socks:
                exchange(sock, compress, message(number))
        active = rss_kib(proc.pid)
        for sock in [*socks, warm]:
            sock.close()
        return (idle - base) / connections, (active - base) / connections
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=40, help="~1.2 KiB messages each way per connection")
    parser.add_argument("--ws", nargs="+", default=["websockets", "wsproto"])
    args = parser.parse_args()
    print(f"{args.connections} connections; KiB of server RSS per connection")
    print(f"| engine | compression | idle | after {args.messages} messages each way |")
    print("|---|---|---:|---:|")
    for ws in args.ws:
        for label, extra in SETTINGS.items():
            idle, active = measure(ws, extra, args.connections, args.messages)
            print(f"| {ws} | {label} | {idle:.1f} | {active:.1f} |", flush=True)


if __name__ == "__main__":
    main()
