"""The upstream API the seed table's `requests` and `httpx` pages call: a small HTTP/1.1 server on
loopback that answers every GET with a short JSON body after `?delay=` seconds (keep-alive).

Started once per bench run by the harness (`python -m benchmarks.bench.upstream --port N`), in the
peers' Python with uvloop when available. It does next to no work per request, so the pages measure
the server under test waiting on an upstream, not the upstream; its CPU is shared by every row alike.
"""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import parse_qs, urlsplit

BODY = b'{"status": "ok", "source": "upstream"}'
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)
MAX_HEAD = 16384


class Upstream(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.WriteTransport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's too)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1") if head else "/"
            delay = float(parse_qs(urlsplit(target).query).get("delay", ["0"])[0])
            self.loop.call_later(delay, self._answer)
        if len(self.buffer) > MAX_HEAD and self.transport is not None:
            self.transport.close()

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(HEAD + BODY)  # answers go out in request order: equal delays

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Upstream, host, port, backlog=4096)
    print(f"upstream on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
