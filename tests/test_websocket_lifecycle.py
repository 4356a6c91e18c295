"""WebSockets and the server around them: shutdown (1001), worker replacement (1012), TLS (wss://),
proxy headers, root_path, --ws none, compression off, the concurrency limit.

Each test starts its own server (it is stopped or configured differently); the engines and parsers
alternate so every pair is covered without running every test four times.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets.exceptions import ConnectionClosed, InvalidStatus

from palfrey.websocket.settings import resolve_ws
from tests.master_support import READY_ALL, wait_exit, wait_for_count
from tests.support import raw_request, run_server
from tests.websocket_support import (
    APP,
    CLOSE,
    COMBOS,
    RawWebSocket,
    client,
    frame,
    handshake_request,
    run,
    ws_url,
)

PAIRS = [("httptools", "websockets"), ("h11", "wsproto")]
PAIR_IDS = [f"{h}-{w}" for h, w in PAIRS]
LOOPS = [("httptools", "websockets", "uvloop"), ("h11", "wsproto", "asyncio")]
LOOP_IDS = ["-".join(combo) for combo in LOOPS]


async def echo_once(ws: Any, text: str = "hi") -> None:
    await ws.send(text)
    assert await ws.recv() == text


@pytest.mark.parametrize(("http", "ws"), COMBOS, ids=[f"{h}-{w}" for h, w in COMBOS])
def test_shutdown_closes_open_websockets_with_1001(http: str, ws: str) -> None:
    with run_server(APP, "--http", http, "--ws", ws, "--timeout-graceful-shutdown", "10") as server:

        async def scenario() -> tuple[int | None, str | None, float]:
            async with client(ws_url(server, "/echo")) as conn:
                await echo_once(conn)
                start = time.monotonic()
                server.signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed):
                    await conn.recv()
                return conn.close_code, conn.close_reason, time.monotonic() - start

        code, reason, elapsed = run(scenario)
        assert (code, reason) == (1001, "Server shutdown")
        assert elapsed < 3, "closed at once, not at the graceful timeout"
        assert wait_exit(server, 5) == 0
    assert "ws-disconnect /echo 1001 Server shutdown" in server.output()
    assert "Graceful shutdown timed out" not in server.output()


@pytest.mark.parametrize(("http", "ws", "loop"), LOOPS, ids=LOOP_IDS)
def test_both_event_loops(http: str, ws: str, loop: str) -> None:
    """The hand-over (transport.set_protocol inside data_received), flow control and shutdown on
    uvloop and on asyncio's own loop (the other modules run on the default, uvloop)."""
    with run_server(APP, "--http", http, "--ws", ws, "--loop", loop, "--ws-max-queue", "2") as server:

        async def scenario() -> int | None:
            async with client(ws_url(server, "/echo"), max_queue=2) as conn:
                for size in (10, 100_000, 1_000_000):
                    await echo_once(conn, "y" * size)
                sends = [conn.send(b"z" * 100_000) for _ in range(50)]
                await asyncio.gather(*sends)
                for _ in range(50):
                    assert await conn.recv() == b"z" * 100_000
                server.signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed):
                    await conn.recv()
                return conn.close_code

        assert run(scenario) == 1001
        assert wait_exit(server, 5) == 0


def test_unresponsive_client_does_not_hold_shutdown_past_the_graceful_timeout() -> None:
    with run_server(APP, "--timeout-graceful-shutdown", "1") as server, RawWebSocket(server.port) as raw:
        raw.handshake("/wait")  # then never reads, never answers the close frame
        start = time.monotonic()
        server.signal(signal.SIGTERM)
        assert wait_exit(server, 6) == 0
        assert time.monotonic() - start < 4
    # Past the graceful timeout connections are aborted and app tasks cancelled: no disconnect event.
    assert "Graceful shutdown timed out after 1s with 1 connection(s) open" in server.output()


@pytest.mark.parametrize(("http", "ws"), PAIRS, ids=PAIR_IDS)
def test_worker_recycle_closes_with_1012_and_the_replacement_serves(http: str, ws: str) -> None:
    """--limit-max-requests 2: the second handshake makes the worker ask to be replaced; once the
    replacement is ready the old worker drains and closes its WebSockets with 1012."""
    args = ("--http", http, "--ws", ws, "--workers", "1", "--limit-max-requests", "2")
    with run_server(APP, *args) as server:
        wait_for_count(server, READY_ALL, 1)

        async def scenario() -> list[tuple[int | None, str | None]]:
            async with client(ws_url(server, "/echo")) as first, client(ws_url(server, "/echo")) as second:
                await echo_once(first)
                await echo_once(second)
                codes = []
                for conn in (first, second):
                    with pytest.raises(ConnectionClosed):
                        await conn.recv()
                    codes.append((conn.close_code, conn.close_reason))
            async with client(ws_url(server, "/echo")) as third:  # served by the replacement
                await echo_once(third)
            return codes

        assert run(scenario, timeout=30) == [(1012, "Server restart")] * 2
        server.wait_for_matches(r"ws-disconnect /echo 1012 Server restart", 2)


def test_hup_closes_with_1012() -> None:
    with run_server(APP, "--workers", "2") as server:
        wait_for_count(server, READY_ALL, 1)

        async def scenario() -> int | None:
            async with client(ws_url(server, "/echo")) as conn:
                await echo_once(conn)
                server.signal(signal.SIGHUP)
                with pytest.raises(ConnectionClosed):
                    await conn.recv()
                return conn.close_code

        assert run(scenario, timeout=30) == 1012


@pytest.mark.parametrize(("http", "ws", "loop"), LOOPS, ids=LOOP_IDS)
def test_wss_with_palfreys_tls(
    http: str, ws: str, loop: str, tls_certs: tuple[trustme.CA, Path, Path]
) -> None:
    ca, cert_file, key_file = tls_certs
    context = ssl.create_default_context()
    ca.configure_trust(context)
    tls = ("--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file))
    with run_server(APP, "--http", http, "--ws", ws, "--loop", loop, *tls) as server:

        async def scenario() -> Any:
            async with client(f"wss://127.0.0.1:{server.port}/echo", ssl=context) as conn:
                await echo_once(conn, "x" * 100_000)
            async with client(f"wss://127.0.0.1:{server.port}/scope", ssl=context) as conn:
                return json.loads(await conn.recv())

        assert run(scenario)["scheme"] == "wss"
        server.wait_for_matches(r"ws-disconnect /echo 1000", 1)


@pytest.mark.parametrize(("http", "ws"), PAIRS, ids=PAIR_IDS)
def test_proxy_headers_give_wss_and_the_client_address(http: str, ws: str) -> None:
    with run_server(APP, "--http", http, "--ws", ws, "--root-path", "/api") as server:

        async def scenario(headers: dict[str, str]) -> Any:
            async with client(ws_url(server, "/scope"), additional_headers=headers) as conn:
                return json.loads(await conn.recv())

        forwarded = run(lambda: scenario({"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}))
        assert (forwarded["scheme"], forwarded["client"][0]) == ("wss", "203.0.113.7")
        ignored = run(lambda: scenario({"Forwarded": "for=198.51.100.2;proto=https"}))
        assert (ignored["scheme"], ignored["client"][0]) == ("ws", "127.0.0.1"), "X-Forwarded-* by default"
        plain = run(lambda: scenario({}))
        assert plain["scheme"] == "ws"
        assert (plain["root_path"], plain["path"], plain["raw_path"]) == ("/api", "/api/scope", "/api/scope")
    with run_server(APP, "--http", http, "--ws", ws, "--proxy-headers-family", "forwarded") as server:

        async def opted_in() -> Any:
            headers = {"Forwarded": "for=198.51.100.2;proto=https"}
            async with client(ws_url(server, "/scope"), additional_headers=headers) as conn:
                return json.loads(await conn.recv())

        rfc7239 = run(opted_in)
        assert (rfc7239["scheme"], rfc7239["client"][0]) == ("wss", "198.51.100.2")


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_ws_none_serves_upgrades_as_plain_http(http: str) -> None:
    with run_server(APP, "--http", http, "--ws", "none") as server:
        response = raw_request(server.port, handshake_request("/echo"))
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"connection: close" in head.lower()
    assert body == b"plain http /echo"


def test_auto_prefers_websockets_then_wsproto() -> None:
    assert resolve_ws("auto") == "websockets"
    assert resolve_ws("wsproto") == "wsproto"
    assert resolve_ws("none") is None


@pytest.mark.parametrize(("http", "ws"), PAIRS, ids=PAIR_IDS)
def test_compression_off(http: str, ws: str) -> None:
    with run_server(APP, "--http", http, "--ws", ws, "--ws-per-message-deflate", "false") as server:

        async def scenario() -> str | None:
            async with client(ws_url(server, "/echo")) as conn:
                await echo_once(conn)
                return conn.response.headers.get("sec-websocket-extensions")

        assert run(scenario) is None


def test_concurrency_limit_answers_503() -> None:
    with run_server(APP, "--limit-concurrency", "1") as server:

        async def scenario() -> int:
            async with client(ws_url(server, "/echo")) as conn:
                await echo_once(conn)
                with pytest.raises(InvalidStatus) as info:
                    async with client(ws_url(server, "/echo")):
                        pass
                await echo_once(conn)
                return info.value.response.status_code

        assert run(scenario) == 503


def test_shutdown_before_the_app_accepts_closes_right_after_the_accept() -> None:
    """A handshake still waiting for the app when shutdown starts is accepted (the app decides) and
    then closed with 1001 at once."""
    with run_server(APP, "--timeout-graceful-shutdown", "10") as server, RawWebSocket(server.port) as raw:
        raw.send(handshake_request("/slow-accept"))
        server.wait_for_line(r"slow-accept waiting")  # the app accepts 1.5 s after this line
        server.signal(signal.SIGTERM)
        while b"\r\n\r\n" not in raw.buffer:
            raw._fill()
        head, _, raw.buffer = raw.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert raw.recv_close() == (1001, "Server shutdown")
        raw.send(frame(CLOSE, b"\x03\xe9"))
        assert raw.closed()
        assert wait_exit(server, 5) == 0
    assert "ws-disconnect /slow-accept 1001" in server.output()
