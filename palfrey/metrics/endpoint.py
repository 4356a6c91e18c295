"""The scrape listener: `GET /metrics` on its own address (--metrics-bind), never the app's port.

Two hosts for the same tiny HTTP/1.0-style exchange (read one request head, answer, close):

- `SelectorEndpoint` runs on the pre-fork master's `selectors` loop: non-blocking accept, read and
  write, a deadline per client, no threads. The answer is deferred until every worker has sent a
  fresh snapshot (see supervisor.py), so the endpoint only hands the scrape over and writes later.
- `serve_local` serves it from a single process's event loop, reading that process's own recorder.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import selectors
import socket
import time
from collections.abc import Callable
from typing import Any

from palfrey.addresses import parse_bind
from palfrey.errors import ConfigError
from palfrey.health_endpoint import NotReady, probe_response
from palfrey.http.response import status_text

logger = logging.getLogger("palfrey.error")

MAX_HEAD = 8192  # a scrape request is one short line and a few headers
CLIENT_TIMEOUT = 5.0  # seconds a scrape connection may stay open in all
_ACCEPT_BATCH = 16


def bind(value: str, option: str = "--metrics-bind") -> socket.socket:
    """A non-blocking listener on --metrics-bind (or --health-bind); a busy or bad address is one
    clear ConfigError."""
    host, port = parse_bind(value)
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
        sock.setblocking(False)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise ConfigError(f"{option} {value}: cannot listen ({exc.strerror or exc})") from None
    return sock


def url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return (
        f"http://[{host}]:{port}/metrics"
        if sock.family == socket.AF_INET6
        else f"http://{host}:{port}/metrics"
    )


def route(head: bytes) -> tuple[int, bool]:
    """(status, head_only) for a request head: 200 for GET/HEAD /metrics, else 404/405/400."""
    parts = head.split(b"\n", 1)[0].rstrip(b"\r").split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return 400, False
    method, target = parts[0], parts[1].split(b"?", 1)[0]
    if method not in (b"GET", b"HEAD"):
        return 405, False
    return (200 if target == b"/metrics" else 404), method == b"HEAD"


def response(status: int, body: bytes, content_type: str, head_only: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status_text(status)}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    return head if head_only else head + body


def _not_found(status: int) -> bytes:
    text = {404: b"Not found: metrics are at /metrics\n", 405: b"Method not allowed\n"}.get(
        status, b"Bad request\n"
    )
    return response(status, text, "text/plain; charset=utf-8")


class Client:
    """One scrape connection on the master's loop."""

    __slots__ = ("deadline", "head_only", "inbox", "outbox", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.inbox = b""
        self.outbox = b""
        self.head_only = False


class SelectorEndpoint:
    """The listener on the master's selectors loop; `on_scrape(client)` decides when to `answer`.

    With `health` set (--health-bind) it answers /livez and /readyz too; with `on_scrape` None it
    serves only those (--health-bind on an address of its own).
    """

    def __init__(
        self,
        sock: socket.socket,
        selector: selectors.BaseSelector,
        on_scrape: Callable[[Client], None] | None,
        health: NotReady | None = None,
    ) -> None:
        self.sock = sock
        self.selector = selector
        self.on_scrape = on_scrape
        self.health = health
        self.clients: set[Client] = set()
        selector.register(sock, selectors.EVENT_READ, self._accept)

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: keep the master alive, try again later
                logger.warning("Metrics endpoint could not accept a connection: %s", exc)
                return
            conn.setblocking(False)
            client = Client(conn, time.monotonic() + CLIENT_TIMEOUT)
            self.clients.add(client)
            self.selector.register(conn, selectors.EVENT_READ, functools.partial(self._read, client))

    def _read(self, client: Client) -> None:
        try:
            data = client.sock.recv(MAX_HEAD)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(client)
            return
        client.inbox += data
        if b"\r\n\r\n" not in client.inbox and b"\n\n" not in client.inbox:
            if len(client.inbox) > MAX_HEAD:
                self.answer(client, _not_found(400))
            return
        self.selector.unregister(client.sock)
        if self.health is not None:
            probe = probe_response(client.inbox, self.health)
            if probe is not None:
                self.answer(client, probe)
                return
        status, client.head_only = route(client.inbox)
        if status == 200 and self.on_scrape is not None:
            self.on_scrape(client)
        else:
            self.answer(client, _not_found(404 if status == 200 else status))

    def answer(self, client: Client, data: bytes) -> None:
        """Write `data` (a whole response) and close; a no-op if the client already went away."""
        if client not in self.clients:
            return
        client.outbox = data
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(client.sock)
        self._write(client)

    def _write(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.outbox)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(client)
            return
        client.outbox = client.outbox[sent:]
        if not client.outbox:
            self._close(client)
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(client.sock)
        self.selector.register(client.sock, selectors.EVENT_WRITE, functools.partial(self._write, client))

    def _close(self, client: Client) -> None:
        self.clients.discard(client)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(client.sock)
        client.sock.close()

    def next_deadline(self) -> float:
        return min((client.deadline for client in self.clients), default=float("inf"))

    def check(self, now: float) -> None:
        """Drop clients past their deadline (slow readers, idle connections)."""
        for client in [c for c in self.clients if now >= c.deadline]:
            self._close(client)

    def close(self) -> None:
        for client in list(self.clients):
            self._close(client)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.sock)
        self.sock.close()

    def close_in_child(self) -> None:
        """In a forked worker: close the fds only (unregistering would touch the master's epoll set)."""
        for client in self.clients:
            client.sock.close()
        self.sock.close()


# Single process: the same exchange on the server's own event loop.


class _LocalScrape(asyncio.Protocol):
    def __init__(
        self, render: Callable[[], bytes] | None, content_type: str, health: NotReady | None = None
    ) -> None:
        self.render = render  # None: a --health-bind listener of its own (no /metrics)
        self.content_type = content_type
        self.health = health
        self.inbox = b""
        self.transport: Any = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(CLIENT_TIMEOUT, transport.abort)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.inbox += data
        if b"\r\n\r\n" not in self.inbox and b"\n\n" not in self.inbox:
            if len(self.inbox) > MAX_HEAD:
                self._send(_not_found(400))
            return
        if self.health is not None:
            probe = probe_response(self.inbox, self.health)
            if probe is not None:
                self._send(probe)
                return
        status, head_only = route(self.inbox)
        if status == 200 and self.render is not None:
            self._send(response(200, self.render(), self.content_type, head_only))
        else:
            self._send(_not_found(404 if status == 200 else status))

    def _send(self, data: bytes) -> None:
        self.transport.write(data)
        self.transport.close()
        self.inbox = b""

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()


async def serve_health(sock: socket.socket, health: NotReady) -> asyncio.AbstractServer:
    """Single process, --health-bind on an address of its own: /livez and /readyz on its loop."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _LocalScrape(None, "", health), sock=sock)
    logger.info("Health probes on %s", url(sock).removesuffix("/metrics") + "/readyz")
    return server


async def serve_local(
    state: Any, sock: socket.socket, health: NotReady | None = None
) -> asyncio.AbstractServer:
    """Single process: answer scrapes from this process's own recorder, on its event loop (and the
    health probes too when --health-bind names the same address)."""
    from palfrey.metrics.exposition import CONTENT_TYPE, render
    from palfrey.metrics.snapshot import Aggregate, WorkerView, take

    started = time.monotonic()
    pid = os.getpid()

    def render_now() -> bytes:
        snapshot = take(state)
        aggregate = Aggregate()
        aggregate.update(pid, snapshot)
        totals, gauges = aggregate.totals()
        worker = WorkerView(
            slot=0,
            pid=pid,
            state="draining" if state.draining else "ready",
            age=time.monotonic() - started,
            served=snapshot["served"],
            rss=snapshot["rss"],
            cpu=snapshot["cpu"],
        )
        return render(totals, gauges, [worker], None)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _LocalScrape(render_now, CONTENT_TYPE, health), sock=sock)
    logger.info("Metrics on %s", url(sock))
    return server
