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
computing, and the pool doubles (bounded by the queue and the ceiling); at or above it the app is
CPU-bound (the GIL lets Python use about one core) and the pool stays.

CPU time received understates what a CPU-bound app wants when the host is short of CPU (other
processes, a cgroup quota): its threads then wait in the kernel's run queue. On Linux the pool adds
that wait (`run_delay` in /proc/self/task/<tid>/schedstat) for its threads while it
has at most `RUN_DELAY_THREADS` threads (one ~5 µs read each per check); a pool that large has
already been shown to be waiting on I/O.

Threads start on first use (never in a pre-fork master) up to `base` (the usable CPUs) without any
measurement, exit after `idle_timeout` seconds without work down to `base`, and all stop at
lifespan shutdown. The queue of waiting requests is bounded: `submit` returns False when it is full
(the caller answers 503). The growth check runs on the caller's event loop (`call_later`), so it
needs no thread of its own and costs nothing while no request waits.
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

__all__ = ["GROW_BELOW", "SAMPLE_INTERVAL", "ThreadPool", "pool_stats"]

logger = logging.getLogger("palfrey.error")

GROW_BELOW = 0.6  # process CPU use (cores) under which waiting threads are "waiting, not computing"
SAMPLE_INTERVAL = 0.02  # seconds between growth checks while requests are queued
RUN_DELAY_THREADS = 32  # up to this many threads, run-queue waits count as wanted CPU (Linux)

# This process's pools, for metrics snapshots; weak, so a middleware dropped without a lifespan
# shutdown (tests, embedders) is not kept alive by the registry.
_POOLS: weakref.WeakSet[ThreadPool] = weakref.WeakSet()


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
        self.grown = 0  # threads started by the adaptive growth check
        self.rejected = 0  # submits refused because the queue was full
        self._serial = 0
        self._closed = False
        self._check: asyncio.TimerHandle | None = None
        self._sample: tuple[float, float] = (0.0, 0.0)  # (wall, CPU wanted) at the last check
        self._tids: set[int] = set()  # kernel thread ids of the pool's threads (not the loop's)
        _POOLS.add(self)

    @property
    def multithread(self) -> bool:
        return self.size > 1

    def submit(self, job: Callable[[], None]) -> bool:
        """Run `job` on a free thread, or queue it until one frees up. False: the queue is full."""
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
                if self.adaptive and self._check is None and self.threads < self.size:
                    self._schedule()
        self._jobs.put(job)
        return True

    def _start(self) -> None:
        """One more thread (the lock is held)."""
        self.threads += 1
        self._serial += 1
        threading.Thread(target=self._work, name=f"{self.name}-{self._serial}", daemon=True).start()

    def _schedule(self, sample: tuple[float, float] | None = None) -> None:
        """Measure from now (or from `sample`, just taken) and look again in `SAMPLE_INTERVAL` (the
        lock is held; on the loop)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not called from a loop (a unit test's thread): no growth
        if sample is None:
            sample = (time.monotonic(), _wanted(list(self._tids)))
        self._sample = sample
        self._check = loop.call_later(SAMPLE_INTERVAL, self._grow)

    def _grow(self) -> None:
        """While requests wait: double the threads (within the queue and the ceiling) if the process
        wanted under `GROW_BELOW` of a core since the last look; look again while any still wait."""
        with self._lock:
            tids = list(self._tids)
        wanted = _wanted(tids)
        wall = time.monotonic()
        last_wall, last_wanted = self._sample
        busy = (wanted - last_wanted) / max(wall - last_wall, 1e-6)
        with self._lock:
            self._check = None
            if self._closed or not self.queued or self.threads >= self.size:
                return
            grow = busy < GROW_BELOW
            if grow:
                add = min(self.queued, max(self.threads, 1), self.size - self.threads)
                for _ in range(add):
                    self._start()  # each new thread takes one of the queued jobs
                self.queued -= add
                self.grown += add
            if self.queued and self.threads < self.size:
                # Unchanged threads: this look's numbers start the next window (no second read).
                self._schedule(None if grow else (wall, wanted))

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
                    if self.idle and self.threads > self.base and not self._closed:
                        self.idle -= 1
                        self.threads -= 1
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


def _wanted(tids: list[int]) -> float:
    """Seconds of CPU the process has used outside the calling thread (the event loop's: the growth
    check runs on it), plus (few threads, Linux) the pool threads' run-queue waits."""
    wanted = time.process_time() - time.thread_time()
    if len(tids) <= RUN_DELAY_THREADS:
        wanted += _run_delay(tids)
    return wanted


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
