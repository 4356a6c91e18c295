"""The interpreter's GIL switch interval, scaled with the threads of the adaptive WSGI pools.

Why: a thread that wants the GIL waits on it for at most `sys.getswitchinterval()` (5 ms by default)
before it asks the holder to drop it, and it wakes up to look every interval while it waits. With a
few threads that is cheap. With 1,000 threads whose 1 s gateway calls end together (the seed table's
page: 2,000 clients on 2 workers), hundreds wait for the GIL at once and each wakes every 5 ms:
~100,000 wake-ups and forced switches a second, which took the worker's CPU per request from ~0.55 to
1.7 ms and its event loop's lag to over a second, and the worker stayed there (it served 820 req/s
instead of 1,750, with ~1,950 of wrk's requests timing out) in 1 run of 10 and came close in 2 more.
Waiting threads that look every 50 ms do a tenth of that; in 10 runs each, interleaved, the collapse
did not happen with it (1,733-1,770 req/s, 7.5 context switches per request against 8-50).

The cost is that a thread computing in Python may keep the GIL up to the longer interval while
another wants it, the event loop included. That only applies while the pool is large, which it only
is when the growth check measured its threads waiting rather than computing, and it is undone as the
pool shrinks: the interval is the one found at start times the pool's threads over
`SCALE_FROM` (at or below it, unchanged), at most `LONGEST`. A value set by anyone else (the app,
`sys.setswitchinterval` in a config file) since palfrey last set it is left alone from then on.
"""

from __future__ import annotations

import sys
import threading

__all__ = ["LONGEST", "SCALE_FROM", "SwitchInterval"]

SCALE_FROM = 64  # threads up to which the interval stays as found
LONGEST = 0.05  # seconds: never longer than this


class SwitchInterval:
    """Sets the interval from the total of the adaptive pools' threads (one per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: float | None = None  # the interval before palfrey first changed it
        self._set: float | None = None  # what palfrey set last
        self._given_up = False

    def follow(self, threads: int) -> None:
        """Adapt to `threads` adaptive pool threads in this process (cheap when nothing changes)."""
        with self._lock:
            if self._given_up:
                return
            current = sys.getswitchinterval()
            if self._set is not None and current != self._set:
                self._given_up = True  # somebody else set it: theirs stands
                return
            if self._found is None:
                if threads <= SCALE_FROM:
                    return
                self._found = current
            wanted = self._found * max(threads, SCALE_FROM) / SCALE_FROM
            wanted = max(self._found, min(wanted, LONGEST))
            if wanted != current:
                sys.setswitchinterval(wanted)
                self._set = sys.getswitchinterval()  # as the interpreter stores it (µs)


SWITCH_INTERVAL = SwitchInterval()
