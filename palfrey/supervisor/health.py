"""The health-check clock: when to ping, and which workers missed their deadline.

Pings fan out to every serving worker at once over the control channels; a worker answers from its
event loop, so no answer within --timeout-worker-healthcheck means its loop is blocked (or the process
is stopped). A booting worker is judged by its own, longer deadline (--timeout-worker-boot) instead,
so a slow import is not mistaken for a hang. Nothing here touches the filesystem.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from palfrey.supervisor.channel import MSG_PING
from palfrey.supervisor.handle import BOOTING, DRAINING, READY, WorkerHandle
from palfrey.supervisor.process import is_stopped

INF = math.inf


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
                worker.channel.send(MSG_PING)
                worker.ping_sent = now

    def overdue(
        self, workers: list[WorkerHandle], now: float, stopped: Callable[[int], bool] = is_stopped
    ) -> list[tuple[WorkerHandle, str, bool]]:
        """Workers to kill now: (worker, the reason to log, whether the process is stopped).

        A stopped process (SIGSTOP) is found sooner than a blocked loop: once a ping has waited one
        ping interval, /proc says whether the process is stopped; a stopped one cannot answer at all,
        and waiting the full timeout would only keep its requests stuck longer.
        """
        found = []
        for worker in workers:
            waited = None if worker.ping_sent is None else now - worker.ping_sent
            if worker.state == BOOTING and now >= worker.boot_deadline:
                found.append((worker, f"did not boot within {self.boot_timeout:g}s", stopped(worker.pid)))
            elif waited is not None and waited >= self.interval and stopped(worker.pid):
                found.append(
                    (worker, f"did not answer a health check for {waited:.1f}s: process stopped", True)
                )
            elif waited is not None and waited >= self.timeout:
                found.append(
                    (
                        worker,
                        f"did not answer a health check within {self.timeout:g}s (event loop blocked)",
                        False,
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
                # (A stopped process is looked for at the ping ticks, which wake the loop anyway.)
                deadline = min(deadline, worker.ping_sent + self.timeout)
            if worker.kill_at is not None:
                deadline = min(deadline, worker.kill_at)
        return deadline
