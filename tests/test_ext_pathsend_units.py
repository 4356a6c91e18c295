"""pathsend's read loop on a fake transport (no socket, so no sendfile): it never holds more than a
piece of the file beyond the transport's high-water mark while the client does not read, and the
whole file arrives once it does. The real-socket versions are in test_ext_pathsend.py."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from palfrey.config import Config
from palfrey.http.pathsend import PIECE
from palfrey.http.protocol import HttpProtocol
from palfrey.server.state import ServerState
from tests.support import FakeTransport

HIGH_WATER = 65536


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_read_loop_holds_one_piece_until_the_client_reads(http: str, tmp_path: Path) -> None:
    content = os.urandom(40 * PIECE + 123)
    path = tmp_path / "file.bin"
    path.write_bytes(content)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        state = ServerState(Config(app, http=http, lifespan="off"), app, loop)
        protocol = HttpProtocol(state)
        transport = FakeTransport(protocol, HIGH_WATER)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(b"GET /f HTTP/1.1\r\nHost: t\r\n\r\n")
        for _ in range(50):  # the client does not read: the server must stop writing
            await asyncio.sleep(0)
        assert transport.write_paused
        assert transport.most_buffered <= HIGH_WATER + PIECE + 512, transport.most_buffered
        for _ in range(2000):
            if transport.written.endswith(content[-123:]) and len(transport.written) > len(content):
                break
            transport.client_reads()
            await asyncio.sleep(0)
        head, _, body = bytes(transport.written).partition(b"\r\n\r\n")
        assert b"content-length: %d" % len(content) in head
        assert body == content
        assert transport.most_buffered <= HIGH_WATER + PIECE + 512

    asyncio.run(main())


def test_read_loop_range_past_the_end_closes_after_what_the_file_has(tmp_path: Path) -> None:
    content = os.urandom(PIECE + 10)
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    raised: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        with open(path, "rb") as file:
            message = {
                "type": "http.response.zerocopysend",
                "file": file,
                "offset": 0,
                "count": len(content) + 5,
            }
            try:
                await send(message)
            except RuntimeError as exc:
                raised.append(str(exc))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        state = ServerState(Config(app, lifespan="off"), app, loop)
        protocol = HttpProtocol(state)
        transport = FakeTransport(protocol, HIGH_WATER)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        protocol.data_received(b"GET /f HTTP/1.1\r\nHost: t\r\n\r\n")
        for _ in range(200):
            if raised:
                break
            transport.client_reads()
            await asyncio.sleep(0)
        assert raised == [
            f"The file ended after {len(content)} of {len(content) + 5} bytes; the connection is closed"
        ]
        head, _, body = bytes(transport.written).partition(b"\r\n\r\n")
        assert b"content-length: %d" % (len(content) + 5) in head and body == content
        assert protocol.last_request, "no further request on a connection whose response broke off"

    asyncio.run(main())
