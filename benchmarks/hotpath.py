"""Instructions per request on the HTTP hot path, without sockets: for callgrind.

`HttpProtocol` is fed N keep-alive requests through a fake transport, so what is counted is parse ->
scope -> app -> response encoding -> write, and no syscall or scheduling noise. Run it twice under
callgrind and divide the difference by the difference in N (fixed costs cancel out):

    for n in 200 2200; do PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python -m benchmarks.hotpath $n get httptools 2>&1 | grep Collected; done

`PYTHONHASHSEED=0` makes the count reproducible to the instruction (dict layouts otherwise vary).
Kinds: `get` (plaintext, 13 B) and `post` (a 4 KiB body echoed); parsers: httptools, h11; a 4th
argument `http2` measures HTTP/1.1 on a server started with --http2 (the negotiating protocol).
`HOTPATH_METRICS=1` in the environment turns the --metrics recorder on (the same recording a worker
does under palfrey's master or under gunicorn with PALFREY_METRICS_BIND).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from palfrey.config import Config
from palfrey.http.protocol import HttpProtocol
from palfrey.server.state import ServerState

GET = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
POST = b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4096\r\n\r\n" + b"x" * 4096


class _Transport:
    """Accepts writes and forgets them; never pauses."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, parts: Any) -> None:
        for part in parts:
            self.written += len(part)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


async def plaintext(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


async def echo(scope: Any, receive: Any, send: Any) -> None:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def run(count: int, kind: str, http: str, http2: bool = False) -> None:
    app = plaintext if kind == "get" else echo
    metrics = os.environ.get("HOTPATH_METRICS") == "1"
    config = Config(app, http=http, lifespan="off", metrics=metrics)
    state = ServerState(config, app, asyncio.get_running_loop())
    protocol = HttpProtocol(state)
    transport = _Transport()
    if http2:  # HTTP/1.1 requests on a server started with --http2: the negotiator goes first
        from palfrey.http2.h2c import Http2Options
        from palfrey.http2.negotiate import Negotiator

        negotiator = Negotiator(protocol, Http2Options(100))
        negotiator.connection_made(transport)  # type: ignore[arg-type]
        negotiator.data_received(GET if kind == "get" else POST)  # decides, then hands over
        count -= 1
    else:
        protocol.connection_made(transport)  # type: ignore[arg-type]
    request = GET if kind == "get" else POST
    for _ in range(count):
        protocol.data_received(request)
        while protocol.cycle is not None:
            await asyncio.sleep(0)
    assert transport.written > 0


if __name__ == "__main__":
    asyncio.run(
        run(
            int(sys.argv[1]),
            sys.argv[2],
            sys.argv[3] if len(sys.argv) > 3 else "httptools",
            len(sys.argv) > 4 and sys.argv[4] == "http2",
        )
    )
