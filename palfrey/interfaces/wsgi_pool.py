"""The threads that run a WSGI app: a fixed pool (`--threads N`) or an adaptive one (`--threads auto`).

Why adaptive: a WSGI view that waits on a database or an upstream HTTP service holds its thread for
the whole wait while using no CPU, so a fixed pool of 16 caps a worker at 16 waiting views (16 req/s
for a 1 s gateway page). A thread that waits releases the GIL and costs tens of KiB of memory, so the
answer to waiting apps is more threads, but for an app that computes, more threads only add GIL
contention and latency. The pool tells the two apart by measuring: while requests queue with every
thread busy, it samples the process's CPU time against wall time (`time.process_time()`) over a
short window, less the event loop thread's own (`time.thread_time()`, read on the loop, where the
check runs): the loop accepting and parsing a burst of 2,000 connections is not the app computing,
and counting it held the pool at 2-3 threads for the first ~0.6 s of such a burst while 1,000
requests of a 1 s page waited. Under `GROW_BELOW` of one core the threads are waiting, not
computing, and the pool grows; at or above it the app is CPU-bound (the GIL lets Python use about
one core) and the pool stays.

How much it grows in one step comes from the same measurement: the CPU its busy threads used, per
thread, says how many such threads fit under `GROW_BELOW` (4 threads using 0.04 of a core fit 60;
4 using 0.5 fit 4, so one more), never more than `MAX_STEP` times the threads it has (one window
is a small sample) and never more than the requests waiting or the ceiling. Doubling instead took
nine checks to go from 2 to 1,000 threads while 1,000 requests of a 1 s page waited (~0.35 s; the
first 2,000 requests of wrk's 2,000-connection run came back 0.2-0.45 s late); sized steps take
three. The first look at a burst is taken by `submit` itself once a window has passed, as the
timer fires late while the loop is busy accepting the burst (70-80 ms instead of 20 were measured).

Starting a thread costs ~130 µs on an idle process (`Thread.start` waits for the new thread to run)
and ~0.35 ms in a burst: 488 threads kept the loop from accepting or answering anything for 0.1 s.
So a growth step only counts its new threads and one spawner thread starts them; each takes a
waiting request as it starts. If the OS refuses a thread (a container's pids limit), the pool stays
at the threads it has.

CPU time received understates what a CPU-bound app wants when the host is short of CPU (other
processes, a cgroup quota): its threads then wait in the kernel's run queue. On Linux the pool adds
that wait (`run_delay` in /proc/self/task/<tid>/schedstat) for its threads while it
has at most `RUN_DELAY_THREADS` threads (one ~5 µs read each per check); a pool that large has
already been shown to be waiting on I/O.

Threads start on first use (never in a pre-fork master) up to `base` (the usable CPUs) without any
measurement, exit after `idle_timeout` seconds without work down to `base`, and all stop at
lifespan shutdown. The queue of waiting requests is bounded: `submit` returns False when it is full
(the caller answers 503). The growth check runs on the caller's event loop (`call_later`), so it
costs nothing while no request waits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable
from typing import NamedTuple

from palfrey.interfaces.switch_interval import SWITCH_INTERVAL

__all__ = ["GROW_BELOW", "MAX_STEP", "SAMPLE_INTERVAL", "ThreadPool", "growth", "pool_stats"]

logger = logging.getLogger("palfrey.error")

GROW_BELOW = 0.6  # process CPU use (cores) under which waiting threads are "waiting, not computing"
SAMPLE_INTERVAL = 0.02  # seconds between growth checks while requests are queued
MAX_STEP = 16  # a growth step at most multiplies the threads by this
RUN_DELAY_THREADS = 32  # up to this many threads, run-queue waits count as wanted CPU (Linux)

# This process's pools, for metrics snapshots; weak, so a middleware dropped without a lifespan
# shutdown (tests, embedders) is not kept alive by the registry.
_POOLS: weakref.WeakSet[ThreadPool] = weakref.WeakSet()


def _follow_threads() -> None:
    """Let the GIL switch interval follow the adaptive pools' threads (see `switch_interval`)."""
    SWITCH_INTERVAL.follow(sum(pool.threads for pool in list(_POOLS) if pool.adaptive))


def pool_stats() -> dict[str, int] | None:
    """The gauges and counters of this process's WSGI pools (None when it serves no WSGI app)."""
    if not _POOLS:
        return None
    stats = dict.fromkeys(("wsgi_threads", "wsgi_busy", "wsgi_queued", "wsgi_grown", "wsgi_rejected"), 0)
    for pool in list(_POOLS):
        with pool._lock:
            stats["wsgi_threads"] += pool.threads
            stats["wsgi_busy"] += pool.threads - pool.idle
            stats["wsgi_queued"] += pool.queued
            stats["wsgi_grown"] += pool.grown
            stats["wsgi_rejected"] += pool.rejected
    return stats


class ThreadPool:
    """Daemon threads that run jobs; fixed at `size`, or adaptive between `base` and `ceiling`.

    Daemon threads matter: an app stuck in a call must not keep a stopping worker alive; graceful
    shutdown has already waited for it as long as it was allowed to.
    """

    def __init__(
        self,
        size: int,
        name: str = "palfrey-wsgi",
        *,
        ceiling: int | None = None,
        idle_timeout: float = 10.0,
        queue_limit: int | None = None,
        base: int | None = None,
    ) -> None:
        """`size` > 0: a fixed pool of `size` threads. `size` 0: adaptive, from `base` threads
        (default: the usable CPUs) up to `ceiling`. `queue_limit`: requests that may wait for a
        thread (None: unbounded)."""
        self.adaptive = size <= 0
        if self.adaptive:
            if base is None:
                from palfrey.supervisor.process import usable_cpus

                base = usable_cpus()
            self.base = max(1, base)
            self.size = max(self.base, ceiling or 1000)
        else:
            self.base = self.size = size
        self.name = name
        self.idle_timeout = idle_timeout
        self.queue_limit = queue_limit
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.threads = 0
        self.idle = 0  # threads waiting for a job and not yet claimed by a submit
        self.queued = 0  # jobs submitted with no idle thread to take them, not yet started
        self.grown = 0  # threads the adaptive growth check started (a counter: only goes up)
        self.rejected = 0  # submits refused because the queue was full
        self._serial = 0
        self._closed = False
        self._check: asyncio.TimerHandle | None = None
        self._sample = _Sample(0.0, 0.0, None)  # the last growth check's measurement
        self._unstarted = 0  # threads counted by growth steps that the spawner has yet to start
        self._spawning = False  # a spawner thread is starting them
        self._overhead = 0.0  # CPU seconds the spawner spent starting threads, not in the app
        self._tids: set[int] = set()  # kernel thread ids of the pool's threads (not the loop's)
        _POOLS.add(self)

    @property
    def multithread(self) -> bool:
        return self.size > 1

    def submit(self, job: Callable[[], None]) -> bool:
        """Run `job` on a free thread, or queue it until one frees up. False: the queue is full."""
        look = False
        with self._lock:
            if self._closed:
                raise RuntimeError("the WSGI thread pool is shut down")
            if self.idle:
                self.idle -= 1
            elif self.threads < self.base:
                self._start()
            else:
                limit = self.queue_limit
                # Requests that threads yet to grow will take are not "waiting beyond capacity": a
                # burst faster than the growth check is not refused.
                if limit is not None and self.queued >= limit + self.size - self.threads:
                    self.rejected += 1
                    return False
                self.queued += 1
                if self.adaptive and self.threads < self.size:
                    if self._check is None:
                        self._schedule()
                    else:  # a busy loop runs the timer late: look now if a window has passed
                        look = time.monotonic() - self._sample.wall >= SAMPLE_INTERVAL
        self._jobs.put(job)
        if look:
            self._grow()
        return True

    def _start(self) -> None:
        """One more thread (the lock is held). RuntimeError when the OS refuses one."""
        self.threads += 1
        self._serial += 1
        try:
            threading.Thread(target=self._work, name=f"{self.name}-{self._serial}", daemon=True).start()
        except RuntimeError:
            self.threads -= 1
            raise

    def _schedule(self, sample: _Sample | None = None) -> None:
        """Measure from now (or from `sample`, just taken) and look again in `SAMPLE_INTERVAL` (the
        lock is held; on the loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not called from a loop (a unit test's thread): no growth
        self._sample = sample or _Sample.take(list(self._tids), self._overhead)
        self._check = loop.call_later(SAMPLE_INTERVAL, self._grow)

    def _grow(self) -> None:
        """While requests wait: add the threads that fit (`growth`) if the process wanted under
        `GROW_BELOW` of a core since the last look; look again while any still wait."""
        with self._lock:
            tids = list(self._tids)
            overhead = self._overhead
        now = _Sample.take(tids, overhead)
        busy = now.busy_since(self._sample)
        spawn, spawner = False, ""
        with self._lock:
            check, self._check = self._check, None
            if check is not None:
                check.cancel()  # a look from `submit`, before the timer
            if self._closed or not self.queued or self.threads >= self.size:
                return
            add = growth(self.threads, busy, self.queued, self.size)
            if add:
                self.threads += add
                self.queued -= add  # each new thread takes one of the waiting jobs
                self._unstarted += add
                spawn = not self._spawning
                self._spawning = True
                self._serial += 1
                spawner = f"palfrey-spawner-{self._serial}"  # not a pool thread: no "palfrey-wsgi"
            if self.queued and self.threads < self.size:
                # Unchanged threads: this look's numbers start the next window (no second read).
                self._schedule(None if add else now)
        if spawn:
            try:
                threading.Thread(target=self._spawn, name=spawner, daemon=True).start()
            except RuntimeError as exc:  # not even the spawner: the OS refuses threads
                self._refused(exc)
                return
        if add:
            _follow_threads()

    def _spawn(self) -> None:
        """Start the threads growth steps counted, off the event loop; the CPU this takes is not
        the app's, so the growth check leaves it out (it held growth back at 0.6-0.9 of a core)."""
        while True:
            began = time.thread_time()
            with self._lock:
                if not self._unstarted or self._closed:
                    self._unstarted = 0
                    self._spawning = False
                    self._overhead += time.thread_time() - began
                    return
                self._unstarted -= 1
                self._serial += 1
                name = f"{self.name}-{self._serial}"
            try:
                threading.Thread(target=self._work, name=name, daemon=True).start()
            except RuntimeError as exc:  # "can't start new thread": a pids limit (containers), memory
                with self._lock:
                    self._unstarted += 1  # this one did not start either
                self._refused(exc)
                return
            with self._lock:
                self.grown += 1
                self._overhead += time.thread_time() - began

    def _refused(self, exc: RuntimeError) -> None:
        """The OS would not start a thread: the pool stays at the threads it has (a pids limit does
        not go away), and the requests reserved for the threads it could not start wait for those."""
        with self._lock:
            missing = self._unstarted
            self._unstarted = 0
            self._spawning = False
            self.threads -= missing
            self.queued += missing
            self.size = max(self.threads, self.base)
            threads = self.threads
        logger.warning(
            "The WSGI thread pool could not start another thread (%s): it stays at %d threads", exc, threads
        )
        _follow_threads()

    def _work(self) -> None:
        jobs = self._jobs
        timeout = self.idle_timeout if self.adaptive else None
        tid = threading.get_native_id()
        if self.adaptive:
            with self._lock:
                self._tids.add(tid)
        try:
            self._loop(jobs, timeout)
        finally:
            with self._lock:
                self._tids.discard(tid)

    def _loop(self, jobs: queue.SimpleQueue[Callable[[], None] | None], timeout: float | None) -> None:
        while True:
            try:
                job = jobs.get(timeout=timeout)
            except queue.Empty:
                with self._lock:
                    # Exit only when no submit has claimed this thread (idle still counts it).
                    leave = bool(self.idle) and self.threads > self.base and not self._closed
                    if leave:
                        self.idle -= 1
                        self.threads -= 1
                if leave:
                    if self.adaptive:
                        _follow_threads()
                    return
                continue
            if job is None:
                return
            try:
                job()
            except BaseException:  # jobs report their own errors; this is a last resort
                logger.exception("Unexpected error in a WSGI worker thread")
            del job
            with self._lock:
                if self.queued:
                    self.queued -= 1  # a waiting job is this thread's next one
                else:
                    self.idle += 1

    def shutdown(self) -> None:
        """Stop the threads once they finish their current request."""
        with self._lock:
            self._closed = True
            count, self.threads = self.threads, 0
            self.idle = 0
            check, self._check = self._check, None
        if check is not None:
            check.cancel()
        for _ in range(count):
            self._jobs.put(None)
        _POOLS.discard(self)
        _follow_threads()


class _Sample(NamedTuple):
    """What the growth check measures: wall time, CPU used outside the calling thread (the event
    loop's: the check runs on it), and (few threads, Linux) the pool threads' run-queue waits."""

    wall: float
    cpu: float
    run_delay: float | None  # None: not read (too many threads, or not Linux)

    @classmethod
    def take(cls, tids: list[int], overhead: float) -> _Sample:
        """`overhead`: CPU seconds spent so far starting threads (by the spawner)."""
        run_delay = _run_delay(tids) if len(tids) <= RUN_DELAY_THREADS else None
        return cls(time.monotonic(), time.process_time() - time.thread_time() - overhead, run_delay)

    def busy_since(self, last: _Sample) -> float:
        """Cores of CPU wanted since `last`. Run-queue waits count only when both samples read them:
        crossing `RUN_DELAY_THREADS` would otherwise add or drop the whole sum at once."""
        wanted = self.cpu - last.cpu
        if self.run_delay is not None and last.run_delay is not None:
            wanted += self.run_delay - last.run_delay
        return max(wanted, 0.0) / max(self.wall - last.wall, 1e-6)


def growth(threads: int, busy: float, queued: int, ceiling: int) -> int:
    """Threads to add to `threads` busy ones that together wanted `busy` cores, with `queued` requests
    waiting: none at or above `GROW_BELOW`; below it, as many as the CPU per thread says fit under
    `GROW_BELOW` (at least one, at most `MAX_STEP` times `threads`), within the queue and ceiling."""
    if busy >= GROW_BELOW or threads >= ceiling or queued <= 0:
        return 0
    most = threads * MAX_STEP
    target = most if busy * MAX_STEP <= GROW_BELOW else int(threads * GROW_BELOW / busy)
    return max(1, min(target - threads, queued, ceiling - threads))


def _run_delay(tids: list[int]) -> float:
    """Seconds the threads `tids` spent runnable but waiting for a CPU (0 where not Linux)."""
    total = 0
    for tid in tids:
        try:
            fd = os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY)
        except OSError:
            continue  # not Linux, or the thread has exited
        try:
            total += int(os.read(fd, 128).split()[1])
        except (OSError, ValueError, IndexError):
            pass
        finally:
            os.close(fd)
    return total / 1e9
