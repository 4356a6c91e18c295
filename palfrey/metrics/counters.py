"""The recorder one server process updates on its hot path: plain ints, lists and dicts.

A server process runs its protocols on one thread (the event loop), so recording needs no lock and
makes no syscall: a request costs one method call that bumps a per-method list slot, a histogram
bucket found by `bisect` on prepared bounds, and two integer adds. Gauges (requests in flight, open
connections) are not recorded at all: they are read from the server state when a snapshot is taken.
Rare events (protocol errors, app exceptions, 503s from the concurrency limit) are plain increments.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from time import perf_counter
from typing import Any, Protocol


class Answered(Protocol):
    """Anything that carries a finished request's values (a RequestCycle does)."""

    scope: dict[str, Any]
    status: int
    sent: int
    start_time: float


# Request duration buckets in seconds (Prometheus's defaults): fixed, so every worker's histogram
# merges with every other's by adding lists.
DURATION_BOUNDS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
# Health-check round trips in seconds: a pong is normally well under a millisecond.
HEALTH_BOUNDS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
STATUS_CLASSES = 10  # index = status // 100 (the cycle only lets 100..999 through)
MAX_REASONS = 64  # distinct protocol-error reasons kept; more are counted as "other"
_PLAIN_REASON = re.compile(r"[A-Za-z][A-Za-z -]{0,47}")


def reason_label(reason: str) -> str | None:
    """A label value for a protocol-error reason, or None when the text is not a fixed phrase.

    Parser messages may quote the client's bytes (h11 does); only short letters-and-spaces phrases
    (palfrey's own reasons, llhttp's) become labels, so a client cannot mint new series.
    """
    if _PLAIN_REASON.fullmatch(reason) is None:
        return None
    return reason.strip().lower().replace(" ", "_").replace("-", "_")


class Recorder:
    """Counters of one server process since it started (cumulative; never reset)."""

    __slots__ = (
        "accept_exhausted",
        "app_exceptions",
        "bytes_in",
        "bytes_out",
        "connections",
        "duration_buckets",
        "duration_sum",
        "limited",
        "protocol_errors",
        "request_timeouts",
        "requests",
        "ws_connections",
        "ws_open",
    )

    def __init__(self) -> None:
        # method -> [count per status class]; methods are bounded by the parsers (unknown ones get 501).
        self.requests: dict[str, list[int]] = {}
        self.duration_buckets = [0] * (len(DURATION_BOUNDS) + 1)  # the last one is +Inf
        self.duration_sum = 0.0
        self.bytes_in = 0  # bytes read from HTTP connections (heads and bodies)
        self.bytes_out = 0  # response body bytes
        self.connections = 0  # HTTP connections accepted
        self.ws_connections = 0  # WebSocket connections opened
        self.ws_open = 0  # WebSocket connections open now
        self.app_exceptions = 0
        self.limited = 0  # 503 answers from --limit-concurrency
        self.request_timeouts = 0  # 504 answers from --timeout-request (the app task cancelled)
        self.accept_exhausted = 0  # episodes of accepting paused for lack of descriptors (server/accept.py)
        self.protocol_errors: dict[tuple[int, str], int] = {}

    def record(
        self,
        method: str,
        status: int,
        sent: int,
        start_time: float,
        _bounds: tuple[float, ...] = DURATION_BOUNDS,
        _clock: Callable[[], float] = perf_counter,
        _bisect: Callable[[tuple[float, ...], float], int] = bisect_left,
    ) -> None:
        """One request answered: its method, status, response body bytes and `perf_counter` start.

        Called by the request cycle when its response is complete. Plain values, so the recorder
        knows nothing of the HTTP code (and an HTTP/2 stream records the same way). The defaults
        bind module globals as locals: about a quarter of this call's cost (~80 ns).
        """
        counts = self.requests.get(method)
        if counts is None:
            counts = self.requests[method] = [0] * STATUS_CLASSES
        counts[status // 100] += 1
        elapsed = _clock() - start_time
        self.duration_buckets[_bisect(_bounds, elapsed)] += 1
        self.duration_sum += elapsed
        self.bytes_out += sent

    def response(self, answered: Answered) -> None:
        """`record` from an object carrying the values (kept for callers holding a cycle-like object)."""
        self.record(answered.scope["method"], answered.status, answered.sent, answered.start_time)

    def protocol_error(self, status: int, reason: str) -> None:
        """A request rejected before the app saw it (400, 408, 413, 414, 431, 501), by reason."""
        label = reason_label(reason)
        errors = self.protocol_errors
        if label is None or ((status, label) not in errors and len(errors) >= MAX_REASONS):
            label = "other"
        key = (status, label)
        errors[key] = errors.get(key, 0) + 1

    def accept_exhausted_episode(self) -> None:
        """Accepting paused because the process ran out of descriptors (once per episode)."""
        self.accept_exhausted += 1

    def ws_opened(self) -> None:
        """A WebSocket handshake completed (the WebSocket protocol calls this)."""
        self.ws_connections += 1
        self.ws_open += 1

    def ws_closed(self) -> None:
        """A WebSocket connection that `ws_opened` counted has closed."""
        self.ws_open -= 1
