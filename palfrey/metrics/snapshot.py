"""Snapshots: one process's metrics as a JSON-able dict, and the sum over every worker there was.

A worker sends its snapshot over the control channel (one `stats` line), so the master never shares
memory with a worker. Counters in a snapshot are cumulative since the worker started; the master
keeps the latest snapshot of each live worker and, when a worker exits, folds that worker's last
snapshot into `finished`. A total is `finished` plus the latest snapshot of every live worker, so it
never goes backwards when workers are recycled. A worker that is killed loses only what it counted
after its last snapshot (workers send one with every health-check pong, so at most about a second).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from palfrey.interfaces.wsgi_pool import pool_stats
from palfrey.metrics.counters import DURATION_BOUNDS, STATUS_CLASSES

# Cumulative scalar counters and the gauges carried by a snapshot (gauges are not summed over time).
COUNTERS = (
    "bytes_in",
    "bytes_out",
    "connections",
    "ws_connections",
    "app_exceptions",
    "limited",
    "request_timeouts",
    "accept_exhausted",
)
# The WSGI thread pool's (palfrey/interfaces/wsgi_pool.py): in a snapshot only when the app is WSGI.
POOL_COUNTERS = ("wsgi_grown", "wsgi_rejected")
GAUGES = ("in_flight", "open", "ws_open", "wsgi_threads", "wsgi_busy", "wsgi_queued")


def take(state: Any, draining: bool = False) -> dict[str, Any]:
    """A snapshot of a server process: its recorder, its gauges, its resource use.

    `state` is the process's ServerState; the gauges come from the sets it already keeps (request
    tasks, connections), so the hot path never maintains them.
    """
    recorder = state.metrics
    rss, cpu = process_usage()
    snapshot: dict[str, Any] = {name: getattr(recorder, name) for name in COUNTERS}
    snapshot.update(
        requests=recorder.requests,
        duration=recorder.duration_buckets,
        duration_sum=recorder.duration_sum,
        protocol_errors=[[status, reason, n] for (status, reason), n in recorder.protocol_errors.items()],
        in_flight=len(state.tasks),
        open=max(0, len(state.connections) - recorder.ws_open),
        ws_open=recorder.ws_open,
        served=state.total_requests,
        rss=rss,
        cpu=cpu,
        draining=draining or state.draining,
    )
    pool = pool_stats()
    if pool is not None:
        snapshot.update(pool)
    return snapshot


def encode(snapshot: dict[str, Any]) -> str:
    """One line of JSON (no newline inside), for the control channel."""
    return json.dumps(snapshot, separators=(",", ":"))


def decode(text: str) -> dict[str, Any] | None:
    """A snapshot from `encode`, or None if it is not one (never raises)."""
    try:
        snapshot = json.loads(text)
    except ValueError:
        return None
    if not isinstance(snapshot, dict) or len(snapshot.get("duration", ())) != len(DURATION_BOUNDS) + 1:
        return None
    return snapshot


def resident_bytes(pid: int | None = None) -> int | None:
    """Resident memory of a process in bytes: the one RSS reader (metrics and --limit-max-memory).

    Linux /proc for any process; elsewhere, for this process only, the peak from getrusage.
    """
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    where = "self" if pid is None else str(pid)
    try:
        with open(f"/proc/{where}/statm", "rb") as file:
            return int(file.read().split()[1]) * page
    except (OSError, ValueError, IndexError):
        return _peak_rss() if pid is None else None


def process_usage(pid: int | None = None) -> tuple[int | None, float | None]:
    """(resident bytes, CPU seconds) of a process, None where the platform cannot tell.

    Read when a snapshot is taken or a scrape is answered, never per request. For another process
    (the master looking at a worker that cannot answer yet) this needs Linux's /proc.
    """
    rss = resident_bytes(pid)
    if pid is None:
        times = os.times()
        return rss, times.user + times.system
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            fields = file.read().rpartition(b")")[2].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return rss, (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)
    except (OSError, ValueError, IndexError):
        return rss, None


def _peak_rss() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@dataclass
class Totals:
    """Counters summed over snapshots."""

    requests: dict[str, list[int]] = field(default_factory=dict)
    duration: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BOUNDS) + 1))
    duration_sum: float = 0.0
    scalars: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS + POOL_COUNTERS, 0))
    protocol_errors: dict[tuple[int, str], int] = field(default_factory=dict)

    def add(self, snapshot: dict[str, Any]) -> None:
        for method, counts in snapshot.get("requests", {}).items():
            mine = self.requests.setdefault(method, [0] * STATUS_CLASSES)
            for index, count in enumerate(counts[:STATUS_CLASSES]):
                mine[index] += count
        for index, count in enumerate(snapshot["duration"]):
            self.duration[index] += count
        self.duration_sum += snapshot.get("duration_sum", 0.0)
        for name in COUNTERS + POOL_COUNTERS:
            self.scalars[name] += snapshot.get(name, 0)
        for status, reason, count in snapshot.get("protocol_errors", ()):
            key = (int(status), str(reason))
            self.protocol_errors[key] = self.protocol_errors.get(key, 0) + count

    def copy(self) -> Totals:
        return Totals(
            requests={method: list(counts) for method, counts in self.requests.items()},
            duration=list(self.duration),
            duration_sum=self.duration_sum,
            scalars=dict(self.scalars),
            protocol_errors=dict(self.protocol_errors),
        )

    @property
    def request_count(self) -> int:
        return sum(sum(counts) for counts in self.requests.values())


class Aggregate:
    """The master's view: finished workers' final counts plus each live worker's latest snapshot."""

    def __init__(self) -> None:
        self.finished = Totals()
        self.live: dict[int, dict[str, Any]] = {}

    def update(self, pid: int, snapshot: dict[str, Any]) -> None:
        """A live worker's latest snapshot (cumulative, so it replaces the previous one)."""
        self.live[pid] = snapshot

    def finish(self, pid: int) -> None:
        """The worker exited: its last snapshot is final and moves into the finished sum."""
        snapshot = self.live.pop(pid, None)
        if snapshot is not None:
            self.finished.add(snapshot)

    def totals(self) -> tuple[Totals, dict[str, int]]:
        """(counters over every worker there was, gauges over the live ones)."""
        totals = self.finished.copy()
        gauges = dict.fromkeys(GAUGES, 0)
        for snapshot in self.live.values():
            totals.add(snapshot)
            for name in GAUGES:
                gauges[name] += snapshot.get(name, 0)
        return totals, gauges


@dataclass
class WorkerView:
    """One worker as the exposition shows it (label `worker` is the slot, stable across recycling)."""

    slot: int
    pid: int
    state: str  # booting, ready, draining, stopping
    age: float
    served: int | None = None
    rss: int | None = None
    cpu: float | None = None
    healthcheck_rtt: float | None = None


@dataclass
class MasterView:
    """What only the master knows: worker counts, restarts, signals, health-check round trips."""

    desired: int
    states: dict[str, int]  # processes per state (a handoff briefly has two per slot)
    restarts: dict[str, int]
    signals: dict[str, int]
    health_buckets: list[int]
    health_sum: float
