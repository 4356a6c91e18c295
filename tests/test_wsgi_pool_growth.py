"""The adaptive pool's growth step and the GIL switch interval it scales, as pure rules."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from palfrey.interfaces.switch_interval import LONGEST, SCALE_FROM, SwitchInterval
from palfrey.interfaces.wsgi_pool import GROW_BELOW, MAX_STEP, ThreadPool, growth


def test_no_growth_when_the_threads_compute() -> None:
    assert growth(2, GROW_BELOW, queued=500, ceiling=1000) == 0
    assert growth(2, 1.0, queued=500, ceiling=1000) == 0


def test_waiting_threads_grow_by_the_cpu_they_leave_free() -> None:
    # 4 threads using 0.04 of a core: 60 such threads fit under GROW_BELOW.
    assert growth(4, 0.04, queued=500, ceiling=1000) == 56
    # 4 using 0.01: 240 would fit, but a step is at most x16.
    assert growth(4, 0.01, queued=500, ceiling=1000) == 4 * MAX_STEP - 4
    # 4 threads using 0.3 of a core: 8 fit, so 4 more.
    assert growth(4, 0.3, queued=500, ceiling=1000) == 4
    # Close to the limit still adds one (the measurement says there is room).
    assert growth(4, 0.55, queued=500, ceiling=1000) == 1
    # Nothing measured at all: the largest step.
    assert growth(2, 0.0, queued=500, ceiling=1000) == 2 * MAX_STEP - 2


def test_growth_is_bounded_by_the_queue_and_the_ceiling() -> None:
    assert growth(4, 0.0, queued=3, ceiling=1000) == 3
    assert growth(990, 0.0, queued=500, ceiling=1000) == 10
    assert growth(1000, 0.0, queued=500, ceiling=1000) == 0
    assert growth(4, 0.0, queued=0, ceiling=1000) == 0


@pytest.fixture
def interval() -> Iterator[float]:
    found = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        yield 0.005
    finally:
        sys.setswitchinterval(found)


def test_switch_interval_scales_with_threads_and_comes_back(interval: float) -> None:
    switch = SwitchInterval()
    switch.follow(SCALE_FROM)
    assert sys.getswitchinterval() == pytest.approx(interval)
    switch.follow(2 * SCALE_FROM)
    assert sys.getswitchinterval() == pytest.approx(2 * interval)
    switch.follow(1000)
    assert sys.getswitchinterval() == pytest.approx(LONGEST)
    switch.follow(2)
    assert sys.getswitchinterval() == pytest.approx(interval)


def test_switch_interval_set_by_someone_else_is_left_alone(interval: float) -> None:
    switch = SwitchInterval()
    switch.follow(4 * SCALE_FROM)
    sys.setswitchinterval(0.001)  # the app decides
    switch.follow(1000)
    switch.follow(2)
    assert sys.getswitchinterval() == pytest.approx(0.001)


def test_switch_interval_longer_than_the_cap_is_never_shortened() -> None:
    found = sys.getswitchinterval()
    sys.setswitchinterval(0.1)
    try:
        switch = SwitchInterval()
        switch.follow(1000)
        assert sys.getswitchinterval() == pytest.approx(0.1)
    finally:
        sys.setswitchinterval(found)


@pytest.mark.parametrize("refuse_from", [3, 1])
def test_a_thread_the_os_refuses_leaves_the_pool_at_what_it_has(
    monkeypatch: pytest.MonkeyPatch, refuse_from: int
) -> None:
    """`can't start new thread` (a container's pids limit) in the middle of a growth step (3 threads
    started), or already for the spawner that would start the step's threads (1, the base thread):
    the pool stays at the threads it has, stops growing, and every waiting request still runs."""
    real_start = threading.Thread.start
    started: list[str] = []

    def start(thread: threading.Thread) -> None:
        if thread.name.startswith(("refusing-pool-", "palfrey-spawner-")):
            if len(started) >= refuse_from:
                raise RuntimeError("can't start new thread")
            if thread.name.startswith("refusing-pool-"):
                started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    release = threading.Event()
    done = threading.Semaphore(0)

    def job() -> None:
        release.wait(10)
        done.release()

    async def scenario() -> ThreadPool:
        pool = ThreadPool(0, name="refusing-pool", base=1, ceiling=100)
        for _ in range(20):
            assert pool.submit(job)
        deadline = time.monotonic() + 10
        while (pool.size == 100 or pool._spawning) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # the growth checks run on this loop
        return pool

    pool = asyncio.run(scenario())
    try:
        assert (pool.threads, pool.size, len(started)) == (refuse_from,) * 3
        assert pool.grown == refuse_from - 1  # the threads growth started (the base one is not)
        release.set()
        for _ in range(20):
            assert done.acquire(timeout=10)
        deadline = time.monotonic() + 10
        while (pool.idle, pool.queued) != (refuse_from, 0) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (pool.idle, pool.queued) == (refuse_from, 0)
        alive = [t for t in threading.enumerate() if t.name.startswith("refusing-pool-")]
        assert len(alive) == refuse_from
    finally:
        release.set()
        pool.shutdown()
