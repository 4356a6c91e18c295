"""TLS: --ssl-certfile/--ssl-keyfile with a trustme CA, https scheme in the scope, verification by
httpx and curl, an encrypted key with --ssl-keyfile-password, and one-line errors for bad files."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from tests.support import ServerProcess, run_server, spawn

APP = "tests.apps.server_apps:app"
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Certs:
    ca: trustme.CA
    ca_file: Path
    cert_file: Path
    key_file: Path
    encrypted_key_file: Path

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert_file = directory / "cert.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in leaf.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_file), append=True)
    key_file = directory / "key.pem"
    leaf.private_key_pem.write_to_path(str(key_file))
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    encrypted_key_file = directory / "key-encrypted.pem"
    encrypted_key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        )
    )
    return Certs(ca, ca_file, cert_file, key_file, encrypted_key_file)


@pytest.fixture(scope="module")
def tls_server(certs: Certs) -> Iterator[ServerProcess]:
    with run_server(
        APP, "--ssl-certfile", str(certs.cert_file), "--ssl-keyfile", str(certs.key_file)
    ) as server:
        yield server


def test_https_url_and_scheme(tls_server: ServerProcess, certs: Certs) -> None:
    assert tls_server.url.startswith("https://127.0.0.1:")
    with httpx.Client(verify=certs.client_context()) as client:
        body = client.get(tls_server.url + "/secure?q=1").json()
    assert body["scheme"] == "https"
    assert body["path"] == "/secure"
    assert body["query_string"] == "q=1"


def test_hostname_verification(tls_server: ServerProcess, certs: Certs) -> None:
    with httpx.Client(verify=certs.client_context()) as client:
        assert client.get(f"https://localhost:{tls_server.port}/").status_code == 200


def test_untrusted_client_refuses(tls_server: ServerProcess) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(tls_server.url + "/")


def test_plain_http_on_tls_port_does_not_reach_the_app(tls_server: ServerProcess) -> None:
    before = tls_server.output().count("/plain")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_server.port}/plain", timeout=5)
    assert tls_server.output().count("/plain") == before


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_with_ca(tls_server: ServerProcess, certs: Certs) -> None:
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "5", "--cacert", str(certs.ca_file), tls_server.url + "/curl"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    assert '"scheme": "https"' in result.stdout


def test_keyfile_password(certs: Certs) -> None:
    args = ["--ssl-certfile", str(certs.cert_file), "--ssl-keyfile", str(certs.encrypted_key_file)]
    with (
        run_server(APP, *args, "--ssl-keyfile-password", PASSWORD) as server,
        httpx.Client(verify=certs.client_context()) as client,
    ):
        assert client.get(server.url + "/").json()["scheme"] == "https"
    wrong = spawn(APP, "--port", "0", *args, "--ssl-keyfile-password", "wrong")
    assert wrong.wait_exit() != 0
    assert "Traceback" not in wrong.output()
    assert "TLS setup failed" in wrong.output()


@pytest.mark.parametrize("broken", ["missing-cert", "garbage-cert", "missing-key"])
def test_bad_certificate_files_are_one_line(certs: Certs, tmp_path: Path, broken: str) -> None:
    cert, key = str(certs.cert_file), str(certs.key_file)
    if broken == "missing-cert":
        cert = str(tmp_path / "nope.pem")
    elif broken == "garbage-cert":
        (tmp_path / "garbage.pem").write_text("this is not a certificate\n")
        cert = str(tmp_path / "garbage.pem")
    else:
        key = str(tmp_path / "nokey.pem")
    server = spawn(APP, "--port", "0", "--ssl-certfile", cert, "--ssl-keyfile", key)
    assert server.wait_exit() != 0
    output = server.output()
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith(("Error:", "ERROR:"))]
    assert len(errors) == 1 and "TLS setup failed" in errors[0], output
    if broken.startswith("missing"):
        assert "nope.pem" in errors[0] or "nokey.pem" in errors[0], "the message names the file"


def _tls12_client(certs: Certs, ciphers: str) -> ssl.SSLContext:
    """A TLS 1.2-only client offering exactly `ciphers`: what an older or locked-down client sends."""
    context = certs.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    return context


def _negotiated(port: int, context: ssl.SSLContext) -> str:
    import socket

    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert tls.recv(12).startswith(b"HTTP/1.1 200")
        cipher = tls.cipher()
        assert cipher is not None
        return cipher[0]


def test_default_ciphers_serve_a_tls12_aead_only_client(tls_server: ServerProcess, certs: Certs) -> None:
    """The default is OpenSSL's (not uvicorn's old `TLSv1` list): an ECDHE-AES-GCM-only client connects."""
    name = _negotiated(tls_server.port, _tls12_client(certs, "ECDHE+AESGCM"))
    assert "GCM" in name and name.startswith("ECDHE")


def test_default_ciphers_never_negotiate_cbc_sha1(tls_server: ServerProcess, certs: Certs) -> None:
    """A TLS 1.2 client offering both gets AEAD; one offering only CBC/SHA-1 suites is refused."""
    name = _negotiated(tls_server.port, _tls12_client(certs, "ECDHE+AESGCM:ECDHE+AES+SHA1:@SECLEVEL=0"))
    assert "GCM" in name
    with pytest.raises(ssl.SSLError):
        _negotiated(tls_server.port, _tls12_client(certs, "ECDHE-RSA-AES128-SHA:AES128-SHA:@SECLEVEL=0"))


def test_ssl_ciphers_still_overrides(certs: Certs) -> None:
    args = ["--ssl-certfile", str(certs.cert_file), "--ssl-keyfile", str(certs.key_file)]
    with run_server(APP, *args, "--ssl-ciphers", "ECDHE+CHACHA20") as server:
        assert "CHACHA20" in _negotiated(server.port, _tls12_client(certs, "ECDHE+AESGCM:ECDHE+CHACHA20"))
        with pytest.raises(ssl.SSLError):
            _negotiated(server.port, _tls12_client(certs, "ECDHE+AESGCM"))
