"""--health-bind (/livez, /readyz) and --shutdown-delay, in a single process and under a master.

Every wait is bounded: probes are polled until they answer as expected (or fail after a few
seconds), and the processes are always stopped by the harness.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import httpx
import pytest

from tests.support import Conn, get, run_server

APP = "tests.apps.scale_apps:app"
PROBES = r"Health probes on (http://\S+)/readyz"
MODES = {"single": ("--workers", "1"), "master": ("--workers", "2")}


def poll(url: str, accept: Callable[[httpx.Response], bool], timeout: float = 10.0) -> httpx.Response:
    """GET `url` until `accept(response)`; fail with the last answer after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, timeout=2)
            if accept(response):
                return response
            last = f"{response.status_code} {response.text!r}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: not as expected within {timeout}s; last: {last}")
        time.sleep(0.05)


def ready(response: httpx.Response) -> bool:
    return response.status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_livez_and_readyz(mode: str) -> None:
    with run_server(APP, *MODES[mode], "--no-access-log", "--health-bind", "127.0.0.1:0") as server:
        base = server.wait_for_line(PROBES).group(1)
        response = poll(f"{base}/readyz", ready)
        assert response.text == "ready\n"
        assert response.headers["cache-control"] == "no-store"
        live = httpx.get(f"{base}/livez", timeout=5)
        assert (live.status_code, live.text) == (200, "ok\n")
        assert httpx.head(f"{base}/readyz", timeout=5).status_code == 200
        assert httpx.post(f"{base}/readyz", timeout=5).status_code == 405
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 404  # --metrics is off
        assert get(server.port, "/echo").status == 200  # the app's port is another listener


@pytest.mark.parametrize("mode", MODES)
def test_one_listener_for_metrics_and_probes(mode: str) -> None:
    bind = ("--metrics", "--metrics-bind", "127.0.0.1:0", "--health-bind", "127.0.0.1:0")
    with run_server(APP, *MODES[mode], "--no-access-log", *bind) as server:
        metrics_url = server.wait_for_line(r"Metrics on (http://\S+/metrics)").group(1)
        base = metrics_url.removesuffix("/metrics")
        assert poll(f"{base}/readyz", ready).text == "ready\n"
        assert httpx.get(f"{base}/livez", timeout=5).status_code == 200
        assert httpx.get(metrics_url, timeout=5).status_code == 200
        assert "Health probes on" not in server.output()  # no second listener


@pytest.mark.parametrize("mode", MODES)
def test_shutdown_delay_turns_readyz_503_and_keeps_serving(mode: str) -> None:
    delay = 2.0
    args = ("--no-access-log", "--health-bind", "127.0.0.1:0", "--shutdown-delay", str(delay))
    with run_server(APP, *MODES[mode], *args) as server:
        base = server.wait_for_line(PROBES).group(1)
        poll(f"{base}/readyz", ready)
        server.signal(signal.SIGTERM)
        started = time.monotonic()
        response = poll(f"{base}/readyz", lambda r: r.status_code == 503, timeout=1.0)
        assert response.text == "shutting down: in the 2s shutdown delay\n"
        assert httpx.get(f"{base}/livez", timeout=5).status_code == 200
        # New connections are accepted and served throughout the delay.
        served = 0
        while time.monotonic() - started < delay - 0.5:
            response_ = get(server.port, "/echo")
            assert response_.status == 200
            served += 1
            time.sleep(0.1)
        assert served >= 5
        code = server.wait_exit(timeout=15)
        elapsed = time.monotonic() - started
        assert code == 0, server.output()
        assert elapsed >= delay - 0.1, elapsed
    output = server.output()
    assert "serving for 2s more, then shutting down" in output
    assert output.index("serving for 2s more") < output.rindex("hutting down")


# ----------------------------------------------------------------------------------------------------
# Long-lived responses at shutdown
# ----------------------------------------------------------------------------------------------------


def read_stream_to_end(conn: Conn) -> bytes:
    """The rest of a chunked response, which must end with its last chunk (not a cut connection)."""
    body = bytearray()
    while True:
        size = int(conn._until(b"\r\n"), 16)
        if size == 0:
            assert conn._until(b"\r\n") == b""
            return bytes(body)
        body += conn._exact(size)
        assert conn._exact(2) == b"\r\n"


@pytest.mark.parametrize(("mode", "sig"), [("single", signal.SIGTERM), ("master", signal.SIGHUP)])
@pytest.mark.parametrize("bye", [False, True])
def test_streaming_response_gets_disconnect_when_a_drain_starts(mode: str, sig: int, bye: bool) -> None:
    args = ("--no-access-log", "--timeout-graceful-shutdown", "20")
    with run_server(APP, *MODES[mode], *args) as server, Conn(server.port, timeout=10) as conn:
        conn.send(f"GET /sse{'?bye=1' if bye else ''} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        status, headers = conn.read_head()
        assert status == 200 and ("transfer-encoding", "chunked") in headers
        started = time.monotonic()
        server.signal(sig)  # TERM: this process drains; HUP: the master drains the old worker
        body = read_stream_to_end(conn)
        assert time.monotonic() - started < 5, "the stream was held until the graceful timeout"
        assert body == (b"data: hello\n\n" + (b"data: bye\n\n" if bye else b""))
        assert conn.closed(timeout=5)  # Connection: close was not possible; the drain closes it
        server.wait_for_line("SCALE sse disconnect")
        assert "returned without completing" not in server.output()
