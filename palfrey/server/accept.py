"""Accepting connections on the listening sockets, with a back-off when the process runs out of
descriptors, the same on asyncio's selector loop and on uvloop.

Why not `loop.create_server`: out of file descriptors (EMFILE/ENFILE, also ENOBUFS/ENOMEM), asyncio's
selector loop logs a traceback and schedules a one-second retry for every pending connection of the
batch (its accept loop does not stop at the first error), so the retries multiply and the worker
spins, answering nothing; uvloop (libuv) accepts and closes pending connections to make room. Here,
with the loop's public API (`add_reader`, `sock.accept()`, `connect_accepted_socket`):

- the first resource error pauses accepting on every listener for 0.1 s, doubling up to 2 s while it
  lasts; the kernel's backlog holds new connections meanwhile (nothing is reset);
- it is logged once per episode, with RLIMIT_NOFILE, and counted (`palfrey_accept_exhausted`);
- open connections are served as usual, and accepting resumes by itself. On Linux, accept() fails
  with EMFILE before looking at the backlog, so an empty backlog on a retry means descriptors are
  available again: the episode ends then, or at the next accepted connection.

A worker that has no room for more connections (`room`: a WSGI worker whose thread pool is at its
ceiling with requests waiting, or whose open connections reach that ceiling) leaves new ones to the
other workers sharing the listening socket. The kernel wakes every worker reading the listener, so
without this the connections of a burst (wrk's 2,000 opening at once, kept alive for the whole run)
split unevenly: one worker got 1,000+ while the other had room. A full worker stops reading the
listeners and looks again every `HOLD` seconds: with room, it reads them again; still full, it
takes connections only when one has been waiting in the backlog at `OVERFLOW_LOOKS` looks in a row
(0.25 s), which means no other worker takes them (all are full or stuck, or scaled down). So the
cap never makes a worker refuse: it accepts beyond the cap, about 0.25-0.3 s late. The server sets a
`room` callback only when other workers share its listeners (`Server.shares_listeners`): a single
process has nobody to leave connections to. The check runs per wake-up of the listener, never per
request.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import select
import socket
import sys
import time
from collections.abc import Callable, Sized
from typing import Any

logger = logging.getLogger("palfrey.error")

RESOURCE_ERRORS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
FIRST_DELAY = 0.1  # seconds accepting pauses on the first resource error of an episode
MAX_DELAY = 2.0  # the pause doubles up to this
HOLD = 0.05  # seconds between looks at the listeners while this worker has no room
# Looks in a row (0.25 s) that must see a connection waiting before a full worker takes it. Two
# (50-100 ms) were too few on a loaded 2-core host: the other worker, busy setting up its share of a
# 2,000-connection burst, left the backlog non-empty that long, and the split came out 921/1,079
# instead of 1,000/1,000 (five and ten looks kept it exact in every run).
OVERFLOW_LOOKS = 5
ROOMY = 1 << 30  # "no cap" for `room` callbacks


def nofile_limit() -> str:
    """RLIMIT_NOFILE as `soft` (or `soft/hard`), for the log line; `unknown` where unavailable."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return "unknown"
    return str(soft) if soft == hard else f"{soft} (hard {hard})"


class Acceptor:
    """Accepts on a server process's listening sockets and hands each connection to the loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.Protocol],
        ssl: Any = None,
        backlog: int = 100,
        on_exhausted: Callable[[], None] | None = None,
        room: Callable[[], int] | None = None,
    ) -> None:
        self.loop = loop
        self.sockets = sockets
        self.protocol_factory = protocol_factory
        self.ssl = ssl
        self.backlog = backlog
        self.batch = max(1, min(backlog, 1024))  # connections accepted per wake-up at most
        self.on_exhausted = on_exhausted  # called once per episode (the metrics counter)
        self.reading = False
        self.stopped = False
        self.delay = 0.0  # > 0: in an episode; the next pause lasts this long
        self.episode_start = 0.0
        self.retry: asyncio.TimerHandle | None = None
        self.pending: set[asyncio.Task[Any]] = set()  # connections whose transport is being made
        # How many more connections this worker wants (<= 0: leave them to the other workers).
        self.room = room
        self.hold: asyncio.TimerHandle | None = None  # the next look while full
        self.waited = 0  # consecutive looks while full that saw a connection waiting in the backlog
        self.overflowed = 0  # connections taken beyond the cap because no other worker took them

    def start(self) -> None:
        """Listen and read the listeners; NotImplementedError from a loop without `add_reader`."""
        for sock in self.sockets:
            sock.setblocking(False)
            sock.listen(self.backlog)  # as create_server does: an inherited socket may not listen yet
        self._add_readers()

    def _add_readers(self) -> None:
        if self.reading or self.stopped:
            return
        self.reading = True
        for sock in self.sockets:
            # The listener's family, type and proto as ints, read once: socket.accept() converts
            # them to enums on every call, and the raw `_accept` it wraps needs them to build the
            # connection's socket object.
            self.loop.add_reader(
                sock.fileno(), self._accept, sock, int(sock.family), int(sock.type), sock.proto
            )

    def _remove_readers(self) -> None:
        if not self.reading:
            return
        self.reading = False
        for sock in self.sockets:
            if sock.fileno() >= 0:
                self.loop.remove_reader(sock.fileno())

    def _accept(
        self, sock: socket.socket, family: int = 0, kind: int = 0, proto: int = 0, force: bool = False
    ) -> None:
        loop = self.loop
        if not family:
            family, kind, proto = int(sock.family), int(sock.type), sock.proto
        raw_accept: Callable[[], tuple[int, Any]] | None = getattr(sock, "_accept", None)
        batch = self.batch
        if self.room is not None and not force:
            batch = min(batch, self.room() - len(self.pending))
            if batch <= 0:
                self._full()
                return
        for _ in range(batch):
            try:
                if raw_accept is not None:
                    fd, _ = raw_accept()
                    conn = socket.socket(family, kind, proto, fileno=fd)
                else:  # a Python without the raw call
                    conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                if self.delay:
                    self._recovered()  # accept() got past the descriptor check: there is room again
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in RESOURCE_ERRORS:
                    self._exhausted(exc)
                else:
                    logger.error("Error accepting a connection: %s", exc)
                return
            if self.delay:
                self._recovered()
            if force:
                self.overflowed += 1
            # No setblocking(False) here: asyncio's connect_accepted_socket and libuv's uv_tcp_open
            # both make the socket non-blocking themselves (one syscall less per connection).
            task = loop.create_task(loop.connect_accepted_socket(self.protocol_factory, conn, ssl=self.ssl))
            self.pending.add(task)
            task.add_done_callback(self._made)
        if self.room is not None and not force and batch < self.batch and self.reading:
            self._full()  # took what it had room for; there may be more waiting

    def _full(self) -> None:
        """No room: stop reading the listeners (other workers take new connections) and look later."""
        self._remove_readers()
        if self.hold is None and not self.stopped:
            self.hold = self.loop.call_later(HOLD, self._look)

    def _look(self) -> None:
        """While full: read the listeners again once there is room; take connections that kept
        waiting through `OVERFLOW_LOOKS` looks (no other worker took them) even without room."""
        self.hold = None
        if self.stopped or self.retry is not None:  # stopping, or the descriptor back-off owns it
            return
        assert self.room is not None
        if self.room() - len(self.pending) > 0:
            self.waited = 0
            self._add_readers()
            for sock in self.sockets:
                if not self.reading:
                    break
                self._accept(sock)
            return
        waiting = [sock for sock in self.sockets if _backlogged(sock)]
        self.waited = self.waited + 1 if waiting else 0
        if self.waited >= OVERFLOW_LOOKS:
            for sock in waiting:
                self._accept(sock, force=True)
            self.waited = 0
        if self.hold is None and not self.stopped and self.retry is None:
            self.hold = self.loop.call_later(HOLD, self._look)

    def _made(self, task: asyncio.Task[Any]) -> None:
        self.pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The client left (or a TLS handshake failed) before the connection was set up.
            logger.debug("Setting up an accepted connection failed: %s", task.exception())

    def _exhausted(self, exc: OSError) -> None:
        self._remove_readers()
        if not self.delay:
            self.delay = FIRST_DELAY
            self.episode_start = time.monotonic()
            logger.warning(
                "Accepting paused: out of %s (%s; RLIMIT_NOFILE %s). Open connections are still "
                "served; retrying in %gs, backing off to %gs.",
                "file descriptors" if exc.errno in (errno.EMFILE, errno.ENFILE) else "memory/buffers",
                errno.errorcode.get(exc.errno or 0, str(exc.errno)),
                nofile_limit(),
                FIRST_DELAY,
                MAX_DELAY,
            )
            if self.on_exhausted is not None:
                self.on_exhausted()
        delay = self.delay
        self.delay = min(delay * 2, MAX_DELAY)
        self.retry = self.loop.call_later(delay, self._resume)

    def _resume(self) -> None:
        self.retry = None
        if self.stopped:
            return
        self._add_readers()
        for sock in self.sockets:  # try at once: ready listeners, or the end of the episode
            if not self.reading:
                break
            self._accept(sock)

    def _recovered(self) -> None:
        logger.info("Accepting connections again after %.1fs", time.monotonic() - self.episode_start)
        self.delay = 0.0

    def stop(self) -> None:
        """Accept nothing more (the sockets stay open, so the kernel's backlog is not reset yet)."""
        self.stopped = True
        if self.retry is not None:
            self.retry.cancel()
            self.retry = None
        if self.hold is not None:
            self.hold.cancel()
            self.hold = None
        self._remove_readers()

    def close(self) -> None:
        self.stop()
        for sock in self.sockets:
            sock.close()


def _backlogged(sock: socket.socket) -> bool:
    """Is a connection waiting in this listener's backlog? (A zero-timeout poll: nothing is taken.)"""
    if sock.fileno() < 0:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(readable)


def connection_room(app: object, connections: Sized) -> Callable[[], int] | None:
    """The `room` callback for a WSGI worker (None for other apps: no cap).

    No room while the pool is at its ceiling with requests waiting for a thread; with the adaptive
    pool, also once the open connections reach the ceiling (each may soon want a thread: wrk's
    2,000 keep-alive connections each always have one request in flight). Idle keep-alive
    connections count toward the cap only at connect time; a fixed pool has no connection cap.
    """
    wsgi = sys.modules.get("palfrey.interfaces.wsgi")  # not imported: not a WSGI app
    if wsgi is None or not isinstance(app, wsgi.WSGIMiddleware):
        return None
    pool = app.pool
    cap = pool.size if pool.adaptive else None

    def room() -> int:
        if pool.queued and pool.threads >= pool.size:
            return 0
        return ROOMY if cap is None else cap - len(connections)

    return room
