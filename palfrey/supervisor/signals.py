"""Signals as bytes on a pipe: how the master hears signals without threads or polling.

The Python-level handlers do nothing; CPython's C-level handler writes each signal's number to the
wake-up fd, which wakes the master's selector, and the loop reads the numbers back in order. Work is
never done inside a handler, so a signal cannot interrupt the master half-way through a change.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any


class SignalPipe:
    def __init__(self, signals: tuple[int, ...]) -> None:
        self.signals = signals
        self.read_fd = self.write_fd = -1
        self._old_handlers: dict[int, Any] = {}
        self._old_wakeup_fd = -1

    def install(self) -> int:
        """Route `signals` to the pipe; returns the fd to select on."""
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)
        self._old_wakeup_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        for sig in self.signals:
            self._old_handlers[sig] = signal.signal(sig, _ignore)
        return self.read_fd

    def read(self) -> list[int]:
        """The signal numbers received since the last read, oldest first."""
        try:
            return list(os.read(self.read_fd, 256))
        except (BlockingIOError, InterruptedError):
            return []

    def restore(self) -> None:
        """Put back the handlers and wake-up fd found at install (palfrey.run() returns to a caller)."""
        for sig, handler in self._old_handlers.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)
        self._old_handlers.clear()
        if self.write_fd >= 0:
            with contextlib.suppress(ValueError):
                signal.set_wakeup_fd(self._old_wakeup_fd)
        self.close()

    def close(self) -> None:
        """Close the pipe only; a forked child calls this after resetting its signals."""
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.read_fd = self.write_fd = -1


def _ignore(signum: int, frame: Any) -> None:
    """A no-op Python handler: the wake-up fd carries the signal to the loop."""
