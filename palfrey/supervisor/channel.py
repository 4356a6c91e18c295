"""The control channel between the master and one worker: a socketpair carrying short text lines.

Lines keep the protocol readable in an strace and trivially framed. Master to worker: `ping`,
`drain`. Worker to master: `ready`, `pong`, `recycle <reason>`. Both ends are non-blocking; a
message that cannot be written at once is dropped (a full buffer means the peer is not reading,
which the health check catches anyway).
"""

from __future__ import annotations

import contextlib
import socket

PING, PONG, READY, DRAIN, RECYCLE = "ping", "pong", "ready", "drain", "recycle"


class Channel:
    """One end of the pair; `feed()` returns whole lines, `closed` turns True at EOF."""

    __slots__ = ("_buffer", "closed", "sock")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._buffer = b""
        self.closed = False

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        """(master end, worker end)."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: str) -> bool:
        if self.closed:
            return False
        try:
            self.sock.send(message.encode("utf-8", "replace") + b"\n")
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self.closed = True
            return False
        return True

    def receive(self) -> list[str]:
        """Read what is available; returns complete lines (EOF sets `closed`)."""
        lines: list[str] = []
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self.closed = True
                break
            self._buffer += data
        if b"\n" in self._buffer:
            *complete, self._buffer = self._buffer.split(b"\n")
            lines = [line.decode("utf-8", "replace") for line in complete if line]
        return lines

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()
