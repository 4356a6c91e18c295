"""End to end: real gunicorn (`-w 2`) with palfrey's worker classes, real sockets, real signals."""

from __future__ import annotations

import signal
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support import (
    GUNICORN_APP,
    GUNICORN_WORKERS,
    ServerProcess,
    raw_request,
    run_gunicorn,
    spawn_gunicorn,
    stop,
)

pytest.importorskip("gunicorn")

WORKERS = GUNICORN_WORKERS
APP = GUNICORN_APP


def wait_for_count(server: ServerProcess, pattern: str, count: int, timeout: float = 15.0) -> list[str]:
    """Block until `count` output lines match `pattern`; returns the first group of each match."""
    return [
        m.group(1) if m.groups() else m.group(0) for m in server.wait_for_matches(pattern, count, timeout)
    ]


def fresh_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """One request on a new connection (no keep-alive, so no idle-connection race is involved)."""
    data = raw_request(
        port, f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode(), timeout=timeout
    )
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        raise ConnectionError("empty response")
    return int(head.split(b" ", 2)[1]), body


def pids_seen(port: int, wanted: int, deadline_s: float = 10.0) -> set[str]:
    """Fire small concurrent batches until `wanted` distinct workers answered (the kernel picks)."""
    seen: set[str] = set()
    deadline = time.monotonic() + deadline_s
    with ThreadPoolExecutor(4) as pool:
        while len(seen) < wanted and time.monotonic() < deadline:
            for status, body in pool.map(lambda _: fresh_get(port, "/pid"), range(8)):
                assert status == 200
                seen.add(body.decode())
    return seen


@pytest.mark.parametrize("worker", WORKERS)
def test_two_workers_serve_with_lifespan_each(worker: str) -> None:
    with run_gunicorn(worker=worker) as server:
        pids = pids_seen(server.port, 2)
        assert len(pids) == 2, pids
        booted = set(wait_for_count(server, r"Booting worker with pid: (\d+)", 2))
        assert pids == booted
        # Lifespan ran in each worker: /started answers the pid that ran startup, i.e. its own.
        with httpx.Client(timeout=5) as client:
            for _ in range(4):
                response = client.get(f"{server.url}/started", headers={"connection": "close"})
                assert response.text in pids
        assert server.output().count("Application startup complete.") == 2


@pytest.mark.parametrize("worker", WORKERS)
def test_max_requests_rotates_workers_without_failures(worker: str) -> None:
    with run_gunicorn("--max-requests", "50", "--max-requests-jitter", "10", worker=worker) as server:
        total = 320
        failures: list[BaseException] = []
        pids: set[str] = set()
        lock = threading.Lock()
        deadline = time.monotonic() + 40

        def one(_: int) -> None:
            if time.monotonic() > deadline:
                raise TimeoutError("load took too long")
            try:
                status, body = fresh_get(server.port, "/pid")
                assert status == 200, (status, body)
            except BaseException as exc:
                with lock:
                    failures.append(exc)
                return
            with lock:
                pids.add(body.decode())

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(one, range(total)))
        assert failures == []
        # 320 requests at <= 60 per worker: at least 4 workers must have served.
        assert len(pids) >= 4, pids
        assert "Autorestarting worker after" in server.output()


@pytest.mark.parametrize("worker", WORKERS)
def test_blocked_event_loop_is_killed_and_replaced(worker: str) -> None:
    with run_gunicorn("--timeout", "3", worker=worker) as server:
        first = set(wait_for_count(server, r"Booting worker with pid: (\d+)", 2))

        def block() -> None:
            try:
                fresh_get(server.port, "/block", timeout=20)
            except (OSError, ConnectionError):
                pass  # the worker holding it is killed

        blocker = threading.Thread(target=block, daemon=True)
        blocker.start()
        blocked = server.wait_for_line(r"blocking the loop pid=(\d+)", timeout=10).group(1)
        killed = server.wait_for_line(r"WORKER TIMEOUT \(pid:(\d+)\)", timeout=15).group(1)
        assert killed == blocked
        booted = wait_for_count(server, r"Booting worker with pid: (\d+)", 3, timeout=15)
        replacement = set(booted) - first
        assert len(replacement) == 1
        wait_for_count(server, r"Palfrey worker serving", 3)
        blocker.join(timeout=20)
        assert blocked not in pids_seen(server.port, 2)


@pytest.mark.parametrize("worker", WORKERS)
def test_term_lets_in_flight_request_finish(worker: str) -> None:
    server = spawn_gunicorn(APP, "-k", worker, "-w", "2", "-b", "127.0.0.1:0", "--graceful-timeout", "10")
    try:
        port = int(server.wait_for_line(r"Listening at: \w+://127\.0\.0\.1:(\d+)").group(1))
        wait_for_count(server, r"Palfrey worker serving", 2)
        result: list[tuple[int, bytes] | BaseException] = []

        def slow() -> None:
            try:
                result.append(fresh_get(port, "/slow?s=1.5", timeout=15))
            except BaseException as exc:
                result.append(exc)

        thread = threading.Thread(target=slow)
        thread.start()
        server.wait_for_line(r"slow request started", timeout=10)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        thread.join(timeout=15)
        assert result == [(200, b"done")]
        assert server.wait_exit(timeout=15) == 0
        assert time.monotonic() - started >= 1.0
        assert "Application shutdown complete." in server.output()
    finally:
        stop(server)


def test_quit_is_quick() -> None:
    with run_gunicorn("--graceful-timeout", "30") as server:
        thread = threading.Thread(target=lambda: _swallow(fresh_get, server.port, "/slow?s=20"), daemon=True)
        thread.start()
        server.wait_for_line(r"slow request started", timeout=10)
        started = time.monotonic()
        server.signal(signal.SIGQUIT)
        server.wait_exit(timeout=10)
        assert time.monotonic() - started < 8


def _swallow(func, *args):  # type: ignore[no-untyped-def]
    try:
        return func(*args)
    except (OSError, ConnectionError):
        return None


@pytest.mark.parametrize("worker", WORKERS)
def test_hup_swaps_workers(worker: str) -> None:
    with run_gunicorn(worker=worker) as server:
        old = set(wait_for_count(server, r"Booting worker with pid: (\d+)", 2))
        server.signal(signal.SIGHUP)
        booted = wait_for_count(server, r"Booting worker with pid: (\d+)", 4)
        new = set(booted) - old
        assert len(new) == 2
        exited = wait_for_count(server, r"Worker exiting \(pid: (\d+)\)", 2)
        assert set(exited) == old
        wait_for_count(server, r"Palfrey worker serving", 4)
        assert pids_seen(server.port, 2) == new


@pytest.mark.parametrize("worker", WORKERS)
def test_access_log_format_atoms(worker: str) -> None:
    fmt = 'ACCESS h=%(h)s r="%(r)s" s=%(s)s b=%(b)s U=%(U)s q=%(q)s rid=%({x-request-id}i)s ct=%({content-type}o)s p=%(p)s nope=%(nope)s D=%(D)s'
    with run_gunicorn("--access-logfile", "-", "--access-logformat", fmt, worker=worker, workers=1) as server:
        response = httpx.get(f"{server.url}/pid?x=1", headers={"x-request-id": "abc-123"}, timeout=5)
        pid = response.text
        line = server.wait_for_line(r"ACCESS .*").group(0)
    assert f'h=127.0.0.1 r="GET /pid?x=1 HTTP/1.1" s=200 b={len(pid)} U=/pid q=x=1' in line
    assert f"rid=abc-123 ct=text/plain p=<{pid}> nope=- D=" in line


def test_usr1_reopens_access_log(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    with run_gunicorn("--access-logfile", str(log), workers=1) as server:
        httpx.get(f"{server.url}/before", timeout=5)
        _wait_file_contains(log, "/before")
        rotated = tmp_path / "access.log.1"
        log.rename(rotated)
        server.signal(signal.SIGUSR1)
        # The master reopens first, then signals the worker; keep asking until the new file fills.
        deadline = time.monotonic() + 10
        while not (log.exists() and "/after" in log.read_text()):
            assert time.monotonic() < deadline, server.output()
            httpx.get(f"{server.url}/after", timeout=5)
            time.sleep(0.1)
    assert "/before" in rotated.read_text()


def _wait_file_contains(path: Path, text: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{text!r} never reached {path}"
        time.sleep(0.05)


@pytest.mark.parametrize("worker", WORKERS)
def test_failing_lifespan_startup_stops_gunicorn(worker: str) -> None:
    server = spawn_gunicorn(
        "tests.apps.gunicorn_apps:failing_startup", "-k", worker, "-w", "2", "-b", "127.0.0.1:0"
    )
    try:
        code = server.wait_exit(timeout=20)
    finally:
        stop(server)
    output = server.output()
    assert code != 0, output
    assert "database unreachable" in output
    assert "Worker failed to boot" in output
    assert output.count("Booting worker with pid") <= 2  # halted, not respawning


@pytest.mark.parametrize("worker", WORKERS)
def test_tls_from_gunicorn_certfile_keyfile(worker: str, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with run_gunicorn(
        "--certfile", str(certfile), "--keyfile", str(keyfile), worker=worker, scheme="https"
    ) as server:
        assert "Palfrey running on" not in server.output(), "gunicorn owns the sockets and CTRL+C"
        with httpx.Client(verify=context, timeout=5) as client:
            response = client.get(f"{server.url}/scheme")
        # gunicorn's TLS defaults (OpenSSL's ciphers) are not weakened: a TLS 1.2 AEAD-only client connects.
        strict = ssl.create_default_context()
        ca.configure_trust(strict)
        strict.maximum_version = ssl.TLSVersion.TLSv1_2
        strict.set_ciphers("ECDHE+AESGCM")
        with httpx.Client(verify=strict, timeout=5) as client:
            assert client.get(f"{server.url}/scheme").status_code == 200
    assert response.status_code == 200
    assert response.json()["scheme"] == "https"


@pytest.mark.parametrize("worker", WORKERS)
def test_wsgi_app_under_the_worker(worker: str) -> None:
    """gunicorn loads a WSGI app; the worker serves it through palfrey's WSGI support."""
    with run_gunicorn(app="tests.apps.gunicorn_apps:wsgi_app", worker=worker) as server:
        response = httpx.get(f"{server.url}/hello", timeout=5)
    assert response.status_code == 200
    assert response.text.startswith("wsgi GET /hello pid=")


def test_unix_socket_bind(tmp_path: Path) -> None:
    """gunicorn binds TCP and a unix socket; the worker serves both."""
    path = str(tmp_path / "g.sock")
    with run_gunicorn("-b", f"unix:{path}", workers=1, ready=1) as server:
        with httpx.Client(transport=httpx.HTTPTransport(uds=path), timeout=5) as client:
            response = client.get("http://palfrey/scheme")
        assert response.json()["client"] is None  # a unix-socket peer has no address
        assert fresh_get(server.port, "/pid")[0] == 200


def test_fd_bind() -> None:
    """`fd://N`: gunicorn adopts an inherited listener (and then binds nothing else)."""
    inherited = socket.socket()
    inherited.bind(("127.0.0.1", 0))
    inherited.listen(16)
    try:
        fd = inherited.fileno()
        with run_gunicorn("-b", f"fd://{fd}", workers=1, pass_fds=(fd,)) as server:
            assert server.port == inherited.getsockname()[1]
            assert fresh_get(server.port, "/pid")[0] == 200
    finally:
        inherited.close()


def test_docs_gunicorn_conf() -> None:
    """docs_src/operations/gunicorn_conf.py runs as documented (bind overridden to a free port)."""
    with run_gunicorn(
        "-c",
        "docs_src/operations/gunicorn_conf.py",
        app="docs_src.getting_started.hello_world:app",
        worker=None,
        workers=None,
        ready=2,
        env={"WEB_CONCURRENCY": "2"},
    ) as server:
        response = httpx.get(f"{server.url}/", timeout=5)
        assert response.status_code == 200
        assert response.text == "Hello, world!"
        assert "Using worker: palfrey.workers.PalfreyWorker" in server.output()
