"""The ASGI `tls` extension in WebSocket scopes over TLS (wss), both parsers and both engines: the
same values an HTTP request on a TLS connection gets; none on plain ws."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx
import pytest
import trustme
from websockets.sync.client import connect

from tests.support import run_server

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
        with connect(f"wss://127.0.0.1:{server.port}/", ssl=context, open_timeout=5) as conn:
            negotiated = conn.socket.version(), conn.socket.cipher()[0]  # type: ignore[attr-defined]
            extension = json.loads(conn.recv(timeout=5))
        over_http = httpx.get(f"{server.url}/ext", verify=context, timeout=5).json()
    assert over_http == ["http.response.pathsend", "http.response.zerocopysend", "tls"]
    assert extension["server_cert"] == cert_file.read_text()
    assert extension["client_cert_chain"] == [] and extension["client_cert_name"] is None
    assert extension["client_cert_error"] is None
    assert extension["tls_version"] == {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}[negotiated[0]]
    suites = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}
    assert extension["cipher_suite"] == suites[negotiated[1]]


def test_plain_ws_scope_has_no_tls_extension() -> None:
    with (
        run_server(APP, "--no-access-log") as server,
        connect(f"ws://127.0.0.1:{server.port}/", open_timeout=5) as conn,
    ):
        assert json.loads(conn.recv(timeout=5)) is None
