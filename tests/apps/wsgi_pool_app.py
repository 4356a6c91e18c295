"""A WSGI app for the thread-pool tests (``tests/test_wsgi_pool.py``).

``/sleep?s=`` waits like a view calling a slow upstream, ``/spin?s=`` computes for that long, and
``/pool`` reports what the app saw: the most requests in the app at once and the most pool threads
alive at a request's start (``?reset=1`` starts over). Every response names the worker that served
it (``x-pid``), for the accept-distribution tests; ``/pool`` also reports the interpreter's GIL
switch interval (``switch``), which palfrey scales with a large adaptive pool.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

_lock = threading.Lock()
_seen = {"active": 0, "max_active": 0, "max_threads": 0}


def pool_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name.startswith("palfrey-wsgi"))


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ["PATH_INFO"]
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    if path == "/pool":
        with _lock:
            body: dict[str, Any] = dict(_seen, threads=pool_threads(), switch=sys.getswitchinterval())
            if "reset" in query:
                _seen.update(max_active=0, max_threads=0)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]
    seconds = float(query.get("s", "0.1"))
    with _lock:
        _seen["active"] += 1
        _seen["max_active"] = max(_seen["max_active"], _seen["active"])
        _seen["max_threads"] = max(_seen["max_threads"], pool_threads())
    try:
        if path == "/sleep":
            time.sleep(seconds)
        elif path == "/spin":
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                sum(range(200))
    finally:
        with _lock:
            _seen["active"] -= 1
    start_response("200 OK", [("Content-Type", "text/plain"), ("x-pid", str(os.getpid()))])
    return [b"done"]
