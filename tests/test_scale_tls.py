"""The ASGI `tls` extension over TLS (both parsers), and its absence on plain TCP."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support import PARSERS, run_server

APP = "tests.apps.scale_apps:app"


@pytest.mark.parametrize("http", PARSERS)
def test_tls_extension_in_scope(http: str, tls_certs: tuple[trustme.CA, Path, Path]) -> None:
    ca, cert_file, key_file = tls_certs
    context = ssl.create_default_context()
    ca.configure_trust(context)
    args = (
        "--http",
        http,
        "--no-access-log",
        "--ssl-certfile",
        str(cert_file),
        "--ssl-keyfile",
        str(key_file),
    )
    with run_server(APP, *args) as server, httpx.Client(verify=context) as client:
        first = client.get(server.url + "/tls").json()
        second = client.get(server.url + "/tls").json()  # same connection: the same values
        negotiated = client.get(server.url + "/tls").extensions["network_stream"].get_extra_info("ssl_object")
    assert first == second
    assert first["server_cert"] == cert_file.read_text()
    assert first["client_cert_chain"] == [] and first["client_cert_name"] is None
    assert first["client_cert_error"] is None
    assert first["tls_version"] == {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}[negotiated.version()]
    suites = {c["name"]: c["id"] & 0xFFFF for c in context.get_ciphers()}
    assert first["cipher_suite"] == suites[negotiated.cipher()[0]]


def test_no_tls_extension_on_plain_tcp() -> None:
    with run_server(APP, "--no-access-log") as server:
        assert httpx.get(server.url + "/tls", timeout=5).json() is None
