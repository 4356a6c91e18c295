"""The master's rollout policy as a pure function, and the crash backoff: no forking, no clock reads.

`plan()` looks at the workers the master has and says what to do next (spawn, drain, kill); the
master carries the actions out and calls it again after every wake-up. Keeping it free of processes
means every transition is unit-tested in milliseconds (tests/test_master_policy.py).

The rules, in the order they are applied:

1. **A worker at its limit is replaced at once.** It has already stopped accepting (it is DRAINING;
   the listener, kept open by the master, holds new connections), so its replacement fills the gap.
   Several workers may be at their limit together: nothing here waits for another worker's drain,
   so one slow drain never keeps a worker serving past its limit.
2. **Rolling restarts (HUP, --reload) go replacement first, one booting replacement at a time.** The
   old worker drains when its replacement is ready. Drains do not hold the rollout back: only the
   boot of the previous replacement does, so at most --workers + 1 processes accept work.
3. **Missing workers are spawned** (start, TTIN, a crash), unless the crash backoff holds them back.
4. **Surplus workers (TTOU)**: booting ones are killed first, then ready ones drain, oldest first.
5. **A ready replacement takes over**: the worker it replaces drains.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from palfrey.supervisor.handle import BOOTING, DRAINING, READY, WorkerHandle

INF = math.inf


@dataclass
class Plan:
    """What the master should do now."""

    spawn: list[WorkerHandle | None] = field(default_factory=list)  # None: a new worker; else: replace it
    drain: list[tuple[WorkerHandle, str]] = field(default_factory=list)  # (worker, why, for the log)
    kill: list[tuple[WorkerHandle, str]] = field(default_factory=list)
    wake_at: float = INF  # plan again then: a spawn is held back by the crash backoff


def plan(
    workers: Sequence[WorkerHandle], target: int, generation: int, now: float, not_before: float = -INF
) -> Plan:
    """The next actions for `workers` (in fork order) to converge on `target` workers of `generation`.

    `not_before` is the crash backoff: no new worker (other than a recycled worker's replacement)
    is forked before then.
    """
    result = Plan()
    serving = [w for w in workers if w.serving]
    count = len(serving)
    # 1. Limits: a replacement at once for every worker that reached one.
    for worker in workers:
        if worker.recycle_reason is None or worker.replaced_by is not None:
            continue
        if worker.state == DRAINING and count < target:
            result.spawn.append(worker)  # it stopped accepting: its replacement fills the gap
            count += 1
    # 2. Rolling restart: one booting replacement at a time; drains never hold it back.
    rolling = any(
        w.state == BOOTING and w.replaces is not None and w.replaces.recycle_reason is None for w in workers
    )
    if not rolling and count <= target:
        for worker in serving:
            if worker.state == READY and worker.generation < generation:
                result.spawn.append(worker)
                break
    # 3. Missing workers, unless the crash backoff holds them back.
    if count < target:
        if now >= not_before:
            result.spawn.extend([None] * (target - count))
        else:
            result.wake_at = not_before
    # 4. Surplus (TTOU): kill booting workers first (newest first: they serve nobody yet), then
    #    drain ready ones, oldest first.
    surplus = count - target
    if surplus > 0:
        for worker in [w for w in reversed(serving) if w.state == BOOTING][:surplus]:
            result.kill.append((worker, f"is not needed with {target} worker(s)"))
            surplus -= 1
        for worker in [w for w in serving if w.state == READY][:surplus]:
            result.drain.append((worker, f"reducing to {target} worker(s)"))
    # 5. Hand-over: a ready replacement lets the worker it replaces drain.
    for worker in workers:
        new = worker.replaced_by
        if worker.state == READY and new is not None and new.state == READY:
            why = worker.recycle_reason or "rolling restart"
            result.drain.append((worker, f"worker (pid {new.pid}) took over ({why})"))
    return result


def readiness(workers: Sequence[WorkerHandle], target: int, generation: int) -> tuple[bool, bool, str]:
    """(all `target` workers ready, ready and none outdated or draining: a rollout is done, their pids)."""
    serving = [w for w in workers if w.serving]
    ready = len(serving) == target and all(w.state == READY for w in serving)
    settled = (
        ready
        and all(w.generation == generation for w in serving)
        and not any(w.state == DRAINING for w in workers)
    )
    return ready, settled, ", ".join(str(w.pid) for w in serving)


class Backoff:
    """How long to wait before replacing a worker that died at runtime.

    A worker that had been serving for a while (`stable` seconds) is replaced at once: one death is
    an accident, not a loop. A worker that dies soon after becoming ready (or while booting) doubles
    the delay, from `first` up to `cap`; the delay resets once a worker stays up for `stable`
    seconds, or nothing died for that long. The master never stops because of these deaths.

    `stable` is short (2 s) on purpose: workers the OOM killer takes every few seconds are replaced
    at once, as gunicorn does; only workers dying right after boot, a real crash loop that would
    burn the CPU on imports, are slowed down.
    """

    def __init__(self, first: float = 0.1, cap: float = 30.0, stable: float = 2.0) -> None:
        self.first = first
        self.cap = cap
        self.stable = stable
        self.delay = 0.0
        self.not_before = -INF
        self._last_death = -INF

    def died(self, ready_for: float | None, now: float) -> float:
        """Record an unexpected death (`ready_for`: seconds it had been ready, None if it never was).

        Returns the delay before its replacement may be forked.
        """
        if (
            ready_for is not None and ready_for >= self.stable
        ) or now - self._last_death >= self.stable + self.delay:
            self.delay = 0.0
        else:
            self.delay = min(self.cap, max(self.first, self.delay * 2))
        self._last_death = now
        self.not_before = max(self.not_before, now + self.delay)
        return self.delay

    def reset(self) -> None:
        """Forget past deaths (shutdown, or a rollout the operator asked for)."""
        self.delay = 0.0
        self.not_before = -INF
