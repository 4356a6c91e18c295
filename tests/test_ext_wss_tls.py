"""The ASGI `tls` extension in WebSocket scopes over TLS (wss), both parsers and both engines: the
same values an HTTP request on a TLS connection gets; none on plain ws.

The client is websockets' asyncio one: its sync client reads the TLS socket in a thread while the
caller's thread writes to it, and OpenSSL does not support one connection used from two threads at
once. Measured here: with a reader thread in `recv` while the handshake request was written, about
1 in 15 upgrade requests never reached the wire under load (the server received only the TLS
handshake's 597 bytes) and the test timed out waiting for a 101 that was never asked for."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tests.support import run_server
from tests.websocket_support import client, run

APP = "tests.apps.ext_apps:app"
PAIRS = [("httptools", "websockets"), ("h11", "wsproto"), ("httptools", "wsproto"), ("h11", "websockets")]


@pytest.mark.parametrize(("http", "ws"), PAIRS, ids=[f"{h}-{w}" for h, w in PAIRS])
def test_wss_scope_has_the_tls_extension(
    http: str, ws: str, tls_certs: tuple[trustme.CA, Path, Path]
) -> None:
    ca, cert_file, key_file = tls_certs
    context = ssl.create_default_context()
    ca.configure_trust(context)
    tls = ("--ssl-certfile", str(cert_file), "--ssl-keyfile", str(key_file))
    with run_server(APP, "--http", http, "--ws", ws, "--no-access-log", *tls) as server:

        async def scenario() -> tuple[tuple[str, str], Any]:
            async with client(f"wss://127.0.0.1:{server.port}/", ssl=context) as conn:
                ssl_object = conn.transport.get_extra_info("ssl_object")
                return (ssl_object.version(), ssl_object.cipher()[0]), json.loads(await conn.recv())

        negotiated, extension = run(scenario)
        over_http = httpx.get(f"{server.url}/ext", verify=context, timeout=5).json()
    assert over_http == ["http.response.pathsend", "http.response.zerocopysend", "tls"]
    assert extension["server_cert"] == cert_file.read_text()
    assert extension["client_cert_chain"] == [] and extension["client_cert_name"] is None
    assert extension["client_cert_error"] is None
    assert extension["tls_version"] == {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}[negotiated[0]]
    suites = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}
    assert extension["cipher_suite"] == suites[negotiated[1]]


def test_plain_ws_scope_has_no_tls_extension() -> None:
    async def scenario() -> Any:
        async with client(f"ws://127.0.0.1:{server.port}/") as conn:
            return json.loads(await conn.recv())

    with run_server(APP, "--no-access-log") as server:
        assert run(scenario) is None
