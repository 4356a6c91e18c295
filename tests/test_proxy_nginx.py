"""Behind a real nginx with the usual `proxy_set_header X-Forwarded-For/-Proto` config (issue 13).

A client's own `Forwarded: for=6.6.6.6;proto=https` passes through such an nginx untouched; palfrey must
not believe it by default (uvicorn does not either), on both parsers. With `--proxy-headers-family
forwarded` and an nginx that writes `Forwarded` itself, the RFC 7239 header is used instead.

nginx comes from Debian's packages: `make test` installs it when missing. The test fails (it does not
skip) without it, so a machine that never ran the install step cannot pass silently.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, run_server

APP = "tests.apps.server_apps:app"
USUAL = (
    "proxy_set_header Host $host;\n"
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
    "proxy_set_header X-Forwarded-Proto $scheme;\n"
)
RFC7239 = 'proxy_set_header Forwarded "for=$remote_addr;proto=$scheme";\n'


def nginx_binary() -> str:
    found = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if found is None:
        pytest.fail("nginx is not installed: `make test` installs it (apt-get install nginx)")
    return found


@contextmanager
def nginx(tmp_path: Path, upstream: int, directives: str) -> Iterator[int]:
    """A single-process nginx in the foreground, its files under tmp_path; yields its port."""
    port = free_port()
    temp = "\n".join(
        f"{kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""
daemon off;
master_process off;
worker_processes 1;
pid {tmp_path / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    {temp}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            {directives}
        }}
    }}
}}
"""
    )
    proc = subprocess.Popen(
        [nginx_binary(), "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, proc.communicate()[0].decode()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_client_forwarded_header_is_not_believed(tmp_path: Path, http: str) -> None:
    with run_server(APP, "--http", http) as server, nginx(tmp_path, server.port, USUAL) as port:
        response = httpx.get(
            f"http://127.0.0.1:{port}/who", headers={"forwarded": "for=6.6.6.6;proto=https"}, timeout=5
        )
        assert response.status_code == 200
        body = response.json()
        assert ["forwarded", "for=6.6.6.6;proto=https"] in body["headers"], "nginx passed it through"
        assert body["client"] == ["127.0.0.1", 0], "the real client, from X-Forwarded-For"
        assert body["scheme"] == "http"
        server.wait_for_line(r'INFO: +127\.0\.0\.1 - "GET /who HTTP/1\.0" 200')


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_forwarded_family_behind_an_nginx_that_writes_forwarded(tmp_path: Path, http: str) -> None:
    args = ("--http", http, "--proxy-headers-family", "forwarded")
    with run_server(APP, *args) as server, nginx(tmp_path, server.port, RFC7239) as port:
        body = httpx.get(
            f"http://127.0.0.1:{port}/who", headers={"x-forwarded-for": "6.6.6.6"}, timeout=5
        ).json()
        assert body["client"] == ["127.0.0.1", 0]
        assert body["scheme"] == "http"
