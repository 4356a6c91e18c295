"""`GET /livez` and `GET /readyz` on --health-bind, for load balancers and orchestrators.

The probes ride on the small HTTP listener that serves `/metrics` (`palfrey.metrics.endpoint`):
on the pre-fork master's `selectors` loop when there is a master, else on the single process's
event loop. So a `/livez` answer proves that the supervising loop turns, and when --metrics-bind
names the same address one listener serves all three paths.

`/readyz` is 200 only while the process would take new work: at least one worker is ready, and the
server is neither shutting down nor in its --shutdown-delay; otherwise 503 with a one-line reason,
so an operator reading a probe failure sees why. Nothing here imports a third-party package.
"""

from __future__ import annotations

from collections.abc import Callable

LIVEZ = b"/livez"
READYZ = b"/readyz"

# What the host (master or server) says about itself: None when ready, else a one-line reason.
NotReady = Callable[[], "str | None"]


def probe_response(head: bytes, not_ready: NotReady) -> bytes | None:
    """The whole response to a probe request, or None when `head` is not for /livez or /readyz."""
    parts = head.split(b"\n", 1)[0].rstrip(b"\r").split(b" ")
    if len(parts) != 3:
        return None
    method, target = parts[0], parts[1].split(b"?", 1)[0]
    if target not in (LIVEZ, READYZ):
        return None
    if method not in (b"GET", b"HEAD"):
        return _response(405, "Method Not Allowed", b"method not allowed\n", False)
    head_only = method == b"HEAD"
    if target == LIVEZ:
        return _response(200, "OK", b"ok\n", head_only)
    reason = not_ready()
    if reason is None:
        return _response(200, "OK", b"ready\n", head_only)
    return _response(503, "Service Unavailable", reason.encode("utf-8", "replace") + b"\n", head_only)


def _response(status: int, text: str, body: bytes, head_only: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1")
    return head if head_only else head + body
