"""The HTTP/2 drain (palfrey/http2/closing.py `shutdown`) loses nothing, against real processes.

The `h2` library's client (httpx, httpcore) fails every stream in flight when a GOAWAY arrives,
even those the GOAWAY promises to finish, and retries only the streams above its last id. So a
draining connection sends its GOAWAY at the first moment it has no stream in flight (or when the
1 s bound expires): httpx clients sending back to back through HUPs lose nothing, under palfrey's
master and under gunicorn. A client never idle still gets its GOAWAY within the bound, is served
new streams until then, and every stream is answered or (above the last id) safe to retry.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import h2.errors
import httpx
import pytest
from hyperframe.frame import GoAwayFrame

from tests.h2_client import Client, FrameReader
from tests.master_support import restarted_pids
from tests.support import GUNICORN_WORKERS, ServerProcess, run_gunicorn, run_server

CLIENTS = 6
HUPS = 3


class Load:
    """httpx HTTP/2 clients on keep-alive connections, each sending back to back until stopped."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/pid"
        self.ok = 0
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(CLIENTS)]

    def _run(self) -> None:
        with httpx.Client(http1=False, http2=True, timeout=10) as client:
            while not self.stop.is_set():
                try:
                    response = client.get(self.url)
                    good = response.http_version == "HTTP/2" and response.status_code == 200
                    error = None if good else f"{response.http_version} {response.status_code}"
                except httpx.HTTPError as exc:
                    error = repr(exc)
                with self.lock:
                    if error is None:
                        self.ok += 1
                    else:
                        self.failures.append(error)

    def wait_for(self, count: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.ok < count and time.monotonic() < deadline and not self.failures:
            time.sleep(0.02)

    def through_hups(self, server: ServerProcess, restarted: Callable[[int], None]) -> None:
        for thread in self.threads:
            thread.start()
        try:
            self.wait_for(50)
            for hup in range(1, HUPS + 1):
                before = self.ok
                server.signal(signal.SIGHUP)
                restarted(hup)
                self.wait_for(before + 100)  # the new workers serve, the old ones drained
        finally:
            self.stop.set()
            for thread in self.threads:
                thread.join(15)
        assert not any(thread.is_alive() for thread in self.threads)


def test_httpx_clients_through_hups_under_palfreys_master() -> None:
    with run_server("tests.apps.gunicorn_apps:app", "--workers", "2", "--http2", "--no-access-log") as server:
        load = Load(server.port)
        load.through_hups(server, lambda hup: restarted_pids(server, hup, timeout=20) and None)
    assert load.failures == [] and load.ok > 300, (load.ok, load.failures[:3])


@pytest.mark.parametrize("worker", GUNICORN_WORKERS)
def test_httpx_clients_through_hups_under_gunicorn(worker: str) -> None:
    env = {"PALFREY_HTTP2": "1"}
    with run_gunicorn("--graceful-timeout", "10", env=env, worker=worker) as server:
        load = Load(server.port)
        # Each HUP replaces both workers: two more "serving" lines.
        load.through_hups(
            server,
            lambda hup: server.wait_for_matches(r"Palfrey worker serving", 2 + 2 * hup, 20) and None,
        )
    assert load.failures == [] and load.ok > 300, (load.ok, load.failures[:3])


def test_never_idle_client_gets_goaway_within_the_bound_and_loses_nothing() -> None:
    """A stream of 4 s stays in flight from just before TERM, and short streams keep three more in
    flight beside it: the connection is never idle. New streams are served after the TERM (no
    GOAWAY while a stream is in flight), the GOAWAY comes when the 1 s bound expires (checked by
    the server's quarter-second sweep), before the long stream ends; every stream up to its last
    id is answered, any above it is the client's to retry (never processed)."""
    with run_server("tests.apps.http2_apps:app", "--http2") as process:
        client = Client(process.port)
        reader = FrameReader(client.sock)
        in_flight: set[int] = set()
        answered: list[int] = []
        goaway: Any = None
        for _ in range(8):  # warm up: the connection has served requests before the drain
            in_flight.add(client.request("/sleep?0.01"))
        while in_flight:
            frame = reader.next(timeout=10)
            assert frame is not None
            if frame.type == 0x0 and "END_STREAM" in frame.flags:
                in_flight.discard(frame.stream_id)
        long = client.request("/sleep?4")
        in_flight.add(long)
        process.signal(signal.SIGTERM)
        process.wait_for_line("Shutting down")
        term_at = time.monotonic()
        while goaway is None:
            while len(in_flight) < 4:
                in_flight.add(client.request("/sleep?0.05"))
            frame = reader.next(timeout=10)
            assert frame is not None, "connection closed without a GOAWAY"
            if isinstance(frame, GoAwayFrame):
                goaway = frame
            elif frame.type == 0x0 and "END_STREAM" in frame.flags and frame.stream_id in in_flight:
                in_flight.discard(frame.stream_id)
                answered.append(frame.stream_id)
            elif frame.type == 0x3:  # RST_STREAM
                raise AssertionError(f"stream {frame.stream_id} reset ({frame.error_code})")
        waited = time.monotonic() - term_at
        assert goaway.error_code == h2.errors.ErrorCodes.NO_ERROR and long not in answered
        assert len(answered) >= 6  # new streams were served during the drain (~1 s of 0.05 s ones)
        assert waited < 3.5  # the 1 s bound (the long stream would end at 4 s), with load's room
        # The streams it promises (the long one too) are finished before the connection closes.
        promised = {s for s in in_flight if s <= goaway.last_stream_id}
        assert long in promised
        while promised and (frame := reader.next(timeout=10)) is not None:
            if frame.type == 0x0 and "END_STREAM" in frame.flags:
                promised.discard(frame.stream_id)
        assert not promised, f"lost streams {sorted(promised)}"
        client.close()
        assert process.wait_exit(timeout=10) == 0


def test_connection_without_a_request_yet_is_served_its_first_then_goaway() -> None:
    """Connections accepted before TERM that have not sent a request: one sends its first request
    during the drain and is answered, then gets GOAWAY with that stream as the last id (httpx fails,
    not retries, a request answered by GOAWAY with last stream 0); the other never sends one and
    gets GOAWAY(0) once the bound expires."""
    with run_server("tests.apps.http2_apps:app", "--http2") as process:
        first, silent = Client(process.port), Client(process.port)
        readers = FrameReader(first.sock), FrameReader(silent.sock)
        for reader in readers:  # the server's SETTINGS: the connection is HTTP/2 and registered
            frame = reader.next(timeout=5)
            assert frame is not None and frame.type == 0x4
        process.signal(signal.SIGTERM)
        process.wait_for_line("Shutting down")
        stream_id = first.request("/")
        frames = []
        while (frame := readers[0].next(timeout=5)) is not None:
            frames.append(frame)
        ended = [f for f in frames if f.type == 0x0 and "END_STREAM" in f.flags and f.stream_id == stream_id]
        goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
        assert ended and len(goaway) == 1 and goaway[0].last_stream_id == stream_id
        assert frames.index(goaway[0]) > frames.index(ended[0])
        frames = []
        while (frame := readers[1].next(timeout=5)) is not None:
            frames.append(frame)
        goaway = [f for f in frames if isinstance(f, GoAwayFrame)]
        assert len(goaway) == 1 and goaway[0].last_stream_id == 0 and goaway[0].error_code == 0
        first.close()
        silent.close()
        assert process.wait_exit(timeout=10) == 0
