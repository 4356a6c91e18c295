"""An ASGI app for the pre-fork master's end-to-end tests (tests/test_master*.py).

Every response is plain text. Endpoints:

- ``/pid``: this worker's pid, and ``X-Startup-Ran: 1`` if lifespan startup ran in this process.
- ``/block?seconds=N``: blocks the *event loop* with ``time.sleep`` (a sync call in an async handler).
- ``/sleep?seconds=N``: prints ``sleep started in PID``, awaits N seconds, then answers ``slept``.
- ``/env?name=X``: the value of environment variable X in the worker.
- ``/crash``: the worker dies at once with SIGSEGV (as a segfault would).
- ``/leak?mib=N``: keeps N MiB more of memory (touched, so resident) until the worker exits.

Importing it prints ``workers_app imported in PID``. Environment switches: ``WORKERS_APP_FAIL_IMPORT=1`` raises at import; ``WORKERS_APP_FAIL_STARTUP=1``
fails lifespan startup; ``WORKERS_APP_CRASH_AFTER_STARTUP=1`` kills the worker just after startup;
``WORKERS_APP_IMPORT_DELAY=S`` makes the import take S seconds; ``WORKERS_APP_FORK_AT_IMPORT=1`` forks a
child that exits at once (with --preload, a non-worker child of the master).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any
from urllib.parse import parse_qs

if os.environ.get("WORKERS_APP_FAIL_IMPORT") == "1":
    raise RuntimeError("workers_app refuses to import (WORKERS_APP_FAIL_IMPORT=1)")

time.sleep(float(os.environ.get("WORKERS_APP_IMPORT_DELAY", "0")))  # a slow import
STARTUP_RAN: dict[str, int] = {}
LEAKED: list[bytes] = []
if os.environ.get("WORKERS_APP_FORK_AT_IMPORT") == "1" and os.fork() == 0:
    os._exit(0)  # a helper process that exits at once: its parent must reap it
print(f"workers_app imported in {os.getpid()}", flush=True)  # --preload imports it in the master


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if os.environ.get("WORKERS_APP_FAIL_STARTUP") == "1":
                await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
                return
            STARTUP_RAN[str(os.getpid())] = 1
            if os.environ.get("WORKERS_APP_CRASH_AFTER_STARTUP") == "1":
                asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGSEGV)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _text(
    send: Any, body: str, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    data = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(data)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    path = scope["path"]
    if path == "/pid":
        ran = b"1" if STARTUP_RAN.get(str(os.getpid())) else b"0"
        await _text(send, str(os.getpid()), headers=[(b"x-startup-ran", ran)])
    elif path == "/block":
        time.sleep(float(query.get("seconds", "30")))
        await _text(send, "unblocked")
    elif path == "/sleep":
        sys.stdout.write(
            f"sleep started in {os.getpid()}\n"
        )  # one write: lines from workers never interleave
        sys.stdout.flush()  # tests wait for this line
        await asyncio.sleep(float(query.get("seconds", "2")))
        await _text(send, "slept")
    elif path == "/env":
        await _text(send, os.environ.get(query.get("name", ""), ""))
    elif path == "/leak":
        LEAKED.append(b"x" * int(float(query.get("mib", "1")) * 1048576))
        await _text(send, "leaked")
    elif path == "/crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    else:
        await _text(send, "not found", status=404)
