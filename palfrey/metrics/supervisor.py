"""Metrics in the pre-fork model: what the master counts, and how a scrape sees every worker.

The master owns the scrape listener (on its selectors loop) and an `Aggregate` of worker snapshots.
Freshness: a scrape sends `stats <n>` to every ready or draining worker and is answered once each has
replied `stats <n> <snapshot>`, or after SCRAPE_WAIT (a blocked worker then shows its last snapshot).
A worker counts a request in the same event-loop step that writes its response, so a scrape made
after N responses have arrived reports all N. Workers also push a snapshot with every pong (so a
crash loses at most about a second of counts) and a final one after their drain, just before exit
(so recycling loses nothing). The master's own counters (signals, restarts, health-check round
trips) are plain ints here. With --metrics off the master holds `NullMetrics`, whose hooks do nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from bisect import bisect_left
from collections import Counter
from typing import TYPE_CHECKING, Any

from palfrey.metrics.counters import HEALTH_BOUNDS
from palfrey.metrics.endpoint import Client, SelectorEndpoint, bind, url
from palfrey.metrics.scrapes import PendingScrapes
from palfrey.metrics.snapshot import MasterView, WorkerView, encode, process_usage, take
from palfrey.supervisor.channel import MSG_STATS
from palfrey.supervisor.handle import BOOTING, DRAINING, READY, STOPPING, WorkerHandle
from palfrey.supervisor.health import INF

if TYPE_CHECKING:
    from palfrey.supervisor.channel import Channel
    from palfrey.supervisor.master import Master

logger = logging.getLogger("palfrey.error")

# Which of two processes sharing a slot (during a replacement-first handoff) the per-worker gauges show.
_OWNER_RANK = {READY: 0, BOOTING: 1, DRAINING: 2, STOPPING: 3}


def master_metrics(master: Master) -> MasterMetrics | NullMetrics:
    """The master's metrics hooks: real ones with --metrics (binds --metrics-bind), no-ops without."""
    if not master.config.metrics:
        return NullMetrics()
    return MasterMetrics(master, bind(master.config.metrics_bind))


def send_snapshot(channel: Channel, state: Any, sequence: str = "0") -> None:
    """Worker side: answer `stats <n>` (or push, n = 0) with this process's snapshot."""
    if state is not None and state.metrics is not None:
        channel.send(f"{MSG_STATS} {sequence} {encode(take(state))}")


class NullMetrics:
    """--metrics off: the master calls the same hooks, and nothing happens."""

    def signal(self, sig: int) -> None:
        pass

    def restart(self, reason: str) -> None:
        pass

    def pong(self, handle: WorkerHandle, now: float) -> None:
        pass

    def stats(self, handle: WorkerHandle, argument: str) -> None:
        pass

    def exited(self, handle: WorkerHandle) -> None:
        pass

    def next_deadline(self) -> float:
        return INF

    def check(self, now: float) -> None:
        pass

    def close(self) -> None:
        pass

    def close_in_child(self) -> None:
        pass


class MasterMetrics(NullMetrics):
    """Counters the master keeps, worker snapshots, and scrapes waiting for fresh ones."""

    def __init__(self, master: Master, sock: Any) -> None:
        self.master = master
        self.pending = PendingScrapes()  # scrapes waiting for fresh snapshots (scrapes.py)
        self.aggregate = self.pending.aggregate
        self.signals: Counter[str] = Counter()
        self.restarts: Counter[str] = Counter()
        self.health_buckets = [0] * (len(HEALTH_BOUNDS) + 1)
        self.health_sum = 0.0
        self.rtt: dict[int, float] = {}  # pid -> last health-check round trip
        self.endpoint = SelectorEndpoint(sock, master.selector, self._scrape)
        logger.info("Metrics on %s", url(sock))

    # Hooks called by the master.

    def signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        self.signals[name[3:] if name.startswith("SIG") else name] += 1

    def restart(self, reason: str) -> None:
        self.restarts[reason] += 1

    def pong(self, handle: WorkerHandle, now: float) -> None:
        if handle.ping_sent is None:
            return
        rtt = now - handle.ping_sent
        self.rtt[handle.pid] = rtt
        self.health_buckets[bisect_left(HEALTH_BOUNDS, rtt)] += 1
        self.health_sum += rtt

    def stats(self, handle: WorkerHandle, argument: str) -> None:
        self.pending.stats(handle.pid, argument)
        self._answer_ready(time.monotonic())

    def exited(self, handle: WorkerHandle) -> None:
        """Read what the worker sent before it exited (its final snapshot), then fold it into the totals."""
        if not handle.channel.closed:
            for message in handle.channel.receive():
                verb, _, argument = message.partition(" ")
                if verb == MSG_STATS:
                    self.stats(handle, argument)
        self.pending.gone(handle.pid)
        self.rtt.pop(handle.pid, None)
        self._answer_ready(time.monotonic())

    def next_deadline(self) -> float:
        return min(self.endpoint.next_deadline(), self.pending.next_deadline(INF))

    def check(self, now: float) -> None:
        self._answer_ready(now)
        self.endpoint.check(now)

    def close(self) -> None:
        self.endpoint.close()

    def close_in_child(self) -> None:
        self.endpoint.close_in_child()

    # Scrapes.

    def _scrape(self, client: Client) -> None:
        """Ask every worker that can answer for a fresh snapshot; answer when all did (or in SCRAPE_WAIT)."""
        now = time.monotonic()
        workers = self.master.workers.values()
        self.pending.ask(client, ((h.pid, h.channel) for h in workers if h.state in (READY, DRAINING)), now)
        self._answer_ready(now)

    def _answer_ready(self, now: float) -> None:
        self.pending.answer_due(now, self.endpoint.answer, self.render)

    def render(self) -> bytes:
        from palfrey.metrics.exposition import render

        totals, gauges = self.aggregate.totals()
        handles = list(self.master.workers.values())
        return render(totals, gauges, self._worker_views(handles), self._master_view(handles))

    def _worker_views(self, handles: list[WorkerHandle]) -> list[WorkerView]:
        owners: dict[int, WorkerHandle] = {}
        for handle in handles:
            best = owners.get(handle.slot)
            if best is None or (_OWNER_RANK[handle.state], -handle.started) < (
                _OWNER_RANK[best.state],
                -best.started,
            ):
                owners[handle.slot] = handle
        now = time.monotonic()
        views = []
        for slot, handle in sorted(owners.items()):
            snapshot = self.aggregate.live.get(handle.pid, {})
            rss, cpu = process_usage(handle.pid) if os.path.isdir("/proc") else (None, None)
            views.append(
                WorkerView(
                    slot=slot,
                    pid=handle.pid,
                    state=handle.state,
                    age=now - handle.started,
                    served=snapshot.get("served", 0),
                    rss=rss if rss is not None else snapshot.get("rss"),
                    cpu=cpu if cpu is not None else snapshot.get("cpu"),
                    healthcheck_rtt=self.rtt.get(handle.pid),
                )
            )
        return views

    def _master_view(self, handles: list[WorkerHandle]) -> MasterView:
        return MasterView(
            desired=self.master.target,
            states=dict(Counter(handle.state for handle in handles)),
            restarts=dict(self.restarts),
            signals=dict(self.signals),
            health_buckets=list(self.health_buckets),
            health_sum=self.health_sum,
        )
