"""The master's rollout policy, crash backoff and exit judgement, without forking (milliseconds).

Each test builds `WorkerHandle`s in the states the master would have and checks `plan()`'s answer,
so every transition of replacement-first recycling, rolling restarts, crash refills and TTOU is
pinned down here; the end-to-end tests (test_master*.py) check that the master carries them out.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator

import pytest

from palfrey.supervisor.channel import Channel
from palfrey.supervisor.deaths import Deaths, crash_label, judge
from palfrey.supervisor.handle import BOOTING, DRAINING, READY, STOPPING, WorkerHandle
from palfrey.supervisor.policy import INF, Backoff, plan, readiness

_pids = iter(range(100, 10_000))
_socks: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_channels() -> Iterator[None]:
    yield
    while _socks:
        _socks.pop().close()


def worker(state: str = READY, generation: int = 0, **fields: object) -> WorkerHandle:
    a, b = socket.socketpair()
    _socks.extend((a, b))
    handle = WorkerHandle(
        pid=next(_pids),
        channel=Channel(a),
        generation=generation,
        started=0.0,
        boot_deadline=INF,
        state=state,
    )
    for name, value in fields.items():
        setattr(handle, name, value)
    return handle


def replace(old: WorkerHandle, state: str = BOOTING) -> WorkerHandle:
    new = worker(state, generation=old.generation)
    new.replaces, old.replaced_by = old, new
    return new


def test_start_spawns_every_missing_worker_at_once() -> None:
    assert plan([], 3, 0, now=0).spawn == [None, None, None]


def test_steady_state_does_nothing() -> None:
    actions = plan([worker(), worker()], 2, 0, now=0)
    assert (actions.spawn, actions.drain, actions.kill) == ([], [], [])


def test_crash_refill_waits_for_the_backoff() -> None:
    workers = [worker()]
    held = plan(workers, 2, 0, now=1.0, not_before=1.5)
    assert held.spawn == [] and held.wake_at == 1.5
    assert plan(workers, 2, 0, now=1.5, not_before=1.5).spawn == [None]


def test_worker_at_its_limit_that_stopped_accepting_is_replaced_at_once() -> None:
    recycled = worker(DRAINING, recycle_reason="served 100 requests")
    other = worker()
    actions = plan([recycled, other], 2, 0, now=0, not_before=10.0)  # not held back by the crash backoff
    assert actions.spawn == [recycled]


def test_several_workers_at_their_limit_are_replaced_together() -> None:
    slow = worker(DRAINING, recycle_reason="limit")
    slow.replaced_by = worker(READY)  # its replacement is serving; its own drain is slow
    a = worker(DRAINING, recycle_reason="limit")
    b = worker(DRAINING, recycle_reason="limit")
    actions = plan([slow, slow.replaced_by, a, b], 3, 0, now=0)
    assert actions.spawn == [a, b]


def test_rollout_replaces_one_outdated_worker_at_a_time_replacement_first() -> None:
    a, b = worker(generation=0), worker(generation=0)
    first = plan([a, b], 2, 1, now=0)
    assert first.spawn == [a] and first.drain == []
    new_a = replace(a)
    assert plan([a, b, new_a], 2, 1, now=0).spawn == [], "one booting replacement at a time"
    new_a.state = READY
    handover = plan([a, b, new_a], 2, 1, now=0)
    assert [w for w, _ in handover.drain] == [a]
    assert "took over (rolling restart)" in handover.drain[0][1]


def test_a_slow_drain_does_not_hold_the_rollout_back() -> None:
    a, b = worker(generation=0), worker(generation=0)
    new_a = replace(a, READY)
    a.state = DRAINING  # still finishing a long request
    assert plan([a, b, new_a], 2, 1, now=0).spawn == [b]


def test_surplus_after_ttou_drains_ready_workers_oldest_first() -> None:
    a, b, c = worker(), worker(), worker()
    actions = plan([a, b, c], 1, 0, now=0)
    assert [w for w, _ in actions.drain] == [a, b] and actions.spawn == []


def test_surplus_booting_worker_is_killed() -> None:
    a, booting = worker(), worker(BOOTING)
    actions = plan([a, booting], 1, 0, now=0)
    assert [w for w, _ in actions.kill] == [booting]


def test_stopping_and_draining_workers_do_not_count() -> None:
    actions = plan([worker(STOPPING), worker(DRAINING)], 2, 0, now=0)
    assert actions.spawn == [None, None]


def test_readiness_and_rollout_completion() -> None:
    a, b = worker(generation=1), worker(BOOTING, generation=1)
    assert readiness([a, b], 2, 1)[:2] == (False, False)
    b.state = READY
    assert readiness([a, b], 2, 1) == (True, True, f"{a.pid}, {b.pid}")
    assert readiness([a, b, worker(DRAINING)], 2, 1)[:2] == (True, False), "a drain is still running"
    assert readiness([a, b], 2, 2)[:2] == (True, False), "outdated workers left"


def test_backoff_grows_for_young_deaths_and_resets_after_a_stable_worker() -> None:
    backoff = Backoff(first=0.1, cap=1.0, stable=5.0)
    assert backoff.died(ready_for=100.0, now=0.0) == 0.0, "a worker that served a while: at once"
    delays = [backoff.died(ready_for=0.2, now=0.1 * i) for i in range(1, 7)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff.not_before == pytest.approx(0.6 + 1.0)
    assert backoff.died(ready_for=6.0, now=10.0) == 0.0, "reset once a worker stayed up"
    assert backoff.died(ready_for=0.1, now=10.5) == 0.1
    assert backoff.died(ready_for=0.1, now=30.0) == 0.0, "reset when nothing died for a while"


def test_judge_tells_expected_boot_failures_outside_stops_and_crashes() -> None:
    assert judge(worker(), 0, None, expected=True) == "expected"
    assert judge(worker(exit_expected=True), None, signal.SIGKILL, expected=False) == "expected"
    assert judge(worker(BOOTING), 3, None, expected=False) == "boot-failed"
    assert judge(worker(), 0, None, expected=False) == "outside", "exit 0 unasked is never a crash"
    assert judge(worker(), None, signal.SIGTERM, expected=False) == "outside"
    assert judge(worker(BOOTING), None, signal.SIGINT, expected=False) == "outside"
    assert judge(worker(signalled="SIGTERM"), 1, None, expected=False) == "outside"
    assert judge(worker(), None, signal.SIGKILL, expected=False) == "crash"
    assert judge(worker(), 1, None, expected=False) == "crash"
    assert [crash_label(s) for s in (signal.SIGKILL, signal.SIGSEGV, None)] == [
        "crash-sigkill",
        "crash-signal",
        "crash-exit",
    ]


def test_boot_deaths_in_a_loop_stop_the_master_but_runtime_deaths_never_do() -> None:
    deaths = Deaths()
    ready = worker(ready_at=0.0)
    assert all(
        deaths.crashed(ready, signal.SIGKILL, "signal SIGKILL", float(i), 2) is None for i in range(50)
    )
    booting = worker(BOOTING)
    results = [deaths.crashed(booting, signal.SIGKILL, "signal SIGKILL", 100.0 + i, 2) for i in range(5)]
    assert results[:4] == [None] * 4 and results[4] is not None and "while booting" in results[4]


def test_one_request_limit_draw_per_process() -> None:
    """The jitter is drawn in one place (server.draw_request_limit), for a plain server and a worker."""
    from palfrey.config import Config
    from palfrey.server.server import Server, draw_request_limit

    assert draw_request_limit(Config("m:app")) is None
    config = Config("m:app", limit_max_requests=100, limit_max_requests_jitter=20)
    draws = {draw_request_limit(config) for _ in range(200)}
    assert draws <= set(range(100, 121)) and len(draws) > 5
    assert Server(config).max_requests in range(100, 121)
