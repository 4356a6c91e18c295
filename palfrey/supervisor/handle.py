"""`WorkerHandle`: one forked worker as the master sees it, and the states it moves through.

A worker is BOOTING from fork until it sends `ready`, READY while it serves, DRAINING once it takes
no new work (told to drain, or it reached its own limit), and STOPPING once the master asked it to
exit now (shutdown, health kill). The state names are the master's bookkeeping; the words on the
control channel are `channel.MSG_*`, so the two never share a name.
"""

from __future__ import annotations

from dataclasses import dataclass

from palfrey.supervisor.channel import Channel

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
