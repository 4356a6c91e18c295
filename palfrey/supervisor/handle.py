"""`WorkerHandle`: one forked worker as the master sees it, and the states it moves through.

A worker is BOOTING from fork until it sends `ready`, READY while it serves, DRAINING once it takes
no new work (told to drain, or it reached its own limit), and STOPPING once the master asked it to
exit now (shutdown, health kill). The state names are the master's bookkeeping; the words on the
control channel are `channel.MSG_*`, so the two never share a name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from dataclasses import dataclass

from palfrey.supervisor.channel import DUMP_SIGNAL, MSG_DRAIN, Channel

logger = logging.getLogger("palfrey.error")

KILL_GRACE = 2.0  # SIGTERM, then SIGKILL after this long, for a hung worker

BOOTING, READY, DRAINING, STOPPING = "booting", "ready", "draining", "stopping"


@dataclass(eq=False)
class WorkerHandle:
    """One forked worker as the master sees it."""

    pid: int
    channel: Channel
    generation: int  # bumped by HUP / --reload: an older generation is rolled over
    started: float  # monotonic time of the fork
    boot_deadline: float
    state: str = BOOTING
    ready_at: float | None = None
    ping_sent: float | None = None  # monotonic time of the unanswered ping, if any
    kill_at: float | None = None  # SIGKILL at this time unless it has exited
    exit_expected: bool = False  # the master asked it to go (drain, TTOU, shutdown, health kill)
    replaces: WorkerHandle | None = None  # the old worker this one will take over from once ready
    replaced_by: WorkerHandle | None = None
    recycle_reason: str | None = None  # the worker asked to be recycled (limit reached)
    recycle_kind: str | None = None  # which limit: max-requests, memory or lifetime (metrics label)
    signalled: str | None = None  # the worker said it got this signal from outside the master
    slot: int = 0  # stable number 0..N-1; a replacement takes the slot of the worker it replaces

    @property
    def serving(self) -> bool:
        """Counts toward --workers: booting or ready, and not already being replaced."""
        return self.state in (BOOTING, READY) and self.replaced_by is None

    @staticmethod
    def free_slot(workers: list[WorkerHandle]) -> int:
        """The lowest slot no booting or ready worker holds (a draining one gives its slot up)."""
        taken = {worker.slot for worker in workers if worker.state in (BOOTING, READY)}
        slot = 0
        while slot in taken:
            slot += 1
        return slot

    def ready(self, now: float) -> None:
        """It said `ready` (lifespan done, listening): it serves from now on."""
        if self.state != BOOTING:
            return
        self.state = READY
        self.ready_at = now
        logger.info("Worker (pid %d) ready (booted in %.2fs)", self.pid, now - self.started)

    # What the master does to this worker's process.

    def drain(self, reason: str, kill_at: float | None) -> None:
        """Stop accepting, finish in-flight requests (Connection: close), lifespan shutdown, exit."""
        logger.info("Worker (pid %d) draining: %s", self.pid, reason)
        self.draining(kill_at)
        if not self.channel.send(MSG_DRAIN):
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGTERM)

    def draining(self, kill_at: float | None) -> None:
        """It takes no new work (told to drain, or it reached its limit); SIGKILL at `kill_at`."""
        self.state = DRAINING
        self.exit_expected = True
        self.kill_at = kill_at

    def kill(self, reason: str, now: float, how: str = "term") -> None:
        """SIGTERM, then SIGKILL if it lingers. `how`: "dump" first asks a hung worker for its stacks
        (SIGUSR2: faulthandler, which works while the loop is blocked); "kill" is for a stopped
        process (SIGSTOP), which can act on nothing but SIGKILL.
        """
        self.state = STOPPING
        self.exit_expected = True
        self.ping_sent = None
        self.unlink()
        if how == "kill":
            logger.error(
                "Worker (pid %d) %s; killing it (SIGKILL: it cannot act on SIGTERM)", self.pid, reason
            )
            self.kill_at = None
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            return
        dump = " (its stacks are dumped below)" if how == "dump" else ""
        logger.error(
            "Worker (pid %d) %s; killing it%s (SIGTERM, then SIGKILL after %gs)",
            self.pid,
            reason,
            dump,
            KILL_GRACE,
        )
        self.kill_at = now + KILL_GRACE
        with contextlib.suppress(OSError):
            if how == "dump":
                os.kill(self.pid, DUMP_SIGNAL)  # delivered before TERM (lower number), dumped at once
            os.kill(self.pid, signal.SIGTERM)

    def unlink(self) -> None:
        """Forget the replacement pairing on both sides (it died, or was killed)."""
        if self.replaces is not None:
            self.replaces.replaced_by = None
            self.replaces = None
        if self.replaced_by is not None:
            self.replaced_by.replaces = None
            self.replaced_by = None
