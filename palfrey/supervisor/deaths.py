"""Why a worker ended, what the master logs, and when its replacement may start.

Kept apart from master.py so the judgement is one readable table (and unit-tested without forking):

- **expected**: the master asked for it (drain, TTOU, health kill) or is shutting down;
- **boot-failed**: exit code 3 before it was ever ready (import error, lifespan startup failure);
- **outside**: stopped by TERM/INT/QUIT (or exit code 0) that the master did not send, such as an
  operator's `kill` or a group signal whose copy has not reached the master yet. Not a crash: it is
  replaced after a short grace, which a shutdown of the master cancels;
- **crash**: anything else (SIGKILL from the OOM killer, a segfault, a non-zero exit). Always replaced;
  `Backoff` delays the replacement if workers keep dying soon after becoming ready. Workers that die
  before they were ever ready in a loop (BOOT_LIMIT within BOOT_WINDOW) stop the master with code 3.
"""

from __future__ import annotations

import collections
import json
import logging
import signal

from palfrey.errors import EXIT_BOOT
from palfrey.supervisor.handle import BOOTING, WorkerHandle
from palfrey.supervisor.policy import Backoff

logger = logging.getLogger("palfrey.error")


BOOT_WINDOW = 30.0  # this many seconds ...
BOOT_LIMIT = 5  # ... and this many workers dying before they were ever ready stop the master
# A worker stopped by TERM/INT/QUIT from outside: if the signal went to the whole group, the master's
# own copy is on its way; wait this long for it before forking a replacement.
OUTSIDE_STOP_GRACE = 0.5
_HINTS: dict[int, str] = {
    signal.SIGKILL: " — out of memory?",
    signal.SIGSEGV: " — segmentation fault",
}
_OUTSIDE_STOPS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def judge(handle: WorkerHandle, code: int | None, sig: int | None, expected: bool) -> str:
    """ "expected", "boot-failed", "outside" or "crash" (see the module docstring)."""
    if expected or handle.exit_expected:
        return "expected"
    if handle.state == BOOTING and code == EXIT_BOOT:
        return "boot-failed"
    if handle.signalled is not None or code == 0 or sig in _OUTSIDE_STOPS:
        return "outside"
    return "crash"


def crash_label(sig: int | None) -> str:
    """The metrics `reason` of a crash: crash-sigkill (OOM killer?), crash-signal, crash-exit."""
    if sig == signal.SIGKILL:
        return "crash-sigkill"
    return "crash-signal" if sig is not None else "crash-exit"


class Deaths:
    """The master's memory of deaths: the crash backoff and the boot-loop window."""

    def __init__(self) -> None:
        self.backoff = Backoff()
        self._boot_deaths: collections.deque[float] = collections.deque()
        self.boot_error_logged = False  # each worker sends its import error; the first one is logged

    def boot_error(self, handle: WorkerHandle, argument: str) -> None:
        """Every worker fails the same way at import: log the first one's error, not one per worker."""
        if self.boot_error_logged:
            logger.debug("Worker (pid %d) cannot load the app either", handle.pid)
            return
        self.boot_error_logged = True
        try:
            text = json.loads(argument)
        except ValueError:
            text = argument
        logger.error("%s", text)

    def memory_floor(self, handle: WorkerHandle, argument: str) -> None:
        """A fresh worker is already over --limit-max-memory: say so; the worker ignores the limit."""
        rss, _, limit = argument.partition(" ")
        logger.error(
            "Worker (pid %d) uses %s MiB right after booting, above --limit-max-memory %s MiB: recycling it "
            "would start another worker just as big, in a loop, so the memory limit is off for this worker. "
            "Raise the limit above a fresh worker's size.",
            handle.pid,
            rss,
            limit,
        )

    def outside(self, handle: WorkerHandle, text: str, now: float) -> None:
        why = f"got {handle.signalled}" if handle.signalled else text
        logger.warning(
            "Worker (pid %d) stopped (%s), not asked to by the master; replacing it in %gs "
            "unless the master is stopping too",
            handle.pid,
            why,
            OUTSIDE_STOP_GRACE,
        )
        self.backoff.not_before = max(self.backoff.not_before, now + OUTSIDE_STOP_GRACE)

    def crashed(
        self, handle: WorkerHandle, sig: int | None, text: str, now: float, target: int
    ) -> str | None:
        """Log a crash and schedule its replacement; returns why to stop the master (a boot loop), if so."""
        hint = _HINTS.get(sig, "") if sig is not None else ""
        if handle.ready_at is None:
            logger.error("Worker (pid %d) died while booting (%s%s); replacing it", handle.pid, text, hint)
            return self.boot_death(now, target)
        uptime = now - handle.ready_at
        delay = self.backoff.died(uptime, now)
        when = "" if delay == 0 else f" in {delay:.1f}s (workers keep dying soon after becoming ready)"
        logger.error(
            "Worker (pid %d) died unexpectedly (%s%s) after %.1fs; replacing it%s",
            handle.pid,
            text,
            hint,
            uptime,
            when,
        )
        return None

    def boot_death(self, now: float, target: int) -> str | None:
        """A worker died (or was killed) before it was ever ready; in a loop, that stops the master."""
        times = self._boot_deaths
        times.append(now)
        while times[0] < now - BOOT_WINDOW:
            times.popleft()
        if len(times) >= max(BOOT_LIMIT, 2 * target):
            return (
                f"Workers died {len(times)} times within {BOOT_WINDOW:g}s while booting; stopping the "
                "master instead of booting them in a loop."
            )
        return None
