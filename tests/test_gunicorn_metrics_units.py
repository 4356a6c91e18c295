"""In-process checks of the gunicorn metrics collector: exit classification, slots, totals at exit.

The collector's thread is not started: its selector callbacks are driven by hand on real
socketpairs, one per fake worker, exactly as the thread would call them.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from palfrey.metrics.counters import DURATION_BOUNDS
from palfrey.metrics.gunicorn_master import Collector, _Worker
from palfrey.metrics.snapshot import encode


@pytest.fixture
def collector() -> Iterator[Collector]:
    result = Collector("127.0.0.1:0", None, None, 3, logging.getLogger("test"))
    yield result
    result.selector.close()
    result.wake_r.close()
    result.wake_w.close()


def fork(collector: Collector, pid: int) -> tuple[_Worker, socket.socket]:
    master_end, worker_end = socket.socketpair()
    collector.adopt(pid, master_end)
    collector._drain_wakeups()
    return collector.workers[pid], worker_end


def say(collector: Collector, worker: _Worker, peer: socket.socket, *lines: str, close: bool = False) -> None:
    peer.sendall("".join(f"{line}\n" for line in lines).encode())
    if close:
        peer.close()
    collector._read(worker)


def snapshot(requests: int) -> str:
    buckets = [requests] + [0] * len(DURATION_BOUNDS)
    return encode({"requests": {"GET": [0, 0, requests] + [0] * 7}, "duration": buckets, "served": requests})


def test_exit_reasons(collector: Collector) -> None:
    recycled, peer = fork(collector, 10)
    say(
        collector,
        recycled,
        peer,
        "ready",
        "draining",
        f"stats 0 {snapshot(5)}",
        "bye max-requests",
        close=True,
    )
    crashed, peer = fork(collector, 11)
    say(collector, crashed, peer, "ready", f"stats 0 {snapshot(2)}", close=True)
    hung, peer = fork(collector, 12)
    say(collector, hung, peer, "ready")
    collector.abort(12)
    say(collector, hung, peer, close=True)
    collector.signal("HUP")
    replaced, peer = fork(collector, 13)  # forked after the HUP: its TERM is not the HUP's
    old, old_peer = fork(collector, 14)
    old.hups = 0  # forked before the HUP
    say(collector, old, old_peer, "ready", "bye term", close=True)
    collector.signal("TTOU")
    say(collector, replaced, peer, "ready", "bye term", close=True)
    assert collector.restarts == {"max-requests": 1, "crash": 1, "timeout": 1, "hup": 1, "stopped": 0}
    totals, _ = collector.aggregate.totals()
    assert totals.request_count == 7  # finished workers' last snapshots stay in the totals
    collector.signal("TERM")
    stopping, peer = fork(collector, 15)
    say(collector, stopping, peer, close=True)
    assert sum(collector.restarts.values()) == 4  # a shutdown is not a restart
    assert collector.signals == {"HUP": 1, "TTOU": 1, "TERM": 1}
    assert collector.workers == {}


def test_ready_workers_take_the_lowest_free_slot(collector: Collector) -> None:
    pairs = [fork(collector, pid) for pid in (1, 2, 3)]
    for worker, peer in pairs:
        say(collector, worker, peer, "ready")
    assert [w.slot for w, _ in pairs] == [0, 1, 2]
    # A HUP: three new workers are forked while the old ones still serve; the old ones drain first.
    new = [fork(collector, pid) for pid in (4, 5, 6)]
    for worker, peer in pairs:
        say(collector, worker, peer, "draining")
    for worker, peer in reversed(new):
        say(collector, worker, peer, "ready")
    assert sorted(w.slot for w, _ in new) == [0, 1, 2]
    views = collector._worker_views(list(collector.workers.values()))
    assert [(v.slot, v.pid, v.state) for v in views] == [(0, 6, "ready"), (1, 5, "ready"), (2, 4, "ready")]
    for _, peer in pairs + new:
        peer.close()


def test_scrape_before_reading_an_exited_worker_keeps_its_last_words(collector: Collector) -> None:
    """The race that made a recycled worker count as a crash (and lose its final counts) under load.

    The worker sent its final snapshot and `bye max-requests`, then exited; a scrape was handled
    before the collector read that channel, and its `stats` request hit the closed peer (EPIPE).
    The failed send must not hide what is still waiting to be read on the same channel.
    """
    recycled, peer = fork(collector, 20)
    say(collector, recycled, peer, "ready", f"stats 0 {snapshot(3)}", "draining")
    peer.sendall(f"stats 0 {snapshot(21)}\nbye max-requests\n".encode())
    peer.close()
    collector._scrape(None)  # type: ignore[arg-type]  # only stored; no endpoint answers it here
    assert collector.pending.scrapes[0].waiting == set()  # the send failed: nothing to wait for
    collector._read(recycled)
    assert collector.restarts["max-requests"] == 1 and collector.restarts["crash"] == 0
    totals, _ = collector.aggregate.totals()
    assert totals.request_count == 21
    assert collector.workers == {}


def test_a_hup_right_after_a_fork_explains_that_workers_exit(collector: Collector) -> None:
    """The HUP count is the one at the fork (main thread), not when the thread got round to the worker."""
    master_end, peer = socket.socketpair()
    collector.adopt(30, master_end)  # forked before the HUP...
    collector.signal("HUP")
    collector._drain_wakeups()  # ...registered by the thread only after it
    worker = collector.workers[30]
    say(collector, worker, peer, "ready", "bye term", close=True)
    assert collector.restarts["hup"] == 1 and collector.restarts["stopped"] == 0


def test_a_child_closes_a_master_end_the_thread_is_still_handing_over(collector: Collector) -> None:
    """Forked while the thread held a channel between the inbox and `workers`: the child closes it too
    (else that worker's EOF, and its restart count, would wait for the child's exit)."""
    master_end, peer = socket.socketpair()
    collector.adopt(40, master_end)
    collector.inbox.get_nowait()  # the thread took it; the fork happens before it is in `workers`
    assert 40 not in collector.workers
    collector.close_in_child()
    assert master_end.fileno() == -1
    peer.close()
