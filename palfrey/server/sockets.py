"""Binding listeners: TCP (IPv4/IPv6), a unix socket, or an inherited file descriptor.

Binding is separate from serving so that a master process can bind once and hand the sockets to
forked workers; a single-process server simply binds here and serves in the same process.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat

from palfrey.config import Config, ConfigError


def bind_sockets(config: Config) -> list[socket.socket]:
    """Bind (and listen on) what the config asks for; errors become one clear line."""
    try:
        if config.fd is not None:
            sock = socket.socket(fileno=config.fd)
            sock.setblocking(False)
            return [sock]
        if config.uds is not None:
            return [_bind_unix(config.uds, config.backlog)]
        return [_bind_tcp(config.host, config.port, config.backlog)]
    except OSError as exc:
        where = config.uds or (f"fd {config.fd}" if config.fd is not None else f"{config.host}:{config.port}")
        raise ConfigError(f"could not bind {where}: {exc.strerror or exc}") from None


def _bind_tcp(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            host = host.strip("[]")
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_unix(path: str, backlog: int) -> socket.socket:
    # A socket file left by a crashed server would make bind fail; remove it only if nothing
    # listens there (a live server answers connect), and never remove a non-socket file.
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise OSError(f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)
        else:
            raise OSError(f"another server is listening on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o666)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return sock


def describe(sock: socket.socket, is_ssl: bool) -> str:
    """'http://127.0.0.1:8000' or 'unix socket /tmp/app.sock', for the startup log line."""
    address = sock.getsockname()
    scheme = "https" if is_ssl else "http"
    if sock.family == socket.AF_UNIX:
        return f"{scheme}+unix socket {address}"
    host, port = address[0], address[1]
    if sock.family == socket.AF_INET6:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"
