"""The control channel between the master and one worker: a socketpair carrying short text lines.

Lines keep the protocol readable in an strace and trivially framed. Master to worker: `ping`,
`drain`, `stats <n>` (--metrics). Worker to master: `ready`, `pong`, `recycle <kind> <reason>`,
`stats <n> <snapshot JSON>`, `boot-error <JSON text>`, `signalled <SIGNAME>`, `memory-floor <MiB>
<limit>`. Both ends are non-blocking; a message that cannot be written at once is
dropped (a full buffer means the peer is not reading, which the health check catches anyway). A
message written only in part keeps its tail, sent before the next one, so lines are never torn.
"""

from __future__ import annotations

import contextlib
import signal
import socket

# Message words (MSG_*), named apart from the master's worker states (handle.py) on purpose.
MSG_PING, MSG_PONG, MSG_READY, MSG_DRAIN, MSG_RECYCLE, MSG_STATS = (
    "ping",
    "pong",
    "ready",
    "drain",
    "recycle",
    "stats",
)
MSG_BOOT_ERROR = "boot-error"  # worker -> master: why it cannot boot (JSON text), logged once by the master
MSG_SIGNALLED = "signalled"  # worker -> master: it got TERM/INT/QUIT from outside the master and is stopping
MSG_MEMORY_FLOOR = "memory-floor"  # worker -> master: fresh RSS already over --limit-max-memory
# Master -> hung worker, whose loop cannot read the channel: faulthandler prints every thread's stack.
DUMP_SIGNAL = signal.SIGUSR2


class Channel:
    """One end of the pair; `receive()` returns whole lines, `closed` turns True at EOF.

    A failed write (the peer has exited: EPIPE) only stops further writes (`broken`); it does not
    set `closed`, because what the peer sent before it exited (a final snapshot, its last words)
    may still be waiting to be read, and `receive()` reads until EOF.
    """

    __slots__ = ("_buffer", "_tail", "broken", "closed", "sock")

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._buffer = b""
        self._tail = b""  # the unsent end of a message written in part
        self.closed = False
        self.broken = False  # a write failed: the peer is gone; reading goes on until EOF

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        """(master end, worker end)."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, message: str) -> bool:
        if self.closed or self.broken or (self._tail and not self._write_tail()):
            return False
        data = message.encode("utf-8", "replace") + b"\n"
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self.broken = True
            return False
        self._tail = data[sent:]  # a long line (a metrics snapshot) may go out in part
        return True

    def _write_tail(self) -> bool:
        try:
            sent = self.sock.send(self._tail)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            self.broken = True
            return False
        self._tail = self._tail[sent:]
        return not self._tail

    def flush(self, timeout: float) -> None:
        """Finish a message written in part, waiting up to `timeout` (a worker's last words before exit)."""
        if not self._tail or self.closed or self.broken:
            return
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(self._tail)
            self._tail = b""
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                self.sock.setblocking(False)

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
