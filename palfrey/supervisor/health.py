"""What the master knows about each worker, and the health-check clock.

Pings fan out to every serving worker at once over the control channels; a worker answers from its
event loop, so no answer within --timeout-worker-healthcheck means its loop is blocked (or the process
is stopped). A booting worker is judged by its own, longer deadline (--timeout-worker-boot) instead,
so a slow import is not mistaken for a hang. Nothing here touches the filesystem.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

from palfrey.supervisor.channel import PING, Channel

BOOTING, READY, DRAINING, STOPPING = "booting", "ready", "draining", "stopping"
INF = math.inf


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


class HealthCheck:
    """The ping clock: when to ping next, and which workers missed their deadline."""

    def __init__(self, timeout: float, boot_timeout: float) -> None:
        self.timeout = timeout
        self.boot_timeout = boot_timeout
        # Ping often enough that a hang is seen within about timeout + interval.
        self.interval = max(0.1, min(1.0, timeout / 2))
        self.next_ping = 0.0

    def ping_due(self, workers: list[WorkerHandle], now: float) -> None:
        """Ping, all at once, every ready or draining worker that has no ping outstanding."""
        if now < self.next_ping:
            return
        self.next_ping = now + self.interval
        for worker in workers:
            if worker.state in (READY, DRAINING) and worker.ping_sent is None:
                # Count the ping as sent even if the channel is gone: no pong means the same either way.
                worker.channel.send(PING)
                worker.ping_sent = now

    def overdue(self, workers: list[WorkerHandle], now: float) -> list[tuple[WorkerHandle, str]]:
        """Workers to kill now, with the reason to log."""
        found = []
        for worker in workers:
            if worker.state == BOOTING and now >= worker.boot_deadline:
                found.append((worker, f"did not boot within {self.boot_timeout:g}s"))
            elif worker.ping_sent is not None and now - worker.ping_sent >= self.timeout:
                found.append(
                    (
                        worker,
                        f"did not answer a health check within {self.timeout:g}s "
                        "(event loop blocked, or process stopped)",
                    )
                )
        return found

    def next_deadline(self, workers: list[WorkerHandle]) -> float:
        deadline = INF
        for worker in workers:
            if worker.state == BOOTING:
                deadline = min(deadline, worker.boot_deadline)
            elif worker.state in (READY, DRAINING):
                deadline = min(deadline, self.next_ping)
            if worker.ping_sent is not None:
                deadline = min(deadline, worker.ping_sent + self.timeout)
            if worker.kill_at is not None:
                deadline = min(deadline, worker.kill_at)
        return deadline


class CrashWindow:
    """Unexpected worker deaths within the last `window` seconds (crash-loop detection)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._times: collections.deque[float] = collections.deque()

    def record(self, now: float) -> int:
        """Count one death; returns how many fell within the window."""
        self._times.append(now)
        while self._times[0] < now - self.window:
            self._times.popleft()
        return len(self._times)
