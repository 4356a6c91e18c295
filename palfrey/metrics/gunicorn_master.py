"""Metrics under gunicorn: the collector that runs inside gunicorn's arbiter (`PALFREY_METRICS_BIND`).

gunicorn's arbiter is not palfrey's code, so the collector asks it for as little as possible:

- It starts from the worker class's `check_config(cfg, log)`, which gunicorn calls once in the master
  after installing its signal handlers and before forking any worker. The arbiter is found there as
  the object owning the SIGHUP handler; each master signal handler is wrapped to count the signal
  by name and then call gunicorn's own handler unchanged.
- Each worker gets a socketpair, made when the arbiter builds the worker object (in the master,
  just before the fork). The arbiter then sets `worker.pid` in the parent, which hands the master end
  to the collector (gunicorn_worker.py); `worker.aborted = True` (the arbiter's timeout kill) is
  noted the same way. Nothing depends on gunicorn's `cfg` hooks, which a HUP replaces.
- The collector is one daemon thread in the master with a `selectors` loop: the scrape listener
  (endpoint.py, shared with palfrey's own master), every worker's channel, and a wake-up pair. A
  scrape asks every ready or draining worker for a fresh snapshot (`stats <n>`) and answers when all
  replied, or after SCRAPE_WAIT; totals are finished workers' last snapshots plus live workers'
  latest (snapshot.Aggregate), so they never go backwards.
- An `os.register_at_fork` handler closes the collector's descriptors in every child the master
  forks (workers, gunicorn's re-exec, its dirty arbiter), so only the master holds them.

Failure modes are written down in docs/metrics.md ("Under gunicorn").
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import selectors
import signal
import socket
import threading
import time
from collections import Counter
from typing import Any

from palfrey.errors import ConfigError
from palfrey.metrics.endpoint import Client, SelectorEndpoint, bind, url
from palfrey.metrics.scrapes import PendingScrapes
from palfrey.metrics.snapshot import MasterView, WorkerView, process_usage
from palfrey.supervisor.channel import MSG_STATS, Channel

ENV = "PALFREY_METRICS_BIND"
REBIND_EVERY = 1.0  # a re-executed master (USR2) retries the port its parent still holds
COUNTED_SIGNALS = ("HUP", "USR1", "USR2", "CHLD", "TTIN", "TTOU", "TERM", "INT", "QUIT", "WINCH")
RESTARTS = ("max-requests", "timeout", "crash", "hup", "stopped")
# Worker -> master words on the channel (besides `stats <n> <json>`).
MSG_READY, MSG_DRAINING, MSG_BYE = "ready", "draining", "bye"
_OWNER_RANK = {"ready": 0, "booting": 1, "draining": 2, "stopping": 3}

_collector: Collector | None = None


def collector() -> Collector | None:
    """The collector of this process, if it is the gunicorn master running one."""
    current = _collector
    return current if current is not None and current.owner_pid == os.getpid() else None


def install(cfg: Any, log: Any) -> None:
    """From the worker class's `check_config` in gunicorn's master: start the collector if
    PALFREY_METRICS_BIND is set (idempotent). A busy or bad address stops gunicorn at boot."""
    global _collector
    value = os.environ.get(ENV, "").strip()
    if not value or collector() is not None:
        return
    from palfrey.metrics import MISSING_CLIENT, client_available

    if not client_available():
        raise ConfigError(f"{ENV}: {MISSING_CLIENT}")
    import palfrey.metrics.exposition  # noqa: F401  imported now, never from the thread (fork safety)

    try:
        sock: socket.socket | None = bind(value, ENV)
    except ConfigError:
        if "GUNICORN_PID" not in os.environ:
            raise
        sock = None  # USR2: the old master still serves the port; take it over when it is gone
        log.warning("%s %s: busy (the old master after USR2?); retrying every second", ENV, value)
    hup = signal.getsignal(signal.SIGHUP)
    arbiter = getattr(hup, "__self__", None)  # gunicorn installs bound methods of its Arbiter
    _collector = Collector(value, sock, arbiter, int(getattr(cfg, "workers", 1)), log)
    _wrap_signals(_collector)
    os.register_at_fork(after_in_child=_close_in_child)
    _collector.start()


def _wrap_signals(target: Collector) -> None:
    for name in COUNTED_SIGNALS:
        number = getattr(signal, f"SIG{name}", None)
        if number is None:
            continue
        previous = signal.getsignal(number)
        if callable(previous):
            signal.signal(number, functools.partial(_counting, target, name, previous))


def _counting(target: Collector, name: str, previous: Any, signum: int, frame: Any) -> Any:
    """A master signal: counted (main thread, plain int adds), then gunicorn's handler as before."""
    if os.getpid() == target.owner_pid:
        target.signal(name)
    return previous(signum, frame)


def _close_in_child() -> None:
    current = _collector
    if current is not None and current.owner_pid != os.getpid():
        current.close_in_child()


class _Worker:
    """The collector's record of one gunicorn worker."""

    __slots__ = ("channel", "hups", "pid", "said", "slot", "started", "state", "ttous")

    def __init__(self, pid: int, channel: Channel, hups: int, ttous: int) -> None:
        self.pid = pid
        self.channel = channel
        self.slot: int | None = None  # taken when it reports ready (a HUP's new workers boot first)
        self.state = "booting"
        self.started = time.monotonic()
        self.hups = hups  # master HUP/TTOU counts when it was forked: a later TERM is explained
        self.ttous = ttous
        self.said: str | None = None  # its last words: max-requests, term, quit


class Collector:
    """Worker snapshots, master counters and scrapes, on one thread in gunicorn's master."""

    def __init__(self, bind_value: str, sock: socket.socket | None, arbiter: Any, workers: int, log: Any):
        self.owner_pid = os.getpid()
        self.bind_value = bind_value
        self.arbiter = arbiter
        self.desired_fallback = workers
        self.log = log
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, self._drain_wakeups)
        # (pid, master end, HUP count, TTOU count), all taken on the main thread at the fork.
        self.inbox: queue.SimpleQueue[tuple[int, socket.socket, int, int]] = queue.SimpleQueue()
        # Every master end not yet closed, added on the main thread before the next fork can happen:
        # a child closes these, even one the thread is handing from the inbox to `workers`.
        self.master_ends: set[socket.socket] = set()
        self.endpoint: SelectorEndpoint | None = None
        self.next_bind = 0.0
        if sock is not None:
            self._listen(sock)
        self.workers: dict[int, _Worker] = {}
        self.pending = (
            PendingScrapes()
        )  # scrapes waiting for fresh snapshots (scrapes.py, as on palfrey's master)
        self.aggregate = self.pending.aggregate
        self.signals: Counter[str] = Counter()
        self.restarts: Counter[str] = Counter(dict.fromkeys(RESTARTS, 0))
        self.aborted: set[int] = set()
        self.stopping = False
        self.hups = 0
        self.ttous = 0
        self.thread = threading.Thread(target=self._run, name="palfrey-metrics", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _listen(self, sock: socket.socket) -> None:
        self.endpoint = SelectorEndpoint(sock, self.selector, self._scrape)
        self.log.info("Metrics on %s", url(sock))

    # Called from gunicorn's main thread (signal handlers, the worker object's pid/aborted).

    def signal(self, name: str) -> None:
        self.signals[name] += 1
        if name in ("TERM", "INT", "QUIT"):
            self.stopping = True
        elif name == "HUP":
            self.hups += 1
        elif name == "TTOU":
            self.ttous += 1

    def adopt(self, pid: int, sock: socket.socket) -> None:
        """A worker was just forked: its channel's master end, for the thread to register."""
        self.master_ends.add(sock)
        self.inbox.put((pid, sock, self.hups, self.ttous))
        self._wake()

    def abort(self, pid: int) -> None:
        """The arbiter's timeout kill (`worker.aborted = True`): its exit is a `timeout` restart."""
        self.aborted.add(pid)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self.wake_w.send(b"\0")

    # The thread.

    def _run(self) -> None:
        while True:
            now = time.monotonic()
            deadline = min(self._next_deadline(), now + 1.0)
            try:
                events = self.selector.select(max(0.0, deadline - now))
                for key, _ in events:
                    key.data()
                now = time.monotonic()
                self._answer_ready(now)
                if self.endpoint is not None:
                    self.endpoint.check(now)
                elif now >= self.next_bind:
                    self._rebind(now)
            except Exception:  # never take the master down; say so and go on
                self.log.exception("palfrey metrics collector error")
                time.sleep(0.1)

    def _next_deadline(self) -> float:
        endpoint = self.endpoint.next_deadline() if self.endpoint is not None else self.next_bind
        return min(endpoint, self.pending.next_deadline(float("inf")))

    def _rebind(self, now: float) -> None:
        self.next_bind = now + REBIND_EVERY
        with contextlib.suppress(ConfigError):
            self._listen(bind(self.bind_value, ENV))

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(OSError):
            self.wake_r.recv(4096)
        while True:
            try:
                pid, sock, hups, ttous = self.inbox.get_nowait()
            except queue.Empty:
                return
            worker = _Worker(pid, Channel(sock), hups, ttous)
            self.workers[pid] = worker
            self.selector.register(sock, selectors.EVENT_READ, functools.partial(self._read, worker))

    def _read(self, worker: _Worker) -> None:
        for line in worker.channel.receive():
            verb, _, argument = line.partition(" ")
            if verb == MSG_STATS:
                self._stats(worker, argument)
            elif verb == MSG_READY:
                worker.state = "ready"
                held = {w.slot for w in self.workers.values() if w.state == "ready" and w is not worker}
                worker.slot = next(slot for slot in range(len(held) + 1) if slot not in held)
            elif verb == MSG_DRAINING:
                worker.state = "draining"
            elif verb == MSG_BYE:
                worker.said = argument or "term"
        if worker.channel.closed:
            self._exited(worker)

    def _stats(self, worker: _Worker, argument: str) -> None:
        self.pending.stats(worker.pid, argument)

    def _exited(self, worker: _Worker) -> None:
        """Channel EOF: the worker is gone; its last snapshot joins the totals, its exit is classified."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(worker.channel.sock)
        worker.channel.close()
        self.master_ends.discard(worker.channel.sock)
        self.workers.pop(worker.pid, None)
        self.pending.gone(worker.pid)
        reason = self._restart_reason(worker)
        if reason is not None:
            self.restarts[reason] += 1

    def _restart_reason(self, worker: _Worker) -> str | None:
        if worker.pid in self.aborted:
            self.aborted.discard(worker.pid)
            return "timeout"
        if worker.said == "max-requests":
            return "max-requests"
        if self.stopping:
            return None  # the master is shutting down: not a restart
        if worker.said is None:
            return "crash"  # no last words: killed (SIGKILL, OOM), crashed, or failed to boot
        if self.hups > worker.hups:
            return "hup"
        if self.ttous > worker.ttous:
            return None  # scaled down: not a restart
        return "stopped"  # TERM/INT/QUIT from outside the arbiter; gunicorn replaces it

    def _scrape(self, client: Client) -> None:
        workers = self.workers.values()
        ready = ((w.pid, w.channel) for w in workers if w.state in ("ready", "draining"))
        self.pending.ask(client, ready, time.monotonic())

    def _answer_ready(self, now: float) -> None:
        if self.endpoint is not None:
            self.pending.answer_due(now, self.endpoint.answer, self.render)

    def render(self) -> bytes:
        from palfrey.metrics.exposition import render

        totals, gauges = self.aggregate.totals()
        workers = list(self.workers.values())
        return render(totals, gauges, self._worker_views(workers), self._master_view(workers))

    def _worker_views(self, workers: list[_Worker]) -> list[WorkerView]:
        owners: dict[int, _Worker] = {}
        for worker in workers:
            if worker.slot is None:
                continue
            best = owners.get(worker.slot)
            state = self._state(worker)
            if best is None or (_OWNER_RANK[state], -worker.started) < (
                _OWNER_RANK[self._state(best)],
                -best.started,
            ):
                owners[worker.slot] = worker
        now = time.monotonic()
        views = []
        for slot, worker in sorted(owners.items()):
            snapshot = self.aggregate.live.get(worker.pid, {})
            rss, cpu = process_usage(worker.pid) if os.path.isdir("/proc") else (None, None)
            views.append(
                WorkerView(
                    slot=slot,
                    pid=worker.pid,
                    state=self._state(worker),
                    age=now - worker.started,
                    served=snapshot.get("served", 0),
                    rss=rss if rss is not None else snapshot.get("rss"),
                    cpu=cpu if cpu is not None else snapshot.get("cpu"),
                )
            )
        return views

    def _state(self, worker: _Worker) -> str:
        return "stopping" if worker.pid in self.aborted else worker.state

    def _master_view(self, workers: list[_Worker]) -> MasterView:
        desired = getattr(self.arbiter, "num_workers", None)
        return MasterView(
            desired=desired if isinstance(desired, int) else self.desired_fallback,
            states=dict(Counter(self._state(worker) for worker in workers)),
            restarts=dict(self.restarts),
            signals=dict(self.signals),
            health_buckets=[],  # gunicorn's arbiter has no health-check round trips
            health_sum=0.0,
        )

    def close_in_child(self) -> None:
        """In a process the master forked: close the descriptors only (the thread does not exist here)."""
        socks: list[Any] = [self.wake_r, self.wake_w, self.selector]
        if self.endpoint is not None:
            socks.extend(client.sock for client in self.endpoint.clients)
            socks.append(self.endpoint.sock)
        socks.extend(self.master_ends)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()
