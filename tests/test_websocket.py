"""WebSockets end to end on both parsers and both engines: the ASGI WebSocket spec as an app sees it.

One palfrey process per (parser, engine) pair (module-scoped) runs ``tests/apps/ws_apps.py``. The
client is the real `websockets` asyncio client; `RawWebSocket` (a raw socket, exact frames) is used
where a client must misbehave: bad frames, bad handshakes, frames sent ahead of the 101. Both come
from tests/websocket_support.py.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support import ServerProcess, raw_request, read_response, run_server
from tests.websocket_support import (  # noqa: F401  (re-exported: other branches still import them from here)
    APP,
    BINARY,
    CLOSE,
    COMBOS,
    KEY,
    MAX_SIZE,
    PING,
    PONG,
    TEXT,
    TIMEOUT,
    RawWebSocket,
    client,
    frame,
    handshake_request,
    raw_handshake,
    run,
    ws_url,
)

# ----------------------------------------------------------------------------------------------------
# Servers
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=COMBOS, ids=[f"{h}-{w}" for h, w in COMBOS])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    http, ws = request.param
    with run_server(APP, "--http", http, "--ws", ws, "--ws-max-size", str(MAX_SIZE)) as proc:
        yield proc


# ----------------------------------------------------------------------------------------------------
# Messages, scope, negotiation
# ----------------------------------------------------------------------------------------------------


def test_echo_text_and_bytes_with_compression(server: ServerProcess) -> None:
    async def scenario() -> tuple[list[Any], str]:
        async with client(ws_url(server, "/echo")) as ws:
            got = []
            for message in ("hello", "héllo wörld ✓", b"\x00\x01\xff" * 1000, "", b"", "x" * 60000):
                await ws.send(message)
                got.append(await ws.recv())
            return got, ws.response.headers.get("sec-websocket-extensions", "")

    got, extensions = run(scenario)
    assert got == ["hello", "héllo wörld ✓", b"\x00\x01\xff" * 1000, "", b"", "x" * 60000]
    assert "permessage-deflate" in extensions and "server_max_window_bits=12" in extensions
    server.wait_for_line(r"ws-disconnect /echo 1000")


def test_scope(server: ServerProcess) -> None:
    async def scenario() -> Any:
        url = ws_url(server, "/scope?x=1%202")
        async with client(url, subprotocols=["one", "two"], additional_headers={"X-Test": "yes"}) as ws:
            return json.loads(await ws.recv())

    scope = run(scenario)
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["scheme"] == "ws"
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == ("/scope", "/scope", "x=1%202")
    assert scope["root_path"] == ""
    assert ["x-test", "yes"] in scope["headers"]
    assert scope["subprotocols"] == ["one", "two"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ["127.0.0.1", server.port]
    assert scope["state"] == {"greeting": "hello"}  # a copy of the lifespan state
    assert scope["extensions"] == {"websocket.http.response": {}}


def test_subprotocol_chosen_by_the_app_and_extra_headers(server: ServerProcess) -> None:
    async def scenario() -> tuple[str | None, str, str | None]:
        async with client(ws_url(server, "/subprotocol"), subprotocols=["one", "two"]) as ws:
            return ws.subprotocol, str(await ws.recv()), ws.response.headers.get("x-app")

    assert run(scenario) == ("two", "two", "accepted")

    async def without() -> tuple[str | None, str]:
        async with client(ws_url(server, "/subprotocol")) as ws:
            return ws.subprotocol, str(await ws.recv())

    assert run(without) == (None, "None")


def test_client_close_code_and_reason_reach_the_app(server: ServerProcess) -> None:
    async def scenario() -> None:
        async with client(ws_url(server, "/echo")) as ws:
            await ws.send("ping")
            await ws.recv()
            await ws.close(4000, "client bye")

    run(scenario)
    server.wait_for_line(r"ws-disconnect /echo 4000 client bye")


def test_app_close_code_and_reason_reach_the_client(server: ServerProcess) -> None:
    async def scenario() -> tuple[int | None, str | None]:
        async with client(ws_url(server, "/close")) as ws:
            await ws.send("close please")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    assert run(scenario) == (4001, "server bye")
    server.wait_for_line(r"ws-disconnect /close 4001 server bye")  # the client's echo of the close


def test_long_close_reason_is_cut_to_fit_the_frame(server: ServerProcess) -> None:
    with RawWebSocket(server.port) as raw:
        raw.handshake("/close-long")
        code, reason = raw.recv_close()
    assert code == 4002 and len(reason.encode()) <= 123 and reason.startswith("é" * 61)


def test_client_gone_without_close_frame_is_1006(server: ServerProcess) -> None:
    with RawWebSocket(server.port) as raw:
        raw.handshake("/wait")
    server.wait_for_line(r"ws-disconnect /wait 1006")


def test_send_after_the_client_left_raises_an_oserror(server: ServerProcess) -> None:
    async def scenario() -> None:
        async with client(ws_url(server, "/send-after-close")):
            pass

    run(scenario)
    server.wait_for_line(r"send-after-close raised ClientDisconnected OSError")


def test_fragmented_message_with_a_ping_in_between(server: ServerProcess) -> None:
    with RawWebSocket(server.port) as raw:
        raw.handshake("/echo")
        raw.send(frame(TEXT, b"frag", fin=False) + frame(PING, b"p1") + frame(0x0, "mént".encode()))
        opcode, _, payload = raw.recv_frame()
        assert (opcode, payload) == (PONG, b"p1")
        assert raw.recv_data() == (TEXT, "fragmént".encode())


def test_frames_sent_with_the_handshake_wait_for_the_accept(server: ServerProcess) -> None:
    with RawWebSocket(server.port) as raw:
        raw.handshake("/echo", after=frame(TEXT, b"early") + frame(BINARY, b"bird"))
        assert raw.recv_data() == (TEXT, b"early")
        assert raw.recv_data() == (BINARY, b"bird")


# ----------------------------------------------------------------------------------------------------
# Refusals and HTTP answers
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "status"), [("/reject", 403), ("/no-accept", 403), ("/raise-before", 500)])
def test_handshake_refused_with_http_status(server: ServerProcess, path: str, status: int) -> None:
    async def scenario() -> int:
        with pytest.raises(InvalidStatus) as info:
            async with client(ws_url(server, path)):
                pass
        return info.value.response.status_code

    assert run(scenario) == status
    got, headers, _ = raw_handshake(server.port, path)
    assert got == status and headers["connection"] == "close"


def test_raise_after_accept_closes_1011(server: ServerProcess) -> None:
    async def scenario() -> int | None:
        async with client(ws_url(server, "/raise-after")) as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert run(scenario) == 1011
    server.wait_for_line(r"boom after accept")


@pytest.mark.parametrize("path", ["/http-response", "/http-response-length"])
def test_http_response_extension(server: ServerProcess, path: str) -> None:
    status, headers, body = raw_handshake(server.port, path)
    assert (status, headers["x-app"], headers["content-type"], body) == (
        418,
        "teapot",
        "text/plain",
        b"short and stout",
    )
    assert headers.get("content-length") == ("15" if path.endswith("length") else None)
    assert "upgrade" not in headers and "sec-websocket-accept" not in headers

    async def scenario() -> tuple[int, bytes]:
        with pytest.raises(InvalidStatus) as info:
            async with client(ws_url(server, path)):
                pass
        return info.value.response.status_code, info.value.response.body

    assert run(scenario) == (418, b"short and stout")


@pytest.mark.parametrize(
    ("extra", "key", "statuses"),
    [
        ("", "not-base64!", (400,)),
        ("", base64.b64encode(b"short").decode(), (400,)),
    ],
    ids=["key-not-base64", "key-not-16-bytes"],
)
def test_invalid_handshake_is_400_and_the_app_never_runs(
    server: ServerProcess, extra: str, key: str, statuses: tuple[int, ...]
) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(handshake_request("/never-runs", extra, key=key))
        status, headers, _ = read_response(sock, TIMEOUT)
    assert status in statuses and headers["connection"] == "close"
    assert "ws-disconnect /never-runs" not in server.output()  # the app never ran


def test_upgrade_in_http10_is_plain_http(server: ServerProcess) -> None:
    """RFC 9110 §7.8: a server ignores Upgrade in an HTTP/1.0 request."""
    request = handshake_request("/echo").replace(b"HTTP/1.1", b"HTTP/1.0")
    response = raw_request(server.port, request)
    assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(b"plain http /echo")


def test_unsupported_version_is_refused(server: ServerProcess) -> None:
    request = handshake_request("/never-runs").replace(b"Version: 13", b"Version: 8")
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        status, _, _ = read_response(sock, TIMEOUT)
    assert status in (400, 426)  # websockets: 400; wsproto: 426 with Sec-WebSocket-Version: 13
    assert "ws-disconnect /never-runs" not in server.output()  # the app never ran


# ----------------------------------------------------------------------------------------------------
# Limits and protocol errors
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
def test_message_over_max_size_is_1009(server: ServerProcess, compression: str | None) -> None:
    async def scenario() -> int | None:
        async with client(ws_url(server, "/echo"), compression=compression) as ws:
            # Under the limit is fine (random bytes grow a little when "compressed", and websockets
            # also bounds the frame as received).
            await ws.send(os.urandom(MAX_SIZE - 1024))
            assert len(await ws.recv()) == MAX_SIZE - 1024
            await ws.send(os.urandom(MAX_SIZE + 1))
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert run(scenario) == 1009


def test_compressed_bomb_is_1009_not_memory(server: ServerProcess) -> None:
    """A few KiB on the wire that inflate to 50 MB: inflation stops at --ws-max-size."""

    async def scenario() -> int | None:
        async with client(ws_url(server, "/echo")) as ws:
            await ws.send(bytes(50_000_000))
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert run(scenario, timeout=30) == 1009


def test_fragments_over_max_size_are_1009(server: ServerProcess) -> None:
    with RawWebSocket(server.port) as raw:
        raw.handshake("/echo")
        piece = bytes(MAX_SIZE // 2)
        raw.send(frame(BINARY, piece, fin=False) + frame(0x0, piece, fin=False) + frame(0x0, b"!"))
        assert raw.recv_close()[0] == 1009
        assert raw.closed()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(TEXT, b"unmasked", mask=False), 1002),
        (frame(TEXT, b"\xff\xfe not utf-8"), 1007),
        (frame(0x3, b"reserved opcode"), 1002),
        (frame(0x0, b"continuation of nothing"), 1002),
        (frame(PING, b"fragmented ping", fin=False), 1002),
    ],
    ids=["unmasked", "bad-utf8", "reserved-opcode", "orphan-continuation", "fragmented-control"],
)
def test_bad_frames_close_with_the_engines_code(server: ServerProcess, data: bytes, code: int) -> None:
    with RawWebSocket(server.port) as raw:
        raw.handshake("/echo")
        raw.send(data)
        assert raw.recv_close()[0] == code
        assert raw.closed()
    server.wait_for_line(rf"ws-disconnect /echo {code}")

    async def still_serving() -> Any:
        async with client(ws_url(server, "/echo")) as ws:
            await ws.send("alive")
            return await ws.recv()

    assert run(still_serving) == "alive"


def test_access_log_shows_the_handshake(server: ServerProcess) -> None:
    async def scenario() -> None:
        async with client(ws_url(server, "/echo?logged=1")):
            pass

    run(scenario)
    server.wait_for_line(r'"GET /echo\?logged=1 HTTP/1.1" 101')
