"""--reuse-port: each worker listens on its own SO_REUSEPORT socket, and the kernel spreads connections.

The master only reserves the port (bound, never listening, so the kernel never queues a connection
on it) so that `--port 0` resolves once and every worker joins the same port.
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


def bind_reuse_port(config: Config, reserved: list[socket.socket]) -> socket.socket:
    """--reuse-port: this worker's own listener on the port the master reserved (bound, never listening).

    The kernel then spreads new connections across the workers' listeners instead of waking them all.
    """
    host, port = reserved[0].getsockname()[:2]
    family = reserved[0].family
    for sock in reserved:
        sock.close()
    sock = socket.socket(family, socket.SOCK_STREAM)
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
