"""--reuse-port: each worker slot has its own SO_REUSEPORT listener, and the kernel spreads connections.

The master reserves the port (bound, never listening, so the kernel never queues a connection on it)
so that `--port 0` resolves once, and opens one listener per worker *slot*, which it keeps open. A
replacement inherits its slot's listener, so a recycled, crashed or rolled-over worker never closes
it: connections the kernel queued on that listener wait in its backlog for the next worker of the
slot instead of being reset (closing a SO_REUSEPORT listener resets its queue, unlike a shared one).
"""

from __future__ import annotations

import socket

from palfrey.config import Config, ConfigError


def reserve_sockets(config: Config) -> list[socket.socket]:
    """--reuse-port: bind (never listen) to reserve the port; each worker then listens on its own socket."""
    if config.uds is not None or config.fd is not None:
        raise ConfigError("--reuse-port needs --host/--port (not --uds or --fd)")
    host = config.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, config.port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"could not bind {config.host}:{config.port}: {exc.strerror or exc}") from None
    return [sock]


def listen_reuse_port(config: Config, reserved: list[socket.socket]) -> socket.socket:
    """A listener of its own on the port the master reserved (which stays bound, never listening)."""
    host, port = reserved[0].getsockname()[:2]
    sock = socket.socket(reserved[0].family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(config.backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class SlotListeners:
    """The master's per-slot listeners for --reuse-port (see the module docstring)."""

    def __init__(self, config: Config, reserved: list[socket.socket]) -> None:
        self.config = config
        self.reserved = reserved
        self.listeners: dict[int, socket.socket] = {}

    def for_slot(self, slot: int) -> list[socket.socket]:
        """The sockets a worker in `slot` serves: its slot's listener, opened on first use."""
        sock = self.listeners.get(slot)
        if sock is None:
            sock = self.listeners[slot] = listen_reuse_port(self.config, self.reserved)
        return [sock]

    def release(self, slot: int) -> None:
        """No worker will use `slot` again (fewer workers after TTOU): close its listener."""
        sock = self.listeners.pop(slot, None)
        if sock is not None:
            sock.close()

    def close_in_child(self, keep: int) -> None:
        """In a forked worker: every listener but its own slot's (and the reserved socket) closes."""
        for slot, sock in self.listeners.items():
            if slot != keep:
                sock.close()
        for sock in self.reserved:
            sock.close()

    def close(self) -> None:
        for slot in list(self.listeners):
            self.release(slot)
