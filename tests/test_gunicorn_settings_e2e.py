"""Real gunicorn with palfrey's worker classes: the request hooks, the ssl_context hook, `threads`,
refused settings warned about at boot, and HTTP/2 (TLS with ALPN, cleartext prior knowledge)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import GUNICORN_WORKERS, run_gunicorn

pytest.importorskip("gunicorn")

from gunicorn.config import Config as GunicornConfig

TIMEOUT = 10.0


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "gunicorn_conf.py"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize("worker", GUNICORN_WORKERS)
def test_pre_and_post_request_hooks(worker: str, tmp_path: Path) -> None:
    log = tmp_path / "hooks.log"
    conf = write_config(
        tmp_path,
        f"""
        import json, os

        def pre_request(worker, req):
            req.seen_by = os.getpid()
            with open({str(log)!r}, "a") as f:
                f.write(json.dumps(["pre", req.method, req.path, req.query, dict(req.headers).get("X-TRACE")]) + "\\n")

        def post_request(worker, req, environ, resp):
            with open({str(log)!r}, "a") as f:
                f.write(json.dumps(["post", req.method, req.seen_by == os.getpid(), environ["PATH_INFO"],
                                    resp.status_code, resp.status, worker.pid == os.getpid()]) + "\\n")
        """,
    )
    with (
        run_gunicorn("-c", str(conf), worker=worker, workers=1) as server,
        httpx.Client(timeout=TIMEOUT) as client,
    ):
        assert client.get(f"{server.url}/pid?x=1", headers={"x-trace": "t1"}).status_code == 200
        assert client.post(f"{server.url}/other", content=b"body").status_code == 200
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == [
        ["pre", "GET", "/pid", "x=1", "t1"],
        ["post", "GET", True, "/pid", 200, "200 OK", True],
        ["pre", "POST", "/other", "", None],
        ["post", "POST", True, "/other", 200, "200 OK", True],
    ]


def test_pre_request_error_is_a_500(tmp_path: Path) -> None:
    conf = write_config(
        tmp_path,
        """
        def pre_request(worker, req):
            if req.path == "/boom":
                raise RuntimeError("refused by hook")
        """,
    )
    with run_gunicorn("-c", str(conf), workers=1) as server:
        with httpx.Client(timeout=TIMEOUT) as client:
            assert client.get(f"{server.url}/boom").status_code == 500
            assert client.get(f"{server.url}/fine").status_code == 200
        server.wait_for_line(r"refused by hook", TIMEOUT)


def test_refused_settings_are_named_once_at_boot(tmp_path: Path) -> None:
    conf = write_config(tmp_path, "suppress_ragged_eofs = False\nstrip_header_spaces = True\n")
    with run_gunicorn("-c", str(conf)) as server:
        assert httpx.get(f"{server.url}/pid", timeout=TIMEOUT).status_code == 200
        output = server.output()
    assert output.count("gunicorn setting suppress_ragged_eofs = False is not honoured") == 1, output
    assert output.count("gunicorn setting strip_header_spaces = True is not honoured") == 1, output


def test_threads_sizes_the_wsgi_pool() -> None:
    """`--threads 3`: six concurrent 0.3 s requests are run by exactly three pool threads."""
    names = thread_names("--threads", "3")
    assert len(names) == 3, names


def thread_names(*args: str) -> set[str]:
    with (
        run_gunicorn(*args, app="tests.apps.gunicorn_apps:wsgi_thread_app", workers=1) as server,
        ThreadPoolExecutor(6) as pool,
    ):
        return set(pool.map(lambda _: httpx.get(server.url, timeout=TIMEOUT).text, range(12)))


def _tls_files(tls_certs: Any) -> tuple[ssl.SSLContext, Path, Path]:
    ca, cert, key = tls_certs
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context, cert, key


def test_ssl_context_hook_builds_the_context(tls_certs: Any, tmp_path: Path) -> None:
    """gunicorn's `ssl_context(config, default_ssl_context_factory)`: the hook gets palfrey's
    context (certificate loaded, `h2` in ALPN) and its changes apply: TLS 1.3 only here."""
    client, cert, key = _tls_files(tls_certs)
    conf = write_config(
        tmp_path,
        """
        import ssl

        def ssl_context(config, default_ssl_context_factory):
            context = default_ssl_context_factory()
            context.minimum_version = ssl.TLSVersion.TLSv1_3
            print("ssl_context hook ran", flush=True)
            return context
        """,
    )
    args = ("-c", str(conf), "--certfile", str(cert), "--keyfile", str(key))
    with run_gunicorn(*args, workers=1, scheme="https", env={"PALFREY_HTTP2": "1"}) as server:
        with httpx.Client(http2=True, verify=client, timeout=TIMEOUT) as http:
            response = http.get(f"{server.url}/pid")
        # The factory's context offers h2 by ALPN, so HTTP/2 survives the hook.
        assert (response.status_code, response.http_version) == (200, "HTTP/2")
        old = ssl.create_default_context()
        tls_certs[0].configure_trust(old)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with httpx.Client(verify=old, timeout=TIMEOUT) as http, pytest.raises(httpx.ConnectError):
            http.get(f"{server.url}/pid")
        assert "ssl_context hook ran" in server.output()


@pytest.mark.parametrize("worker", GUNICORN_WORKERS)
def test_http2_over_tls_by_alpn_with_palfrey_http2(worker: str, tls_certs: Any) -> None:
    """PALFREY_HTTP2=1: gunicorn's config says nothing about HTTP/2; `h2` is offered by ALPN."""
    client, cert, key = _tls_files(tls_certs)
    args = ("--certfile", str(cert), "--keyfile", str(key))
    with run_gunicorn(*args, worker=worker, env={"PALFREY_HTTP2": "1"}, scheme="https") as server:
        with httpx.Client(http2=True, verify=client, timeout=TIMEOUT) as http:
            responses = [http.get(f"{server.url}/pid") for _ in range(3)]
        with httpx.Client(verify=client, timeout=TIMEOUT) as http:  # HTTP/1.1 clients still served
            plain = http.get(f"{server.url}/pid")
    assert {(r.status_code, r.http_version) for r in responses} == {(200, "HTTP/2")}
    assert (plain.status_code, plain.http_version) == (200, "HTTP/1.1")


@pytest.mark.skipif(
    "http_protocols" not in GunicornConfig().settings, reason="gunicorn < 25 has no http_protocols"
)
def test_http2_from_gunicorn_http_protocols(tls_certs: Any) -> None:
    """gunicorn 25+'s own setting, `--http-protocols h2,h1`, turns palfrey's HTTP/2 on."""
    client, cert, key = _tls_files(tls_certs)
    args = ("--certfile", str(cert), "--keyfile", str(key), "--http-protocols", "h2,h1")
    with (
        run_gunicorn(*args, workers=1, scheme="https") as server,
        httpx.Client(http2=True, verify=client, timeout=TIMEOUT) as http,
    ):
        response = http.get(f"{server.url}/scheme")
    assert (response.status_code, response.http_version) == (200, "HTTP/2")
    assert response.json()["scheme"] == "https"


@pytest.mark.parametrize("worker", GUNICORN_WORKERS)
def test_h2c_prior_knowledge_with_curl(worker: str) -> None:
    curl = shutil.which("curl")
    assert curl, "curl is installed by make test-tools"
    with run_gunicorn("-e", "PALFREY_HTTP2=1", worker=worker) as server:  # gunicorn's raw_env
        result = subprocess.run(
            [curl, "-s", "--http2-prior-knowledge", "-w", " %{http_version}", f"{server.url}/pid"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        upgrade = subprocess.run(
            [curl, "-s", "--http2", "-w", " %{http_version}", f"{server.url}/pid"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    pid, version = result.stdout.split()
    assert pid.isdigit() and version == "2", result
    assert upgrade.stdout.split()[1] == "2", upgrade


@pytest.mark.parametrize("worker", GUNICORN_WORKERS)
def test_secure_scheme_header_alone_sets_https(worker: str) -> None:
    """gunicorn's default `X-Forwarded-Ssl: on` from a trusted proxy means https, also on a request
    with no X-Forwarded-For/-Proto (HTTP/1.1 consulted the proxy rules only for those before)."""
    with run_gunicorn(worker=worker, workers=1) as server, httpx.Client(timeout=TIMEOUT) as client:
        alone = client.get(f"{server.url}/scheme", headers={"x-forwarded-ssl": "on"}).json()
        plain = client.get(f"{server.url}/scheme").json()
    assert (alone["scheme"], alone["client"]) == ("https", "127.0.0.1")
    assert plain["scheme"] == "http"
