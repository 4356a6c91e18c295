"""The adaptive pool's growth step and the GIL switch interval it scales, as pure rules."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from palfrey.interfaces.switch_interval import LONGEST, SCALE_FROM, SwitchInterval
from palfrey.interfaces.wsgi_pool import GROW_BELOW, MAX_STEP, growth


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
